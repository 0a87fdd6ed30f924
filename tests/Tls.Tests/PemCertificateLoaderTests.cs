using System.Security.Cryptography.X509Certificates;
using Appliance.Tls.Tests.Support;

namespace Appliance.Tls.Tests;

public sealed class PemCertificateLoaderTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private static CertificateSource Source(string certificate, string key, string? chain = null) =>
        new("site", ["a.example.com"], certificate, key, chain);

    private static CertificateLoadException Rejects(CertificateSource source, params string[] expected)
    {
        var error = Assert.Throws<CertificateLoadException>(() => PemCertificateLoader.Load(source));
        Assert.StartsWith("certificate 'site': ", error.Message);
        foreach (string part in expected)
        {
            Assert.Contains(part, error.Message);
        }

        return error;
    }

    private void WritePem(string name, X509Certificate2 certificate, bool withKey = true)
    {
        File.WriteAllText(_directory.File(name + ".crt"), certificate.ExportCertificatePem());
        if (withKey)
        {
            File.WriteAllText(_directory.File(name + ".key"), ExportKey(certificate));
        }
    }

    private static string ExportKey(X509Certificate2 certificate) =>
        certificate.GetECDsaPrivateKey()?.ExportPkcs8PrivateKeyPem()
        ?? certificate.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem();

    [Theory]
    [InlineData("ec", false, "ECDSA P-256")]
    [InlineData("ec", true, "ECDSA P-256")]
    [InlineData("rsa", false, "RSA 2048")]
    [InlineData("rsa", true, "RSA 2048")]
    public async Task Loads_an_openssl_key_pair_and_serves_it(string keyType, bool traditionalKey, string expectedAlgorithm)
    {
        (string certificate, string key) = await OpenSsl.CreateSelfSignedAsync(
            _directory, "site", keyType, "a.example.com", "a.example.com", "www.a.example.com");
        if (traditionalKey)
        {
            string traditional = _directory.File("traditional.key");
            await OpenSsl.RunCheckedAsync(keyType == "ec"
                ? ["ec", "-in", key, "-out", traditional]
                : ["rsa", "-traditional", "-in", key, "-out", traditional]);
            Assert.StartsWith(keyType == "ec" ? "-----BEGIN EC PRIVATE KEY-----" : "-----BEGIN RSA PRIVATE KEY-----", File.ReadAllText(traditional));
            key = traditional;
        }

        LoadedCertificate loaded = PemCertificateLoader.Load(Source(certificate, key));

        Assert.Equal("site", loaded.Name);
        Assert.Equal(["a.example.com"], loaded.Hosts);
        Assert.True(loaded.Leaf.HasPrivateKey);
        Assert.Empty(loaded.Chain);
        Assert.Equal(expectedAlgorithm, loaded.KeyAlgorithm);
        Assert.Equal(["a.example.com", "www.a.example.com"], loaded.SubjectAlternativeNames);
        string fingerprint = (await OpenSsl.RunCheckedAsync("x509", "-in", certificate, "-noout", "-fingerprint", "-sha256")).Output;
        Assert.Contains(string.Join(':', loaded.Thumbprint.Chunk(2).Select(pair => new string(pair))), fingerprint);
        Assert.InRange(loaded.NotAfter - DateTimeOffset.UtcNow, TimeSpan.FromDays(29), TimeSpan.FromDays(31));
        Assert.True(loaded.NotBefore <= DateTimeOffset.UtcNow);

        // The key imported from PEM is ephemeral; on Linux SslStream serves it as is.
        var store = new CertificateStore([loaded], null, new TlsServerOptions());
        await using var server = LoopbackTlsServer.Start(store);
        TlsTestClient.Outcome outcome = await TlsTestClient.ConnectAsync(server.Port, "a.example.com");
        Assert.Equal(loaded.Thumbprint, outcome.Thumbprint);
        Assert.True((await server.NextHandshakeAsync()).Succeeded);
    }

    [Fact]
    public async Task Loads_a_key_file_that_also_holds_ec_parameters()
    {
        string key = _directory.File("site.key");
        string certificate = _directory.File("site.crt");
        await OpenSsl.RunCheckedAsync("ecparam", "-genkey", "-name", "prime256v1", "-out", key);
        await OpenSsl.RunCheckedAsync("req", "-new", "-x509", "-key", key, "-out", certificate, "-days", "5", "-subj", "/CN=a.example.com");
        Assert.Contains("-----BEGIN EC PARAMETERS-----", File.ReadAllText(key));

        LoadedCertificate loaded = PemCertificateLoader.Load(Source(certificate, key));

        Assert.Equal("ECDSA P-256", loaded.KeyAlgorithm);
    }

    [Fact]
    public async Task Subject_alternative_names_fall_back_to_the_common_name_only_without_a_san()
    {
        (string certificate, string key) = await OpenSsl.CreateSelfSignedAsync(_directory, "cn-only", "ec", "legacy.example.com");

        LoadedCertificate loaded = PemCertificateLoader.Load(Source(certificate, key));

        Assert.Equal(["legacy.example.com"], loaded.SubjectAlternativeNames);
    }

    [Fact]
    public async Task Ignores_the_common_name_when_a_san_is_present()
    {
        (string certificate, string key) = await OpenSsl.CreateSelfSignedAsync(_directory, "san", "ec", "Site CN", "a.example.com");

        LoadedCertificate loaded = PemCertificateLoader.Load(Source(certificate, key));

        Assert.Equal(["a.example.com"], loaded.SubjectAlternativeNames);
    }

    [Fact]
    public void Loads_leaf_and_intermediate_from_one_file()
    {
        (X509Certificate2 root, X509Certificate2 intermediate, X509Certificate2 leaf) = CreateChain();
        string certificate = _directory.Write("fullchain.crt", leaf.ExportCertificatePem() + "\n" + intermediate.ExportCertificatePem());
        string key = _directory.Write("leaf.key", ExportKey(leaf));

        LoadedCertificate loaded = PemCertificateLoader.Load(Source(certificate, key));

        Assert.Equal(leaf.Thumbprint, loaded.Leaf.Thumbprint);
        Assert.Equal([intermediate.Thumbprint], loaded.Chain.Select(c => c.Thumbprint));
        Assert.DoesNotContain(root.Thumbprint, loaded.Chain.Select(c => c.Thumbprint));
    }

    [Fact]
    public void Loads_intermediates_from_a_separate_chain_file()
    {
        (_, X509Certificate2 intermediate, X509Certificate2 leaf) = CreateChain();
        string certificate = _directory.Write("leaf.crt", leaf.ExportCertificatePem());
        string key = _directory.Write("leaf.key", ExportKey(leaf));
        string chain = _directory.Write("chain.crt", intermediate.ExportCertificatePem());

        LoadedCertificate loaded = PemCertificateLoader.Load(Source(certificate, key, chain));

        Assert.Equal([intermediate.Thumbprint], loaded.Chain.Select(c => c.Thumbprint));
    }

    [Fact]
    public void Ignores_explanatory_text_around_pem_blocks()
    {
        X509Certificate2 leaf = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(1));
        string certificate = _directory.Write("leaf.crt", "subject=CN = a.example.com\nissuer=CN = a.example.com\n" + leaf.ExportCertificatePem() + "\ntrailing notes\n");
        string key = _directory.Write("leaf.key", ExportKey(leaf));

        Assert.Equal(leaf.Thumbprint, PemCertificateLoader.Load(Source(certificate, key)).Leaf.Thumbprint);
    }

    [Fact]
    public void Rejects_a_missing_certificate_file()
    {
        string missing = _directory.File("missing.crt");

        var error = Rejects(Source(missing, _directory.Write("x.key", "")), $"certificate file '{missing}'", "file not found");
        Assert.Equal(missing, error.FilePath);
    }

    [Fact]
    public void Rejects_a_missing_key_file()
    {
        X509Certificate2 leaf = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(1));
        WritePem("site", leaf, withKey: false);
        string missing = _directory.File("site.key");

        Rejects(Source(_directory.File("site.crt"), missing), $"key file '{missing}'", "file not found");
    }

    [Fact]
    public void Rejects_a_missing_chain_file()
    {
        X509Certificate2 leaf = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(1));
        WritePem("site", leaf);
        string missing = _directory.File("chain.crt");

        Rejects(Source(_directory.File("site.crt"), _directory.File("site.key"), missing), $"chain file '{missing}'", "file not found");
    }

    [Fact]
    public void Rejects_a_directory_given_as_a_file()
    {
        Rejects(Source(_directory.Path, _directory.File("site.key")), "is a directory");
    }

    [Fact]
    public void Rejects_an_empty_certificate_file()
    {
        string empty = _directory.Write("empty.crt", "\n  \n");

        Rejects(Source(empty, _directory.File("site.key")), $"certificate file '{empty}'", "file is empty");
    }

    [Fact]
    public void Rejects_a_certificate_file_of_garbage()
    {
        string garbage = _directory.Write("garbage.crt", "this is not a certificate\n\u0001\u0002 at all");

        Rejects(Source(garbage, _directory.File("site.key")), $"certificate file '{garbage}'", "no certificate found");
    }

    [Fact]
    public void Rejects_a_certificate_file_holding_only_a_key()
    {
        X509Certificate2 leaf = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(1));
        string keyOnly = _directory.Write("key-only.crt", ExportKey(leaf));

        Rejects(Source(keyOnly, keyOnly), "certificate file", "no certificate found");
    }

    [Fact]
    public void Rejects_a_truncated_certificate()
    {
        X509Certificate2 leaf = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(1));
        string pem = leaf.ExportCertificatePem();
        string truncated = _directory.Write("truncated.crt", pem[..(pem.Length / 2)]);
        string key = _directory.Write("site.key", ExportKey(leaf));

        Rejects(Source(truncated, key), $"certificate file '{truncated}'", "malformed or truncated PEM block at line 1");
    }

    [Fact]
    public void Rejects_a_truncated_intermediate_instead_of_dropping_it()
    {
        (_, X509Certificate2 intermediate, X509Certificate2 leaf) = CreateChain();
        string intermediatePem = intermediate.ExportCertificatePem();
        string certificate = _directory.Write("fullchain.crt", leaf.ExportCertificatePem() + "\n" + intermediatePem[..(intermediatePem.Length - 40)]);
        string key = _directory.Write("leaf.key", ExportKey(leaf));

        Rejects(Source(certificate, key), "malformed or truncated PEM block at line");
    }

    [Fact]
    public void Rejects_a_pem_block_that_is_not_a_certificate()
    {
        X509Certificate2 leaf = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(1));
        string corrupt = _directory.Write("corrupt.crt", PemEncodingFor("CERTIFICATE", [0x30, 0x03, 0x02, 0x01, 0x01]));
        string key = _directory.Write("site.key", ExportKey(leaf));

        Rejects(Source(corrupt, key), "certificate #1 (line 1) is not a valid X.509 certificate");
    }

    [Fact]
    public void Rejects_a_truncated_key()
    {
        X509Certificate2 leaf = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(1));
        WritePem("site", leaf);
        string keyPem = ExportKey(leaf);
        string truncated = _directory.Write("truncated.key", keyPem[..(keyPem.Length - 30)]);

        Rejects(Source(_directory.File("site.crt"), truncated), $"key file '{truncated}'", "malformed or truncated PEM block at line 1");
    }

    [Fact]
    public void Rejects_a_key_file_without_a_key()
    {
        X509Certificate2 leaf = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(1));
        WritePem("site", leaf);

        Rejects(Source(_directory.File("site.crt"), _directory.File("site.crt")), "key file", "no private key found");
    }

    [Fact]
    public void Rejects_a_key_whose_content_is_not_a_key()
    {
        X509Certificate2 leaf = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(1));
        WritePem("site", leaf);
        string bad = _directory.Write("bad.key", PemEncodingFor("EC PRIVATE KEY", [0x30, 0x03, 0x02, 0x01, 0x01]));

        Rejects(Source(_directory.File("site.crt"), bad), "could not be read");
    }

    [Fact]
    public void Rejects_a_key_file_with_two_keys()
    {
        X509Certificate2 leaf = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(1));
        WritePem("site", leaf);
        string twoKeys = _directory.Write("two.key", ExportKey(leaf) + "\n" + ExportKey(leaf));

        Rejects(Source(_directory.File("site.crt"), twoKeys), "more than one private key");
    }

    [Fact]
    public async Task Rejects_the_key_of_another_certificate()
    {
        (string certificate, _) = await OpenSsl.CreateSelfSignedAsync(_directory, "one", "ec", "one.example.com");
        (_, string otherKey) = await OpenSsl.CreateSelfSignedAsync(_directory, "two", "ec", "two.example.com");

        Rejects(Source(certificate, otherKey), $"key file '{otherKey}'", $"key does not match certificate '{certificate}'");
    }

    [Fact]
    public async Task Rejects_an_rsa_key_for_an_ecdsa_certificate()
    {
        (string certificate, _) = await OpenSsl.CreateSelfSignedAsync(_directory, "one", "ec", "one.example.com");
        (_, string rsaKey) = await OpenSsl.CreateSelfSignedAsync(_directory, "two", "rsa", "two.example.com");

        Rejects(Source(certificate, rsaKey), "key does not match certificate", "the key is RSA", "ECDSA P-256");
    }

    [Fact]
    public void Rejects_a_chain_with_the_intermediate_first_saying_the_leaf_must_come_first()
    {
        (_, X509Certificate2 intermediate, X509Certificate2 leaf) = CreateChain();
        string certificate = _directory.Write("wrong-order.crt", intermediate.ExportCertificatePem() + "\n" + leaf.ExportCertificatePem());
        string key = _directory.Write("leaf.key", ExportKey(leaf));

        Rejects(Source(certificate, key), "key does not match certificate", "matches certificate #2", "the leaf must come first");
    }

    [Fact]
    public void Rejects_an_expired_certificate()
    {
        X509Certificate2 expired = SelfSignedCertificate.Create(
            ["a.example.com"], TimeSpan.FromDays(1), notBefore: DateTimeOffset.UtcNow.AddDays(-10));
        WritePem("expired", expired);

        Rejects(Source(_directory.File("expired.crt"), _directory.File("expired.key")), "certificate expired on");
    }

    [Fact]
    public void Rejects_a_certificate_that_is_not_yet_valid()
    {
        X509Certificate2 future = SelfSignedCertificate.Create(
            ["a.example.com"], TimeSpan.FromDays(10), notBefore: DateTimeOffset.UtcNow.AddDays(2));
        WritePem("future", future);

        Rejects(Source(_directory.File("future.crt"), _directory.File("future.key")), "certificate is not yet valid");
    }

    [Fact]
    public async Task Rejects_an_ed25519_certificate_as_an_unsupported_key_type()
    {
        (string certificate, string key) = await OpenSsl.CreateSelfSignedAsync(_directory, "ed", "ed25519", "ed.example.com");

        Rejects(Source(certificate, key), "unsupported key type", "1.3.101.112");
    }

    [Fact]
    public async Task Rejects_a_short_rsa_key()
    {
        (string certificate, string key) = await OpenSsl.CreateSelfSignedAsync(_directory, "weak", "rsa:1024", "weak.example.com");

        Rejects(Source(certificate, key), "unsupported key type RSA 1024", "at least 2048 bits");
    }

    [Fact]
    public async Task Rejects_an_encrypted_key()
    {
        (string certificate, string key) = await OpenSsl.CreateSelfSignedAsync(_directory, "site", "ec", "a.example.com");
        string encrypted = _directory.File("encrypted.key");
        await OpenSsl.RunCheckedAsync("pkcs8", "-topk8", "-in", key, "-out", encrypted, "-passout", "pass:secret");

        Rejects(Source(certificate, encrypted), "the private key is encrypted");
    }

    [Fact]
    public void Rejects_a_chain_file_without_certificates()
    {
        X509Certificate2 leaf = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(1));
        WritePem("site", leaf);
        string chain = _directory.Write("chain.crt", "nothing here\n");

        Rejects(Source(_directory.File("site.crt"), _directory.File("site.key"), chain), $"chain file '{chain}'", "no certificate found");
    }

    [Fact]
    public void From_certificate_rejects_a_certificate_without_its_key()
    {
        X509Certificate2 leaf = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(1));
        using X509Certificate2 publicOnly = X509CertificateLoader.LoadCertificate(leaf.RawData);

        var error = Assert.Throws<CertificateLoadException>(() =>
            PemCertificateLoader.FromCertificate("site", ["a.example.com"], publicOnly, null));
        Assert.Equal("certificate 'site': the certificate has no private key", error.Message);
    }

    [Fact]
    public void From_certificate_keeps_the_chain_and_describes_the_key()
    {
        (_, X509Certificate2 intermediate, X509Certificate2 leaf) = CreateChain(rsaLeaf: true);

        LoadedCertificate loaded = PemCertificateLoader.FromCertificate("site", ["a.example.com"], leaf, [intermediate]);

        Assert.Same(leaf, loaded.Leaf);
        Assert.Equal("RSA 2048", loaded.KeyAlgorithm);
        Assert.Equal([intermediate.Thumbprint], loaded.Chain.Select(c => c.Thumbprint));
        Assert.Equal(64, loaded.Thumbprint.Length);
        Assert.Equal("certificate 'site'", loaded.ToString());
    }

    private static (X509Certificate2 Root, X509Certificate2 Intermediate, X509Certificate2 Leaf) CreateChain(bool rsaLeaf = false)
    {
        X509Certificate2 root = SelfSignedCertificate.Create([], TimeSpan.FromDays(30), certificateAuthority: true, commonName: "Test Root");
        X509Certificate2 intermediate = SelfSignedCertificate.Create([], TimeSpan.FromDays(20), issuer: root, certificateAuthority: true, commonName: "Test Intermediate");
        X509Certificate2 leaf = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(10), rsa: rsaLeaf, issuer: intermediate);
        return (root, intermediate, leaf);
    }

    private static string PemEncodingFor(string label, byte[] data) => new(System.Security.Cryptography.PemEncoding.Write(label, data));
}

using System.Net;
using System.Runtime.Versioning;
using System.Security.Cryptography.X509Certificates;
using Appliance.Tls.Tests.Support;

namespace Appliance.Tls.Tests;

// File modes are a Unix notion; the appliance runs on Linux only.
[UnsupportedOSPlatform("windows")]
public sealed class SelfSignedCertificateTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void Write_pem_writes_a_pair_the_loader_accepts()
    {
        string certificate = _directory.File("self.crt");
        string key = _directory.File("self.key");

        SelfSignedCertificate.WritePem(certificate, key, ["appliance.example.com", "localhost"], TimeSpan.FromDays(90));

        LoadedCertificate loaded = PemCertificateLoader.Load(new CertificateSource("self", ["appliance.example.com"], certificate, key, null));
        Assert.Equal(["appliance.example.com", "localhost"], loaded.SubjectAlternativeNames);
        Assert.Equal("ECDSA P-256", loaded.KeyAlgorithm);
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", File.ReadAllText(key));
        Assert.InRange(DateTimeOffset.UtcNow - loaded.NotBefore, TimeSpan.FromMinutes(59), TimeSpan.FromMinutes(61));
        Assert.InRange(loaded.NotAfter - loaded.NotBefore, TimeSpan.FromDays(90) - TimeSpan.FromSeconds(1), TimeSpan.FromDays(90) + TimeSpan.FromSeconds(1));
    }

    [Fact]
    public void Write_pem_creates_the_key_with_mode_0600()
    {
        string key = _directory.File("self.key");

        SelfSignedCertificate.WritePem(_directory.File("self.crt"), key, ["a.example.com"], TimeSpan.FromDays(1));

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
    }

    [Fact]
    public void Write_pem_replaces_existing_files_and_leaves_no_temporary_files()
    {
        string certificate = _directory.File("self.crt");
        string key = _directory.File("self.key");
        File.WriteAllText(key, "old key");
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        SelfSignedCertificate.WritePem(certificate, key, ["a.example.com"], TimeSpan.FromDays(1));
        string firstThumbprint = PemCertificateLoader.Load(new CertificateSource("self", [], certificate, key, null)).Thumbprint;
        SelfSignedCertificate.WritePem(certificate, key, ["a.example.com"], TimeSpan.FromDays(1));
        string secondThumbprint = PemCertificateLoader.Load(new CertificateSource("self", [], certificate, key, null)).Thumbprint;

        Assert.NotEqual(firstThumbprint, secondThumbprint);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        Assert.Equal(["self.crt", "self.key"], Directory.GetFiles(_directory.Path).Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task Creates_a_server_certificate_openssl_reads_as_such()
    {
        string certificate = _directory.File("self.crt");
        SelfSignedCertificate.WritePem(certificate, _directory.File("self.key"), ["a.example.com", "b.example.com"], TimeSpan.FromDays(1));

        string text = (await OpenSsl.RunCheckedAsync("x509", "-in", certificate, "-noout", "-text")).Output;

        Assert.Contains("DNS:a.example.com, DNS:b.example.com", text);
        Assert.Contains("CA:FALSE", text);
        Assert.Contains("Digital Signature", text);
        Assert.Contains("TLS Web Server Authentication", text);
        Assert.Contains("ASN1 OID: prime256v1", text);
        Assert.Contains("Subject: CN = a.example.com", text);
    }

    [Fact]
    public void Localhost_adds_the_loopback_addresses()
    {
        using X509Certificate2 certificate = SelfSignedCertificate.Create(["localhost"], TimeSpan.FromDays(1));

        var san = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Equal([IPAddress.Loopback, IPAddress.IPv6Loopback], san.EnumerateIPAddresses());
        Assert.Equal(["localhost"], san.EnumerateDnsNames());
    }

    [Fact]
    public void Other_names_get_no_ip_addresses()
    {
        using X509Certificate2 certificate = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(1));

        Assert.Empty(certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateIPAddresses());
    }

    [Fact]
    public void Create_makes_rsa_2048_on_request()
    {
        using X509Certificate2 certificate = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(1), rsa: true);

        Assert.True(certificate.HasPrivateKey);
        Assert.Equal(2048, certificate.GetRSAPublicKey()!.KeySize);
    }

    [Fact]
    public void Create_builds_a_ca_intermediate_leaf_chain_that_validates()
    {
        using X509Certificate2 root = SelfSignedCertificate.Create([], TimeSpan.FromDays(30), certificateAuthority: true, commonName: "Test Root");
        using X509Certificate2 intermediate = SelfSignedCertificate.Create([], TimeSpan.FromDays(60), issuer: root, certificateAuthority: true, commonName: "Test Intermediate");
        using X509Certificate2 leaf = SelfSignedCertificate.Create(["a.example.com"], TimeSpan.FromDays(10), issuer: intermediate);

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.ExtraStore.Add(intermediate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;

        Assert.True(chain.Build(leaf), string.Join(", ", chain.ChainStatus.Select(s => s.StatusInformation)));
        Assert.Equal(3, chain.ChainElements.Count);
        Assert.True(leaf.HasPrivateKey);
        Assert.True(intermediate.HasPrivateKey);
        // An issued certificate never outlives its issuer.
        Assert.True(intermediate.NotAfter <= root.NotAfter);
        Assert.Equal("CN=Test Intermediate", leaf.Issuer);
    }

    [Fact]
    public void Create_refuses_a_certificate_without_any_name()
    {
        Assert.Throws<ArgumentException>(() => SelfSignedCertificate.Create([], TimeSpan.FromDays(1)));
    }
}

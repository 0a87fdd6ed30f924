using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Appliance.Tests.Support;

namespace Appliance.Tests.Tls;

/// <summary>
/// clientCertificates.crlFile: the CA's CRL (made with .NET's CertificateRevocationListBuilder, as `openssl ca
/// -gencrl` would) in a local file. curl with the good certificate is served, curl with the revoked one is refused in
/// the handshake with the reason in the log; a new CRL written to the file is taken without a restart; a CRL not
/// signed by the CA, or a CA with no CRL, fails closed.
/// </summary>
public sealed class ClientCertificateRevocationTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-crl-" + Guid.NewGuid().ToString("N"));
    private X509Certificate2 _ca = null!;
    private ECDsa _caKey = null!;
    private ApplianceProcess _app = null!;
    private int _port;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Revoking Test CA", _caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        _ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        await File.WriteAllTextAsync(Path.Combine(_dir, "ca.pem"), _ca.ExportCertificatePem());
        WriteClient("good", [1, 1, 1, 1], _ca);
        WriteClient("revoked", [2, 2, 2, 2], _ca);
        WriteClient("later", [3, 3, 3, 3], _ca);
        await File.WriteAllTextAsync(Path.Combine(_dir, "ca.crl"), Crl(1, [2, 2, 2, 2]));

        string config = Path.Combine(_dir, "appliance.json");
        await File.WriteAllTextAsync(config, $$"""
        {
          "server": { "stateDirectory": "state" },
          "admin": { "socketPath": "{{Path.Combine(_dir, "admin.sock")}}" },
          "listeners": [ { "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "localhost",
                           "clientCertificates": { "mode": "required", "caFile": "{{Path.Combine(_dir, "ca.pem")}}", "crlFile": "{{Path.Combine(_dir, "ca.crl")}}" } } ],
          "certificates": [ { "name": "localhost", "hosts": ["localhost"], "certificatePath": "{{TestCertificates.Cert("localhost")}}", "keyPath": "{{TestCertificates.Key("localhost")}}" } ],
          "routes": [ { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "body": "hello" } } ]
        }
        """);
        _app = ApplianceProcess.Start("run", "--config", config);
        _port = int.Parse((await _app.WaitForLineAsync(@"listener https: https://127\.0\.0\.1:(\d+)")).Groups[1].Value);
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        _ca.Dispose();
        _caKey.Dispose();
    }

    /// <summary>A PEM CRL from the test CA, revoking <paramref name="serials"/>.</summary>
    private string Crl(int number, params byte[][] serials)
    {
        var crl = new CertificateRevocationListBuilder();
        foreach (byte[] serial in serials)
        {
            crl.AddEntry(serial, DateTimeOffset.UtcNow.AddHours(-1), X509RevocationReason.KeyCompromise);
        }

        byte[] der = crl.Build(_ca, new BigInteger(number), DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256);
        return PemEncoding.WriteString("X509 CRL", der);
    }

    private void WriteClient(string name, byte[] serial, X509Certificate2 ca)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        using X509Certificate2 cert = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(10), serial);
        File.WriteAllText(Path.Combine(_dir, name + ".crt"), cert.ExportCertificatePem());
        File.WriteAllText(Path.Combine(_dir, name + ".key"), key.ExportPkcs8PrivateKeyPem());
    }

    private Task<Peer.Result> Curl(string client) => Peer.CurlAsync("-k", "--resolve", $"localhost:{_port}:127.0.0.1",
        "--cert", Path.Combine(_dir, client + ".crt"), "--key", Path.Combine(_dir, client + ".key"), $"https://localhost:{_port}/");

    [Fact]
    public async Task A_revoked_client_certificate_is_refused_and_a_good_one_served()
    {
        Peer.Result good = await Curl("good");
        Assert.True(good.Stdout == "hello", good.All + _app.Output);

        Peer.Result revoked = await Curl("revoked");
        Assert.NotEqual("hello", revoked.Stdout);
        await _app.WaitForLineAsync(@"TLS handshake failed: .*client certificate 'CN=revoked' refused: .*revoked");
    }

    [Fact]
    public async Task A_new_crl_in_the_file_is_taken_without_a_restart()
    {
        Assert.Equal("hello", (await Curl("later")).Stdout);
        await File.WriteAllTextAsync(Path.Combine(_dir, "ca.crl"), Crl(2, [2, 2, 2, 2], [3, 3, 3, 3]));
        await _app.WaitForLineAsync(@"certificates reloaded .*listener https: client CRLs reloaded \(2 revoked\)");
        Assert.NotEqual("hello", (await Curl("later")).Stdout);
        await _app.WaitForLineAsync(@"client certificate 'CN=later' refused: certificate 'CN=later' is revoked");
        Assert.Equal("hello", (await Curl("good")).Stdout);
    }

    [Theory]
    [InlineData("garbage", "not a DER CRL")]
    [InlineData("other-ca", "is not among the trusted CAs")]
    public async Task A_crl_that_cannot_be_trusted_is_refused_at_load(string kind, string reason)
    {
        string file = Path.Combine(_dir, kind + ".crl");
        if (kind == "garbage")
        {
            await File.WriteAllBytesAsync(file, [0x30, 0x82, 0x01]);
        }
        else
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=Other CA", key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
            using X509Certificate2 other = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            await File.WriteAllTextAsync(file, PemEncoding.WriteString("X509 CRL", new CertificateRevocationListBuilder().Build(other, BigInteger.One, DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256)));
        }

        string config = (await File.ReadAllTextAsync(Path.Combine(_dir, "appliance.json"))).Replace(Path.Combine(_dir, "ca.crl"), file);
        await File.WriteAllTextAsync(Path.Combine(_dir, "bad.json"), config);
        Peer.Result r = await Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "check-config", Path.Combine(_dir, "bad.json")]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("listeners[0].clientCertificates.crlFile", r.All);
        Assert.Contains(reason, r.All);
    }
}

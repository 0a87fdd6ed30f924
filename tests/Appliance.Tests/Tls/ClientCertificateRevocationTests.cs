using System.Diagnostics;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Appliance.Tests.Support;

namespace Appliance.Tests.Tls;

/// <summary>
/// clientCertificates.revocation "crl": client certificates name their CA's CRL (a distribution point served by
/// python3's http.server); curl with the good one is served, curl with the revoked one is refused in the handshake
/// with the reason in the log. With the CRL unreachable, nobody gets in (fail closed).
/// </summary>
public sealed class ClientCertificateRevocationTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-crl-" + Guid.NewGuid().ToString("N"));
    private Process _crlServer = null!;
    private ApplianceProcess _app = null!;
    private int _port;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "crl"));
        int crlPort = NginxUpstream.FreePort();
        string crlUrl = $"http://127.0.0.1:{crlPort}/ca.crl";

        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Revoking Test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using X509Certificate2 ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        await File.WriteAllTextAsync(Path.Combine(_dir, "ca.pem"), ca.ExportCertificatePem());
        WriteClient("good", [1, 1, 1, 1], ca, crlUrl);
        WriteClient("revoked", [2, 2, 2, 2], ca, crlUrl);

        var crl = new CertificateRevocationListBuilder();
        crl.AddEntry([2, 2, 2, 2], DateTimeOffset.UtcNow.AddHours(-1), X509RevocationReason.KeyCompromise);
        byte[] der = crl.Build(ca, BigInteger.One, DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256);
        await File.WriteAllBytesAsync(Path.Combine(_dir, "crl", "ca.crl"), der);

        var psi = new ProcessStartInfo("/usr/bin/python3") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in (string[])["-m", "http.server", crlPort.ToString(), "--bind", "127.0.0.1", "--directory", Path.Combine(_dir, "crl")])
        {
            psi.ArgumentList.Add(a);
        }

        _crlServer = Process.Start(psi)!;
        var listening = new TaskCompletionSource();
        _crlServer.ErrorDataReceived += (_, e) => { if (e.Data?.Contains("Serving HTTP", StringComparison.Ordinal) == true) listening.TrySetResult(); };
        _crlServer.OutputDataReceived += (_, e) => { if (e.Data?.Contains("Serving HTTP", StringComparison.Ordinal) == true) listening.TrySetResult(); };
        _crlServer.BeginErrorReadLine();
        _crlServer.BeginOutputReadLine();
        await listening.Task.WaitAsync(TimeSpan.FromSeconds(20));

        string config = Path.Combine(_dir, "appliance.json");
        await File.WriteAllTextAsync(config, $$"""
        {
          "server": { "stateDirectory": "state" },
          "admin": { "socketPath": "{{Path.Combine(_dir, "admin.sock")}}" },
          "listeners": [ { "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "localhost",
                           "clientCertificates": { "mode": "required", "caFile": "{{Path.Combine(_dir, "ca.pem")}}", "revocation": "crl" } } ],
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
        if (!_crlServer.HasExited)
        {
            _crlServer.Kill();
        }

        _crlServer.Dispose();
    }

    private void WriteClient(string name, byte[] serial, X509Certificate2 ca, string crlUrl)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(CertificateRevocationListBuilder.BuildCrlDistributionPointExtension([crlUrl]));
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
    public async Task Without_the_crl_nobody_gets_in()
    {
        _crlServer.Kill();
        await _crlServer.WaitForExitAsync();
        Peer.Result r = await Curl("good");
        Assert.NotEqual("hello", r.Stdout);
        await _app.WaitForLineAsync(@"TLS handshake failed: .*client certificate 'CN=good' refused");
    }
}

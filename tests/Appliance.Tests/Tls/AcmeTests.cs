using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.RegularExpressions;
using Appliance.Tests.Support;

namespace Appliance.Tests.Tls;

/// <summary>
/// The built-in ACME client end to end against Debian's pebble: the appliance starts on a self-signed stand-in,
/// obtains its certificate through HTTP-01 (answered on its plain listener, which otherwise redirects to https) or
/// TLS-ALPN-01 (answered on its TLS listener), serves it (issued by pebble's intermediate, as openssl s_client sees),
/// renews it on demand without a restart, and reports a refused order with pebble's problem detail.
/// Names resolve to 127.0.0.1 through pebble-challtestsrv (see <see cref="Pebble"/>).
/// </summary>
public sealed partial class AcmeTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-acme-" + Guid.NewGuid().ToString("N"));
    private Pebble _pebble = null!;
    private ApplianceProcess? _app;

    private string Socket => Path.Combine(_dir, "admin.sock");

    private string State => Path.Combine(_dir, "state");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _pebble = await Pebble.StartAsync(Path.Combine(_dir, "pebble"));
    }

    private int HttpPort => _pebble.HttpPort;

    private int TlsPort => _pebble.TlsPort;

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }

        await _pebble.DisposeAsync();
    }

    private async Task StartAsync(string name, string host, string challenge)
    {
        string config = Path.Combine(_dir, "appliance.json");
        await File.WriteAllTextAsync(config, $$"""
            {
              "server": { "stateDirectory": "{{State}}" },
              "admin": { "socketPath": "{{Socket}}" },
              "listeners": [
                { "name": "https", "address": "127.0.0.1:{{TlsPort}}", "tls": true, "defaultCertificate": "{{name}}" },
                { "name": "http", "address": "127.0.0.1:{{HttpPort}}", "tls": false, "redirectToHttps": true, "httpsPort": {{TlsPort}} }
              ],
              "certificates": [ { "name": "{{name}}", "hosts": ["{{host}}"],
                "acme": { "directory": "{{_pebble.DirectoryUrl}}", "email": "ops@acme.test", "challenge": "{{challenge}}", "caFile": "{{_pebble.CaFile}}" } } ],
              "routes": [ { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "body": "hello" } } ]
            }
            """);
        _app = ApplianceProcess.Start("run", "--config", config);
        await _app.WaitForLineAsync(@"listener https: https://127\.0\.0\.1:" + TlsPort);
    }

    private async Task WaitForLogAsync(string pattern)
    {
        try
        {
            await _app!.WaitForLineAsync(pattern, TimeSpan.FromSeconds(90));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\n--- pebble:\n{_pebble.Log}");
        }
    }

    /// <summary>What openssl s_client is served for <paramref name="host"/>: the leaf's issuer and serial.</summary>
    private async Task<(string Issuer, string Serial, string Output)> ServedAsync(string host, params string[] extra)
    {
        Peer.Result r = await Peer.OpenSslAsync("", ["s_client", "-connect", $"127.0.0.1:{TlsPort}", "-servername", host, .. extra]);
        string pem = PemBlock().Match(r.Stdout) is { Success: true } m ? m.Value : "";
        if (pem.Length == 0)
        {
            return ("", "", r.All);
        }

        using X509Certificate2 leaf = X509Certificate2.CreateFromPem(pem);
        return (leaf.Issuer, leaf.SerialNumber, r.All);
    }

    [GeneratedRegex("-----BEGIN CERTIFICATE-----[\\s\\S]+?-----END CERTIFICATE-----")]
    private static partial Regex PemBlock();

    private async Task<JsonElement> CertificateStatusAsync(string name)
    {
        Peer.Result r = await Peer.CurlAsync("--unix-socket", Socket, "http://a/v1/certificates");
        using JsonDocument doc = JsonDocument.Parse(r.Stdout);
        return doc.RootElement.GetProperty("items").EnumerateArray().Single(i => i.GetProperty("name").GetString() == name).Clone();
    }

    private static Task<Peer.Result> CtlAsync(string socket, params string[] args) =>
        Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "ctl", "--socket", socket, .. args], timeout: TimeSpan.FromMinutes(2));

    [Fact]
    public async Task Http01_certificate_is_obtained_at_start_served_and_renewed_without_restart()
    {
        await StartAsync("site", "site.acme.test", "http-01");
        await WaitForLogAsync("acme site: certificate issued by");

        (string issuer, string serial, string output) = await ServedAsync("site.acme.test");
        Assert.True(issuer.Contains("Pebble Intermediate CA", StringComparison.Ordinal), output);
        using (X509Certificate2 onDisk = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(Path.Combine(State, "acme", "site.crt"))))
        {
            Assert.Equal(onDisk.SerialNumber, serial);
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(State, "acme", "site.key")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(State, "acme", "account.key")));
        Assert.Contains("https://", await File.ReadAllTextAsync(Path.Combine(State, "acme", "account.url")));
        Assert.DoesNotContain("PRIVATE KEY", _app!.Output); // keys are never logged

        JsonElement status = await CertificateStatusAsync("site");
        Assert.Equal("valid", status.GetProperty("acme").GetProperty("state").GetString());
        Assert.Equal("http-01", status.GetProperty("acme").GetProperty("challenge").GetString());
        Assert.True(status.GetProperty("acme").TryGetProperty("nextRenewal", out _));

        // The plain listener still redirects everything else, and unknown tokens are 404.
        Peer.Result redirect = await Peer.CurlAsync("-o", "/dev/null", "-w", "%{http_code}", $"http://127.0.0.1:{HttpPort}/page");
        Assert.Equal("308", redirect.Stdout);
        Peer.Result unknown = await Peer.CurlAsync("-o", "/dev/null", "-w", "%{http_code}", $"http://127.0.0.1:{HttpPort}/.well-known/acme-challenge/unknownTokenAAAAAAAAAAAAAAAAAA");
        Assert.Equal("404", unknown.Stdout);

        // A forced renewal through ctl: a new serial, served without a restart.
        int pid = _app.Pid;
        Peer.Result renew = await CtlAsync(Socket, "certs", "renew", "site");
        Assert.True(renew.ExitCode == 0, renew.All + "\n" + _app.Output);
        (string issuer2, string serial2, _) = await ServedAsync("site.acme.test");
        Assert.NotEqual(serial, serial2);
        Assert.Contains(serial2, renew.Stdout);
        Assert.Contains("Pebble Intermediate CA", issuer2);
        Assert.Equal(pid, _app.Pid);

        // And once more through the admin API itself.
        Peer.Result api = await Peer.CurlAsync("--unix-socket", Socket, "-X", "POST", "-w", "\n%{http_code}", "http://a/v1/certificates/site/renew");
        Assert.EndsWith("\n200", api.Stdout);
        Assert.NotEqual(serial2, (await ServedAsync("site.acme.test")).Serial);
        Peer.Result missing = await Peer.CurlAsync("--unix-socket", Socket, "-X", "POST", "-o", "/dev/null", "-w", "%{http_code}", "http://a/v1/certificates/nosuch/renew");
        Assert.Equal("404", missing.Stdout);
    }

    [Fact]
    public async Task Tls_alpn01_certificate_is_obtained_through_the_tls_listener()
    {
        await StartAsync("alpn", "alpn.acme.test", "tls-alpn-01");
        await WaitForLogAsync("acme alpn: certificate issued by");
        await WaitForLogAsync("acme: tls-alpn-01 challenge for alpn.acme.test answered");

        (string issuer, _, string output) = await ServedAsync("alpn.acme.test");
        Assert.True(issuer.Contains("Pebble Intermediate CA", StringComparison.Ordinal), output);

        // With nothing pending, a client offering only acme-tls/1 never gets a validation certificate.
        (string alpnIssuer, _, string alpnOutput) = await ServedAsync("alpn.acme.test", "-alpn", "acme-tls/1");
        Assert.DoesNotContain("1.3.6.1.5.5.7.1.31", alpnOutput);
        Assert.True(alpnIssuer.Length == 0 || alpnIssuer.Contains("Pebble Intermediate CA", StringComparison.Ordinal), alpnOutput);

        Peer.Result renew = await CtlAsync(Socket, "certs", "renew", "alpn");
        Assert.True(renew.ExitCode == 0, renew.All + "\n" + _app!.Output);
        Assert.Equal("valid", (await CertificateStatusAsync("alpn")).GetProperty("acme").GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_refused_order_shows_as_failed_with_the_problem_detail()
    {
        // '_' passes the appliance's host rules (internal names use it) but pebble refuses it in an identifier.
        await StartAsync("bad", "bad_name.acme.test", "http-01");
        await WaitForLogAsync("acme bad: failed: ");

        JsonElement acme = (await CertificateStatusAsync("bad")).GetProperty("acme");
        Assert.Equal("failed", acme.GetProperty("state").GetString());
        string error = acme.GetProperty("lastError").GetString()!;
        Assert.Contains(error, _app!.Output); // the same words in the log
        Assert.Contains("malformed", error, StringComparison.OrdinalIgnoreCase); // pebble's problem type
        Assert.Contains("illegal character", error); // and its detail
        Assert.True(acme.TryGetProperty("nextRenewal", out _)); // the backoff's next attempt

        // Meanwhile the self-signed stand-in serves, so the listener works.
        (string issuer, _, string output) = await ServedAsync("bad_name.acme.test");
        Assert.True(issuer.Contains("bad_name.acme.test", StringComparison.Ordinal), output);

        Peer.Result renew = await CtlAsync(Socket, "certs", "renew", "bad");
        Assert.Equal(1, renew.ExitCode);
        Assert.Contains("renewal of 'bad' failed", renew.Stderr);
        Peer.Result table = await CtlAsync(Socket, "certs");
        Assert.Contains("state=failed", table.Stdout);
    }
}

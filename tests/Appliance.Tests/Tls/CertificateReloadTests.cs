using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Appliance.Tests.Support;
using Appliance.Tls;

namespace Appliance.Tests.Tls;

/// <summary>
/// Certificates follow their files while traffic flows: a replaced pair is served to new handshakes, open
/// connections keep theirs, a key that does not match is refused and the old certificate keeps serving.
/// </summary>
public sealed class CertificateReloadTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-reload-" + Guid.NewGuid().ToString("N"));
    private TestServer _server = null!;

    private string CertPath => Path.Combine(_dir, "site.crt");

    private string KeyPath => Path.Combine(_dir, "site.key");

    private string Socket => Path.Combine(_dir, "admin.sock");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        SelfSignedCertificate.WritePem(CertPath, KeyPath, ["localhost"], TimeSpan.FromDays(20)); // within 30 days: an expiry warning
        _server = await TestServer.StartAsync($$"""
        {
          "server": { "stateDirectory": "state" },
          "admin": { "socketPath": "{{Socket}}" },
          "listeners": [ { "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "site" } ],
          "certificates": [ { "name": "site", "hosts": ["localhost"], "certificatePath": "{{CertPath}}", "keyPath": "{{KeyPath}}" } ],
          "routes": [ { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "body": "hello" } } ]
        }
        """);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<string> ServedSerialAsync()
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(_server.EndPoint("https"));
        await using var ssl = new SslStream(tcp.GetStream(), false, (_, _, _, _) => true);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" });
        return ssl.RemoteCertificate!.GetSerialNumberString();
    }

    private Task<string> LoggedAsync(long from, string text) => _server.Host.Logs.WaitForLineAsync(from, text);

    /// <summary>Writes a new pair the way tools do: next to the files, then renamed over them.</summary>
    private void Replace(bool matchingKey)
    {
        string tmpCert = CertPath + ".new", tmpKey = KeyPath + ".new";
        SelfSignedCertificate.WritePem(tmpCert, tmpKey, ["localhost"], TimeSpan.FromDays(90));
        File.Move(tmpCert, CertPath, overwrite: true);
        if (matchingKey)
        {
            File.Move(tmpKey, KeyPath, overwrite: true);
        }
    }

    [Fact]
    public async Task Replaced_files_are_served_to_new_connections_and_open_ones_keep_working()
    {
        string before = await ServedSerialAsync();
        await using RawClient open = await RawClient.ConnectAsync(_server.EndPoint("https"), tls: true);
        await open.SendAsync("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        Assert.Equal(200, (await open.ReadResponsesAsync(1)).Single().Status);

        long mark = _server.Host.Logs.Next;
        Replace(matchingKey: true);
        string line = await LoggedAsync(mark, "certificates reloaded");
        Assert.Contains("certificate site", line);

        string after = await ServedSerialAsync();
        Assert.NotEqual(before, after);
        using var served = X509CertificateLoader.LoadCertificate(File.ReadAllBytes(CertPath));
        Assert.Equal(served.SerialNumber, after);

        await open.SendAsync("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); // the connection from before the reload
        Assert.Equal(200, (await open.ReadResponsesAsync(1)).Single().Status);
    }

    [Fact]
    public async Task A_key_that_does_not_match_is_refused_and_the_old_certificate_keeps_serving()
    {
        string before = await ServedSerialAsync();
        long mark = _server.Host.Logs.Next;
        Replace(matchingKey: false); // the new certificate beside the old key
        string refused = await LoggedAsync(mark, "reload refused");
        Assert.Contains("does not match", refused);
        Assert.Equal(before, await ServedSerialAsync());

        mark = _server.Host.Logs.Next;
        File.Move(KeyPath + ".new", KeyPath, overwrite: true); // the matching key arrives: now it goes through
        await LoggedAsync(mark, "certificates reloaded");
        Assert.NotEqual(before, await ServedSerialAsync());
    }

    [Fact]
    public async Task Admin_reload_expiry_metric_and_warning()
    {
        Peer.Result reload = await Peer.RunAsync("curl", ["-sS", "--unix-socket", Socket, "-X", "POST", "http://a/v1/certificates/reload"]);
        Assert.Contains("\"changes\": []", reload.Stdout); // nothing changed on disk
        Peer.Result ctl = await Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "ctl", "--socket", Socket, "certs", "reload"]);
        Assert.Equal(0, ctl.ExitCode);

        Peer.Result metrics = await Peer.RunAsync("curl", ["-sS", "--unix-socket", Socket, "http://a/v1/metrics"]);
        System.Text.RegularExpressions.Match m = System.Text.RegularExpressions.Regex.Match(metrics.Stdout, @"tls_certificate_expiry_seconds\{name=""site""\} (\d+)");
        Assert.True(m.Success, metrics.Stdout);
        Assert.InRange(long.Parse(m.Groups[1].Value), 19 * 86400, 20 * 86400);
        await LoggedAsync(0, "certificate site (localhost) expires in"); // 20 days left: the 30-day warning, logged at start
    }

    [Fact]
    public async Task Uploaded_pem_bundle_is_validated_then_served()
    {
        string before = await ServedSerialAsync();
        string other = Path.Combine(_dir, "other");
        Directory.CreateDirectory(other);
        SelfSignedCertificate.WritePem(Path.Combine(other, "a.crt"), Path.Combine(other, "a.key"), ["localhost"], TimeSpan.FromDays(60));
        SelfSignedCertificate.WritePem(Path.Combine(other, "b.crt"), Path.Combine(other, "b.key"), ["localhost"], TimeSpan.FromDays(60));
        string good = File.ReadAllText(Path.Combine(other, "a.crt")) + File.ReadAllText(Path.Combine(other, "a.key"));
        string mismatched = File.ReadAllText(Path.Combine(other, "a.crt")) + File.ReadAllText(Path.Combine(other, "b.key"));

        async Task<string> Upload(string name, string body) => (await Peer.RunAsync("curl",
            ["-sS", "--unix-socket", Socket, "-X", "PUT", "--data-binary", "@-", "-w", "\n%{http_code}", $"http://a/v1/certificates/{name}/pem"], stdin: body)).Stdout;

        Assert.EndsWith("\n422", await Upload("site", mismatched));
        Assert.EndsWith("\n422", await Upload("site", "not a pem at all"));
        Assert.EndsWith("\n404", await Upload("nosuch", good));
        Assert.Equal(before, await ServedSerialAsync()); // nothing bad reached the files

        string ok = await Upload("site", good);
        Assert.EndsWith("\n200", ok);
        Assert.Contains("certificate site: serial", ok);
        using var uploaded = X509CertificateLoader.LoadCertificate(File.ReadAllBytes(Path.Combine(other, "a.crt")));
        Assert.Equal(uploaded.SerialNumber, await ServedSerialAsync());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeyPath));
    }
}

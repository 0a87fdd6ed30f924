using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.RegularExpressions;
using Appliance.Tests.Support;

namespace Appliance.Tests.Tls;

/// <summary>
/// server.sessionTickets on the real process (the keys are process-wide, so not in-process beside other tests):
/// with key files a session outlives a restart, and files rewritten in place (the newest first, the one it replaces
/// second) are taken without one; generated keys are shown and rotated through the admin API and ctl. openssl
/// s_client -msg counts the NewSessionTicket messages of each handshake.
/// </summary>
public sealed class SessionTicketKeyFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("appliance-ticketkeys-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string File(string name) => Path.Combine(_dir, name);

    private async Task<(ApplianceProcess App, int Port)> StartAsync(string tickets = """{ "keyFiles": ["current.key", "previous.key"] }""")
    {
        string config = File("appliance.json");
        await System.IO.File.WriteAllTextAsync(config, $$"""
        {
          "server": { "stateDirectory": "state", "sessionTickets": {{tickets}} },
          "admin": { "socketPath": "{{File("admin.sock")}}" },
          "listeners": [ { "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "localhost" } ],
          "certificates": [ { "name": "localhost", "hosts": ["localhost"], "certificatePath": "{{TestCertificates.Cert("localhost")}}", "keyPath": "{{TestCertificates.Key("localhost")}}" } ],
          "routes": [ { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "body": "hello" } } ]
        }
        """);
        var app = ApplianceProcess.Start("run", "--config", config);
        int port = int.Parse((await app.WaitForLineAsync(@"listener https: https://127\.0\.0\.1:(\d+)")).Groups[1].Value);
        return (app, port);
    }

    private async Task<(bool Reused, int Tickets)> Handshake(int port, string option)
    {
        Peer.Result r = await Peer.OpenSslAsync("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            ["s_client", "-connect", $"127.0.0.1:{port}", "-servername", "localhost", "-tls1_3", "-msg", "-ign_eof", option, File("session.pem")]);
        Assert.True(r.Stdout.Contains("hello", StringComparison.Ordinal), r.All);
        return (r.Stdout.Contains("Reused, TLSv1.3", StringComparison.Ordinal),
            Regex.Matches(r.Stdout, @"<<< TLS 1\.3, Handshake \[length [0-9a-f]+\], NewSessionTicket").Count);
    }

    [Fact]
    public async Task Sessions_survive_a_restart_and_a_key_rotation_by_rewritten_files()
    {
        byte[] first = RandomNumberGenerator.GetBytes(80);
        await System.IO.File.WriteAllBytesAsync(File("current.key"), first);
        await System.IO.File.WriteAllBytesAsync(File("previous.key"), RandomNumberGenerator.GetBytes(80));

        var (app, port) = await StartAsync();
        await using (app)
        {
            await app.WaitForLineAsync(@"tls: session tickets: 2 key file\(s\); the first seals new tickets");
            Assert.Equal((false, 1), await Handshake(port, "-sess_out")); // one ticket per full handshake by default
        }

        (app, port) = await StartAsync();
        await using (app)
        {
            Assert.Equal((true, 1), await Handshake(port, "-sess_in")); // another process, the same keys: resumed (and a fresh ticket)

            // Rotation as an operator does it: the current key becomes the previous one, a new one becomes current.
            await System.IO.File.WriteAllBytesAsync(File("previous.key"), first);
            await System.IO.File.WriteAllBytesAsync(File("current.key"), RandomNumberGenerator.GetBytes(80));
            await app.WaitForLineAsync(@"certificates reloaded \(.*\): files re-read: [^;]*current\.key[^;]*; session ticket keys: 2 key file");

            Assert.Equal((true, 1), await Handshake(port, "-sess_in")); // the previous key still opens it

            // Keys from files are not rotated by the admin API: that would leave the other nodes behind.
            Peer.Result rotate = await Peer.RunAsync("curl", ["-sS", "--unix-socket", File("admin.sock"), "-X", "POST", "-w", "\n%{http_code}",
                "http://appliance/v1/tls/session-tickets/rotate"]);
            Assert.EndsWith("409", rotate.Stdout.TrimEnd());
            Assert.Contains("rewriting the files", rotate.Stdout);
        }
    }

    private Task<Peer.Result> Admin(string method, string path) =>
        Peer.RunAsync("curl", ["-sS", "--max-time", "20", "--unix-socket", File("admin.sock"), "-X", method, "-w", "\n%{http_code}", "http://appliance" + path]);

    private static (string Body, int Status) Split(Peer.Result r)
    {
        int nl = r.Stdout.LastIndexOf('\n');
        return (r.Stdout[..nl], int.Parse(r.Stdout[(nl + 1)..]));
    }

    [Fact]
    public async Task Generated_keys_are_shown_without_key_material_rotated_and_revoked_on_demand()
    {
        var (app, port) = await StartAsync("""{ "rotate": "30m" }""");
        await using (app)
        {
            (string body, int status) = Split(await Admin("GET", "/v1/tls/session-tickets"));
            Assert.Equal(200, status);
            using JsonDocument before = JsonDocument.Parse(body);
            JsonElement t = before.RootElement;
            Assert.Equal(["ownKeys", "enabled", "source", "keys", "rotateSeconds", "newestKeySince", "certificateContexts", "renewOnResumption",
                "perHandshake", "cacheSize", "cachedSessions", "cacheFullEvictions"],
                t.EnumerateObject().Select(p => p.Name)); // counts and times only: no key, no key name
            Assert.True(t.GetProperty("renewOnResumption").GetBoolean());
            Assert.Equal(1, t.GetProperty("perHandshake").GetInt32());
            Assert.True(t.GetProperty("ownKeys").GetBoolean());
            Assert.True(t.GetProperty("enabled").GetBoolean());
            Assert.Equal("generated", t.GetProperty("source").GetString());
            Assert.Equal(1, t.GetProperty("keys").GetInt32());
            Assert.Equal(1800, t.GetProperty("rotateSeconds").GetInt64());
            DateTimeOffset since = t.GetProperty("newestKeySince").GetDateTimeOffset();

            Assert.Equal((false, 1), await Handshake(port, "-sess_out"));
            (string rotated, int rotateStatus) = Split(await Admin("POST", "/v1/tls/session-tickets/rotate"));
            Assert.Equal(200, rotateStatus);
            using (JsonDocument after = JsonDocument.Parse(rotated))
            {
                Assert.Equal(2, after.RootElement.GetProperty("keys").GetInt32()); // the new key, and the one before still opens tickets
                Assert.True(after.RootElement.GetProperty("newestKeySince").GetDateTimeOffset() > since);
            }

            Assert.Equal((true, 1), await Handshake(port, "-sess_in")); // opened by the older key
            await app.WaitForLineAsync(@"tls: session ticket keys rotated \(admin api\)");

            Peer.Result ctl = await Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "ctl", "--socket", File("admin.sock"), "--json", "tickets", "revoke"]);
            Assert.True(ctl.ExitCode == 0, ctl.All);
            using (JsonDocument revoked = JsonDocument.Parse(ctl.Stdout))
            {
                Assert.Equal(1, revoked.RootElement.GetProperty("keys").GetInt32()); // every older key dropped
            }

            Assert.Equal((false, 1), await Handshake(port, "-sess_in")); // a leaked older key would open nothing now
            await app.WaitForLineAsync(@"tls: session ticket keys revoked \(admin api\)");
            Assert.Equal(400, Split(await Admin("POST", "/v1/tls/session-tickets/rotate?revoke=maybe")).Status);
            Assert.Equal(405, Split(await Admin("DELETE", "/v1/tls/session-tickets")).Status);
            Assert.Equal(405, Split(await Admin("GET", "/v1/tls/session-tickets/rotate")).Status);
        }
    }

    [Fact]
    public async Task Turned_off_sessions_resume_from_the_cache_which_the_admin_api_and_metrics_show()
    {
        var (app, port) = await StartAsync("""{ "enabled": false, "cacheSize": 1000, "perHandshake": 2 }""");
        await using (app)
        {
            await app.WaitForLineAsync(@"tls: session tickets: off \(resumption from the server's session cache only, up to 1,000 sessions per certificate\); 2 TLS 1\.3 ticket\(s\) per full handshake");
            Assert.Equal((false, 2), await Handshake(port, "-sess_out"));
            Assert.Equal((true, 1), await Handshake(port, "-sess_in"));

            (string body, int status) = Split(await Admin("GET", "/v1/tls/session-tickets"));
            Assert.Equal(200, status);
            using JsonDocument doc = JsonDocument.Parse(body);
            JsonElement t = doc.RootElement;
            Assert.False(t.GetProperty("enabled").GetBoolean());
            Assert.Equal(1000, t.GetProperty("cacheSize").GetInt32());
            Assert.Equal(3, t.GetProperty("cachedSessions").GetInt64()); // two tickets of the full handshake, one of the resumption
            Assert.Equal(0, t.GetProperty("cacheFullEvictions").GetInt64());

            (string metrics, _) = Split(await Admin("GET", "/v1/metrics"));
            Assert.Contains("\ntls_session_cache_sessions 3\n", metrics);
            Assert.Contains("\ntls_session_cache_evictions_total 0\n", metrics);
        }
    }

    [Fact]
    public async Task A_session_never_carries_past_a_listener_that_verifies_client_certificates_differently()
    {
        (X509Certificate2 caA, ECDsa keyA) = ClientCertificates.MakeCa("CN=Client CA A");
        (X509Certificate2 caB, ECDsa keyB) = ClientCertificates.MakeCa("CN=Client CA B");
        await System.IO.File.WriteAllTextAsync(File("ca-a.pem"), caA.ExportCertificatePem());
        await System.IO.File.WriteAllTextAsync(File("ca-b.pem"), caB.ExportCertificatePem());
        ClientCertificates.Write(_dir, "client-a", "CN=client-a", caA, keyA);
        string config = File("appliance.json");
        await System.IO.File.WriteAllTextAsync(config, $$"""
        {
          "server": { "stateDirectory": "state" },
          "admin": { "socketPath": "{{File("admin.sock")}}" },
          "listeners": [
            { "name": "open", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "localhost" },
            { "name": "a", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "localhost",
              "clientCertificates": { "mode": "required", "caFile": "{{File("ca-a.pem")}}" } },
            { "name": "b", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "localhost",
              "clientCertificates": { "mode": "required", "caFile": "{{File("ca-b.pem")}}" } }
          ],
          "certificates": [ { "name": "localhost", "hosts": ["localhost"], "certificatePath": "{{TestCertificates.Cert("localhost")}}", "keyPath": "{{TestCertificates.Key("localhost")}}" } ],
          "routes": [ { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "body": "hello" } } ]
        }
        """);
        await using ApplianceProcess app = ApplianceProcess.Start("run", "--config", config);
        int open = int.Parse((await app.WaitForLineAsync(@"listener open: https://127\.0\.0\.1:(\d+)")).Groups[1].Value);
        int a = int.Parse((await app.WaitForLineAsync(@"listener a: https://127\.0\.0\.1:(\d+)")).Groups[1].Value);
        int b = int.Parse((await app.WaitForLineAsync(@"listener b: https://127\.0\.0\.1:(\d+)")).Groups[1].Value);

        async Task<Peer.Result> Exchange(int port, string session, string option, params string[] extra) =>
            await Peer.OpenSslAsync("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                ["s_client", "-connect", $"127.0.0.1:{port}", "-servername", "localhost", "-ign_eof", option, session, .. extra]);

        foreach (string protocol in new[] { "-tls1_3", "-tls1_2" })
        {
            // A session made without a client certificate, offered to a listener that requires one.
            string plain = File($"plain{protocol}.pem");
            Peer.Result first = await Exchange(open, plain, "-sess_out", protocol);
            Assert.Contains("hello", first.Stdout);
            Peer.Result crossed = await Exchange(a, plain, "-sess_in", protocol);
            Assert.DoesNotContain("hello", crossed.Stdout);

            // A session whose client certificate listener A verified, offered to B, which trusts another CA.
            string verified = File($"verified{protocol}.pem");
            Peer.Result withCert = await Exchange(a, verified, "-sess_out", protocol, "-cert", File("client-a.crt"), "-key", File("client-a.key"));
            Assert.Contains("hello", withCert.Stdout);
            Peer.Result resumedHere = await Exchange(a, verified, "-sess_in", protocol);
            Assert.True(resumedHere.Stdout.Contains("hello", StringComparison.Ordinal), resumedHere.All); // on A itself it may resume
            Peer.Result crossedCa = await Exchange(b, verified, "-sess_in", protocol);
            Assert.DoesNotContain("hello", crossedCa.Stdout);
        }
    }
}

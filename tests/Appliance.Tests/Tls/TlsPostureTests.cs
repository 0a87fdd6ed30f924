using System.Text.RegularExpressions;
using Appliance.Tests.Support;

namespace Appliance.Tests.Tls;

/// <summary>
/// The TLS posture of the real process (the policy is process-wide OpenSSL configuration, set at start): only
/// TLS 1.2/1.3, only AEAD suites with forward secrecy, X25519 and P-256, resumption still offered; checked with
/// openssl s_client and with testssl.
/// </summary>
[Collection(QuietMachineCollection.Name)]
public sealed class TlsPostureTests : IAsyncLifetime
{
    private ApplianceProcess _app = null!;
    private int _port;

    public async Task InitializeAsync()
    {
        string dir = Path.Combine(Path.GetTempPath(), "appliance-posture-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string config = Path.Combine(dir, "appliance.json");
        await File.WriteAllTextAsync(config, $$"""
        {
          "server": { "stateDirectory": "state" },
          "admin": { "socketPath": "{{Path.Combine(dir, "admin.sock")}}" },
          "listeners": [ { "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "localhost" } ],
          "certificates": [ { "name": "localhost", "hosts": ["localhost"], "certificatePath": "{{TestCertificates.Cert("localhost")}}", "keyPath": "{{TestCertificates.Key("localhost")}}" } ],
          "routes": [ { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "body": "hello" } } ]
        }
        """);
        _app = ApplianceProcess.Start("run", "--config", config);
        _port = int.Parse((await _app.WaitForLineAsync(@"listener https: https://127\.0\.0\.1:(\d+)")).Groups[1].Value);
    }

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private Task<Peer.Result> SClient(params string[] args) =>
        Peer.OpenSslAsync("", ["s_client", "-connect", $"127.0.0.1:{_port}", "-servername", "localhost", .. args]);

    [Theory]
    [InlineData(new[] { "-tls1_1" }, false)]
    [InlineData(new[] { "-tls1" }, false)]
    [InlineData(new[] { "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256" }, false)]  // CBC
    [InlineData(new[] { "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA" }, false)]     // CBC, SHA-1
    [InlineData(new[] { "-tls1_2", "-curves", "secp384r1" }, false)]
    [InlineData(new[] { "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256" }, true)]
    [InlineData(new[] { "-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305" }, true)]
    [InlineData(new[] { "-tls1_3", "-groups", "X25519" }, true)]
    [InlineData(new[] { "-tls1_3", "-groups", "P-256" }, true)]
    [InlineData(new[] { "-tls1_3", "-groups", "secp384r1" }, false)]
    [InlineData(new[] { "-tls1_3" }, true)]
    public async Task Only_modern_protocols_suites_and_groups(string[] args, bool accepted)
    {
        Peer.Result r = await SClient(args);
        bool handshake = r.Stdout.Contains("Cipher is ", StringComparison.Ordinal) && !r.Stdout.Contains("Cipher is (NONE)", StringComparison.Ordinal);
        Assert.True(handshake == accepted, r.All);
    }

    [Theory]
    // The server's order (Mozilla intermediate) whatever the client prefers among AES suites...
    [InlineData(new[] { "-tls1_3" }, "TLS_AES_128_GCM_SHA256")]
    [InlineData(new[] { "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256" }, "TLS_AES_128_GCM_SHA256")]
    [InlineData(new[] { "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384" }, "TLS_AES_256_GCM_SHA384")]
    [InlineData(new[] { "-tls1_2" }, "ECDHE-ECDSA-AES128-GCM-SHA256")]
    [InlineData(new[] { "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256" }, "ECDHE-ECDSA-AES128-GCM-SHA256")]
    // ...except that a client asking for ChaCha20-Poly1305 first (no AES instructions) gets it.
    [InlineData(new[] { "-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256" }, "TLS_CHACHA20_POLY1305_SHA256")]
    [InlineData(new[] { "-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256" }, "ECDHE-ECDSA-CHACHA20-POLY1305")]
    public async Task Suites_are_chosen_in_the_servers_order_with_chacha20_for_clients_that_ask_for_it_first(string[] args, string expected)
    {
        Peer.Result r = await SClient(args);
        Assert.Matches(@"Cipher is " + Regex.Escape(expected) + @"\b", r.Stdout);
    }

    [Theory]
    [InlineData("-tls1_2", "-no_ticket")] // session IDs
    [InlineData("-tls1_2", "-tls1_2")]    // tickets
    [InlineData("-tls1_3", "-tls1_3")]    // PSK tickets
    public async Task Session_resumption_still_works_under_the_policy(string protocol, string mode)
    {
        string session = Path.Combine(Path.GetTempPath(), "sess-" + Guid.NewGuid().ToString("N"));
        string[] extra = mode == "-no_ticket" ? ["-no_ticket"] : [];
        await Peer.OpenSslAsync("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", ["s_client", "-connect", $"127.0.0.1:{_port}", "-servername", "localhost", protocol, .. extra, "-sess_out", session, "-ign_eof"]);
        Peer.Result again = await Peer.OpenSslAsync("", ["s_client", "-connect", $"127.0.0.1:{_port}", "-servername", "localhost", protocol, .. extra, "-sess_in", session]);
        Assert.Contains("Reused", again.Stdout);
    }

    [Fact]
    public async Task Testssl_finds_nothing_weak_and_no_vulnerability()
    {
        Peer.Result r = await Peer.RunAsync("testssl", ["--warnings", "batch", "--quiet", "--nodns", "none", "--color", "0", "-p", "-s", "-f", "-S", "-h", "-U",
            $"https://127.0.0.1:{_port}"], timeout: TimeSpan.FromMinutes(5));
        string o = r.Stdout;
        Assert.Matches(@"SSLv2\s+not offered", o);
        Assert.Matches(@"SSLv3\s+not offered", o);
        Assert.Matches(@"TLS 1\s+not offered", o);
        Assert.Matches(@"TLS 1\.1\s+not offered", o);
        Assert.Matches(@"Obsolete CBC ciphers.*not offered", o);
        Assert.Matches(@"Triple DES Ciphers / IDEA\s+not offered", o);
        // testssl's resumption probes (s_client </dev/null with -sess_out, then -sess_in) race the server on a busy box:
        // s_client may quit before the TLS 1.3 ticket arrives ("ID: no", or "Connect problem: ... not possible"), as
        // reproduced here with two CPU hogs (one of three runs). Resumption by ticket and by ID is asserted without
        // that race by Session_resumption_still_works_under_the_policy; here, only what testssl decides without a
        // race: tickets are offered (the extension is there, else it says "Tickets no").
        string resumption = o.Split('\n').FirstOrDefault(l => l.Contains("Session Resumption")) ?? o;
        Assert.Contains("Session Resumption", resumption);
        Assert.DoesNotContain("Tickets no", resumption);
        Assert.DoesNotContain("VULNERABLE", o);
        // The only "NOT ok" lines are about the test's self-signed certificate (no chain, no OCSP/CRL URI).
        Assert.All(o.Split('\n').Where(l => l.Contains("NOT ok", StringComparison.Ordinal)),
            l => Assert.True(l.Contains("self signed") || l.Contains("OCSP URI") || l.Contains("CRL"), l));
    }
}

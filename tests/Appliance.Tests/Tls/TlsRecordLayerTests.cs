using Appliance.Tests.Support;

namespace Appliance.Tests.Tls;

/// <summary>
/// The records after the handshake, driven by real clients that control their records: Python's ssl module through
/// memory BIOs (Peers/tls_records.py) and openssl s_client's key updates. With server.tlsRecordLayer "evp" (the
/// default) a TLS 1.3 connection's records are the appliance's own (RecordProtection) and a TLS 1.2 one's OpenSSL's;
/// every other HTTPS test in the suite runs over the same two.
/// </summary>
public sealed class TlsRecordLayerTests : IAsyncLifetime
{
    private const string SystemPython = "/usr/bin/python3";
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<Peer.Result> RunAsync(string scenario, string version)
    {
        string script = Path.Combine(AppContext.BaseDirectory, "Peers", "tls_records.py");
        return await Peer.RunAsync(SystemPython, [script, _server.HttpsPort.ToString(), scenario, version], timeout: TimeSpan.FromSeconds(60));
    }

    private async Task AssertStillServesAsync()
    {
        Peer.Result r = await Peer.CurlAsync("-k", "--http1.1", $"https://localhost:{_server.HttpsPort}/");
        Assert.True(r.ExitCode == 0 && r.Stdout == "Hello, World!", r.All);
    }

    [Theory]
    [InlineData("coalesced", "1.3")] // the request arrives with the client's Finished: SslStream must not keep it
    [InlineData("coalesced", "1.2")]
    [InlineData("pipelined", "1.3")] // three records in one read: three answers
    [InlineData("pipelined", "1.2")]
    [InlineData("split", "1.3")]     // a record a byte at a time
    [InlineData("split", "1.2")]
    [InlineData("keyupdate", "1.3")] // s_client "K": new keys both ways, before each of two requests
    [InlineData("keyupdate", "noreq")]
    [InlineData("onesend", "1.3")]   // the session ticket leaves with the first answer, in one segment
    [InlineData("idleticket", "1.3")] // and without one: a client that sends nothing yet still gets its ticket
    [InlineData("idleticket", "1.2")] // (TLS 1.2: the server's last flight, which the client waits for)
    public async Task Records_however_they_arrive_are_answered(string scenario, string version)
    {
        Peer.Result r = await RunAsync(scenario, version);
        Assert.True(r.ExitCode == 0, $"tls_records.py {scenario} {version}:\n{r.All}");
    }

    [Theory]
    [InlineData("truncated", "1.3")] // half a record, then FIN
    [InlineData("truncated", "1.2")]
    [InlineData("corrupt", "1.3")]   // a record that fails authentication: bad_record_mac
    [InlineData("corrupt", "1.2")]
    [InlineData("overflow", "1.3")]  // a record over the size limit: record_overflow
    [InlineData("overflow", "1.2")]
    [InlineData("alert", "1.3")]       // the client's fatal alert after a forged answer
    [InlineData("alert", "1.2")]
    [InlineData("renegotiate", "1.2")] // refused by closing, as nginx does (it would wait for our next write)
    public async Task A_broken_record_gets_its_alert_and_closes_its_connection_without_an_answer(string scenario, string version)
    {
        Peer.Result r = await RunAsync(scenario, version);
        Assert.True(r.ExitCode == 0, $"tls_records.py {scenario} {version}:\n{r.All}");
        await AssertStillServesAsync();
    }

    [Theory]
    [InlineData("evp", "evp", "openssl")] // the default: TLS 1.2 stays on OpenSSL's records
    [InlineData("openssl", "openssl", "openssl")]
    [InlineData("sslstream", "sslstream", "sslstream")]
    public async Task Each_layer_serves_and_counts_its_connections(string layer, string tls13, string tls12)
    {
        string dir = Path.Combine(Path.GetTempPath(), "appliance-records-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string config = Path.Combine(dir, "appliance.json");
        await File.WriteAllTextAsync(config, $$"""
        {
          "server": { "stateDirectory": "state", "tlsRecordLayer": "{{layer}}" },
          "admin": { "socketPath": "{{dir}}/admin.sock" },
          "listeners": [ { "name": "tls", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "self" } ],
          "certificates": [ { "name": "self", "hosts": ["localhost"], "certificatePath": "{{dir}}/c.pem", "keyPath": "{{dir}}/k.pem", "selfSigned": true } ],
          "routes": [ { "id": "hello", "match": { "pathPrefix": "/" }, "direct": { "status": 200, "body": "hi" } } ]
        }
        """);
        await using ApplianceProcess app = ApplianceProcess.Start("run", "--config", config);
        int port = int.Parse((await app.WaitForLineAsync(@"listener tls: https://127\.0\.0\.1:(\d+)")).Groups[1].Value);
        foreach (string[] version in new[] { new[] { "--tlsv1.3" }, ["--tlsv1.2", "--tls-max", "1.2"] })
        {
            Peer.Result r = await Peer.CurlAsync(["-k", .. version, $"https://localhost:{port}/", $"https://localhost:{port}/"]);
            Assert.True(r.ExitCode == 0 && r.Stdout == "hihi", r.All); // two requests on one connection
        }

        Peer.Result metrics = await Peer.CurlAsync("--unix-socket", $"{dir}/admin.sock", "http://x/v1/metrics");
        foreach (string name in new[] { "evp", "openssl", "sslstream" })
        {
            int expected = (name == tls13 ? 1 : 0) + (name == tls12 ? 1 : 0);
            Assert.Contains($"tls_record_layer_connections_total{{layer=\"{name}\"}} {expected}\n", metrics.Stdout);
        }
    }
}

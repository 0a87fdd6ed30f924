using System.Text;
using System.Text.RegularExpressions;
using Appliance.Tests.Support;
using Appliance.Tls;

namespace Appliance.Tests.Tls;

/// <summary>
/// Session resumption with 200 certificates on one listener, checked from outside with openssl s_client: every
/// certificate gets a session, then every one of them is resumed. Plain .NET loses these: its OpenSSL context cache
/// evicts every context without a live connection at each 32nd insertion, and the session cache goes with it.
/// </summary>
public sealed class ResumptionAtScaleTests : IAsyncLifetime
{
    private const int Certificates = 200;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-resume-" + Guid.NewGuid().ToString("N"));
    private ApplianceProcess _app = null!;
    private int _port;

    private string Socket => Path.Combine(_dir, "admin.sock");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        var certs = new StringBuilder();
        for (int i = 0; i < Certificates; i++)
        {
            string crt = Path.Combine(_dir, $"h{i}.crt"), key = Path.Combine(_dir, $"h{i}.key");
            SelfSignedCertificate.WritePem(crt, key, [$"h{i}.resume.test"], TimeSpan.FromDays(2));
            certs.Append(i == 0 ? "" : ",").Append($$"""{ "name": "h{{i}}", "hosts": ["h{{i}}.resume.test"], "certificatePath": "{{crt}}", "keyPath": "{{key}}" }""");
        }

        string config = Path.Combine(_dir, "appliance.json");
        await File.WriteAllTextAsync(config, $$"""
        {
          "server": { "stateDirectory": "state" },
          "admin": { "socketPath": "{{Socket}}" },
          "listeners": [ { "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "h0" } ],
          "certificates": [ {{certs}} ],
          "routes": [ { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "body": "hello" } } ]
        }
        """);
        _app = ApplianceProcess.Start("run", "--config", config);
        _port = int.Parse((await _app.WaitForLineAsync(@"listener https: https://127\.0\.0\.1:(\d+)")).Groups[1].Value);
    }

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Theory]
    [InlineData("-tls1_3")]              // PSK tickets
    [InlineData("-tls1_2")]              // session tickets
    [InlineData("-tls1_2", "-no_ticket")] // session IDs (server-side cache)
    public async Task Every_one_of_200_certificates_resumes_after_all_were_used(params string[] mode)
    {
        string[] sessions = [.. Enumerable.Range(0, Certificates).Select(i => Path.Combine(_dir, $"s{i}{string.Concat(mode)}.pem"))];

        // Pass 1: a full handshake and a session for each name, which grows the context cache past 32 six times over.
        await ForEachAsync(i => Handshake(i, mode, "-sess_out", sessions[i]), r => Assert.Contains("New, TLS", r.Stdout));

        // A config change in between: the listener gets a new certificate store (same certificates); the contexts
        // that hold sessions must stay pinned across the swap.
        Peer.Result put = await Peer.CurlAsync("--unix-socket", Socket, "-X", "PUT", "http://a/v1/routes/extra", "-H", "Content-Type: application/json",
            "--data", """{ "match": { "path": "/extra" }, "direct": { "status": 204 } }""");
        Assert.True(put.ExitCode == 0 && Regex.IsMatch(put.Stdout, @"""revision"":\s*2"), put.All);

        // Pass 2: each session comes back. Without pinning, all but the most recent few fail here.
        var failed = new List<int>();
        await ForEachAsync(i => Handshake(i, mode, "-sess_in", sessions[i]), (r, i) =>
        {
            if (!r.Stdout.Contains("Reused, TLS", StringComparison.Ordinal))
            {
                lock (failed) failed.Add(i);
            }
        });
        Assert.True(failed.Count == 0, $"{failed.Count} of {Certificates} did not resume: h{string.Join(", h", failed.Order().Take(20))}");

        // The server counted them as resumed too.
        Peer.Result metrics = await Peer.RunAsync("curl", ["-sS", "--unix-socket", Socket, "http://a/v1/metrics"]);
        Match m = Regex.Match(metrics.Stdout, @"tls_handshakes_total\{result=""resumed""\} (\d+)");
        Assert.True(m.Success, metrics.Stdout);
        Assert.True(long.Parse(m.Groups[1].Value) >= Certificates, metrics.Stdout);
    }

    private Task<Peer.Result> Handshake(int i, string[] mode, string sessionFlag, string session) =>
        Peer.OpenSslAsync("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ["s_client", "-connect", $"127.0.0.1:{_port}", "-servername", $"h{i}.resume.test", .. mode, sessionFlag, session, "-ign_eof"]);

    private static Task ForEachAsync(Func<int, Task<Peer.Result>> run, Action<Peer.Result> check) =>
        ForEachAsync(run, (r, _) => check(r));

    private static async Task ForEachAsync(Func<int, Task<Peer.Result>> run, Action<Peer.Result, int> check)
    {
        // A few at a time: enough to keep both cores busy, not so many that s_client start-up dominates.
        await Parallel.ForEachAsync(Enumerable.Range(0, Certificates), new ParallelOptions { MaxDegreeOfParallelism = 4 },
            async (i, _) => check(await run(i), i));
    }
}

using System.Text.RegularExpressions;
using Appliance.Telemetry;
using Appliance.Tests.Packaging;
using Appliance.Tests.Support;

namespace Appliance.Tests.Server;

/// <summary>
/// The hand-run load scripts in perf/wrk and perf/k6 do what their headers say, against the real gateway: each wrk
/// script runs briefly under wrk and its RESULT line is checked, and every k6 script passes perf/k6/check.mjs
/// (k6 itself is not installable here).
/// </summary>
public sealed partial class PerfScriptTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static string Perf(string file) => Path.Combine(DebianPackageFixture.RepositoryRoot, "perf", file);

    /// <summary>Runs wrk with a script and returns the script's RESULT fields; no socket error, no non-2xx.</summary>
    private async Task<Dictionary<string, double>> WrkAsync(string script, int connections, string duration, params string[] scriptArgs)
    {
        string[] args = ["-t1", $"-c{connections}", $"-d{duration}", "--timeout", "10s", "-s", Perf(script), $"https://127.0.0.1:{_server.HttpsPort}/"];
        if (scriptArgs.Length > 0)
        {
            args = [.. args, "--", .. scriptArgs];
        }

        Peer.Result r = await Peer.RunAsync("wrk", args, timeout: TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, r.All);
        Match line = ResultLine().Match(r.Stdout);
        Assert.True(line.Success, r.All);
        Dictionary<string, double> result = Field().Matches(line.Value)
            .ToDictionary(m => m.Groups[1].Value, m => double.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
        foreach (string error in new[] { "non2xx", "connect", "read", "write", "timeout" })
        {
            Assert.True(result[error] == 0, $"{error}={result[error]}\n{r.All}");
        }

        return result;
    }

    [Fact]
    public async Task S1_and_post_body_scripts_report_their_requests()
    {
        Assert.True((await WrkAsync("wrk/s1-direct.lua", 8, "1s"))["requests"] > 20);
        Assert.True((await WrkAsync("wrk/post-body.lua", 8, "1s", "2048"))["requests"] > 20);
    }

    [Fact]
    public async Task S5_script_resumes_a_handshake_for_every_request()
    {
        long resumedBefore = Resumed();
        double requests = (await WrkAsync("wrk/s5-resumed.lua", 2, "2s"))["requests"];

        // Every request is a new connection; all but each slot's first offer the session wrk kept. Other tests
        // running meanwhile can only add to the process-wide count. A handful is enough to tell: a server that left
        // wrk no fresh ticket after a resumption would resume only every other connection. (The count is not a
        // speed test: a clean-clone CI run, JIT-compiling the TLS path while other tests started, made 6 in 1 s.)
        Assert.True(requests >= 6, $"requests={requests}");
        Assert.True(Resumed() - resumedBefore >= requests - 2, $"resumed {Resumed() - resumedBefore} of {requests}");
    }

    [Fact]
    public async Task S6_script_makes_one_request_per_connection_then_holds_it_idle()
    {
        Dictionary<string, double> result = await WrkAsync("wrk/s6-idle.lua", 40, "2s", "40");
        Assert.Equal(40, result["requests"]);
    }

    [Fact]
    public async Task S8_script_trickles_a_request_per_connection_every_interval()
    {
        // 2 s with a 500 ms interval: the first request within the first interval, then one per interval, so 2 to
        // 5 per connection; a closed loop (no delay) would make thousands.
        double requests = (await WrkAsync("wrk/s8-held.lua", 20, "2s", "20", "500"))["requests"];
        Assert.InRange(requests, 40, 100);
    }

    [Fact]
    public async Task Every_k6_script_passes_the_shape_check()
    {
        Peer.Result r = await Peer.RunAsync("node", [Perf("k6/check.mjs")], timeout: TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, r.All);
        string[] scripts = Directory.GetFiles(Perf("k6"), "*.js").Select(Path.GetFileName).ToArray()!;
        Assert.Contains("s3-h2.js", scripts);
        Assert.Contains("s4-full-handshakes.js", scripts);
        foreach (string script in scripts)
        {
            Assert.Contains($"ok   {script}:", r.Stdout);
        }
    }

    private static long Resumed() => TlsHandshakeCounters.Snapshot().Single(p => p.Key == "resumed").Value;

    [GeneratedRegex(@"RESULT [^\n]*")]
    private static partial Regex ResultLine();

    [GeneratedRegex(@"(\w+)=([0-9.]+)")]
    private static partial Regex Field();
}

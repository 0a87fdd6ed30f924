using Appliance.Tests.Support;

namespace Appliance.Tests.Proxy;

/// <summary>Power of two choices weighs each destination by the EWMA of its response-head latency times its load.</summary>
public sealed class LatencyAwareBalancingTests
{
    [Fact]
    public async Task Power_of_two_choices_prefers_the_faster_destination()
    {
        await using var fast = new ScriptedUpstream(_ => Task.FromResult(ScriptedUpstream.Ok("fast")));
        // The slow one's pace is the behaviour under test, not synchronisation. Well above what a first request to
        // the fast one (a new connection, on a loaded test machine) can take, so the order of the two is never in doubt.
        await using var slow = new ScriptedUpstream(async _ => { await Task.Delay(400); return ScriptedUpstream.Ok("slow"); });
        await using TestServer server = await TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: """
            { "id": "p2c", "order": -1, "match": { "pathPrefix": "/" }, "cluster": "two" },
            """).Replace("\"routes\": [", $$"""
              "clusters": [ { "id": "two", "loadBalancing": "powerOfTwoChoices",
                              "destinations": [ { "address": "{{fast.Address}}" }, { "address": "{{slow.Address}}" } ] } ],
              "routes": [
            """));

        // Both get sampled first (an unsampled destination costs least), then one at a time the faster one wins.
        var answers = new List<string>();
        for (int i = 0; i < 24; i++)
        {
            Peer.Result r = await Peer.CurlAsync($"http://127.0.0.1:{server.HttpPort}/x");
            answers.Add(r.Stdout);
        }

        Assert.Contains("slow", answers.Take(4));
        Assert.All(answers.Skip(4), a => Assert.Equal("fast", a));
        Assert.True(server.Host.Snapshot.Clusters[0].Destinations[1].LatencyEwmaMilliseconds >= 100);
    }

    [Fact]
    public void A_latency_estimate_fades_while_the_destination_gets_no_traffic()
    {
        var timeouts = new Appliance.Proxy.UpstreamTimeouts();
        using var once = new Appliance.Proxy.DestinationModel("a:1", "a", 1, 1, 8, timeouts);
        using var steady = new Appliance.Proxy.DestinationModel("b:1", "b", 1, 1, 8, timeouts);
        long f = System.Diagnostics.Stopwatch.Frequency, t0 = 1_000 * f;
        once.RecordLatency(f * 3 / 10, t0);   // one answer in 300 ms, then nothing
        steady.RecordLatency(f * 15 / 100, t0); // 150 ms, and again every time it is asked
        Assert.True(once.CostAt(t0) > steady.CostAt(t0));
        long later = t0 + (8 * f);
        steady.RecordLatency(f * 15 / 100, later);
        Assert.True(once.CostAt(later) < steady.CostAt(later), "after 8 s unasked, 300 ms × e^-0.8 ≈ 135 ms is below a fresh 150 ms");
        Assert.Equal(once.CostAt(t0), once.CostAt(t0 - f)); // a clock read before the sample does not grow it
    }
}

/// <summary>timeouts.total bounds the whole exchange: 504 before the response starts, a cut connection after.</summary>
public sealed class TotalTimeoutTests
{
    private static Task<TestServer> StartAsync(string address) => TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: """
        { "id": "t", "order": -1, "match": { "pathPrefix": "/" }, "cluster": "t" },
        """).Replace("\"routes\": [", $$"""
          "clusters": [ { "id": "t", "destinations": [ { "address": "{{address}}" } ], "timeouts": { "total": "2s" },
                          "healthCheck": { "passive": { "consecutiveFailures": 0 } } } ],
          "routes": [
        """));

    [Fact]
    public async Task A_late_upstream_gets_504_at_the_total_timeout()
    {
        var release = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var late = new ScriptedUpstream(_ => release.Task);
        await using TestServer server = await StartAsync(late.Address);
        await using RawClient client = await RawClient.ConnectAsync(server.EndPoint("http"));
        await client.SendAsync("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n");
        HttpResponse r = (await client.ReadResponsesAsync(1, TimeSpan.FromSeconds(10))).Single();
        release.SetResult(ScriptedUpstream.Ok("too late"));
        Assert.Equal(504, r.Status);
        Assert.Contains("timeouts.total", r.Body);
    }

    [Fact]
    public async Task A_response_that_stalls_past_the_total_timeout_is_cut()
    {
        // Ten bytes announced, two sent, the rest never: the client must not see it as complete.
        await using var stalling = new ScriptedUpstream(head => Task.FromResult(head.StartsWith("GET /warm ", StringComparison.Ordinal)
            ? ScriptedUpstream.Ok("warm")
            : "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"));
        await using TestServer server = await StartAsync(stalling.Address);
        await using RawClient client = await RawClient.ConnectAsync(server.EndPoint("http"));

        // One whole exchange first, on the same connection and upstream: the stalled one must have its head relayed
        // well within the 2 s. Cold (a fresh test process compiling the proxy path on a loaded box) the clock could
        // run out before the head, which is a correct 504 on a connection kept alive, not the cut tested here.
        await client.SendAsync("GET /warm HTTP/1.1\r\nHost: localhost\r\n\r\n");
        Assert.Equal("warm", (await client.ReadResponsesAsync(1, TimeSpan.FromSeconds(10))).Single().Body);

        await client.SendAsync("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n");
        string all = await client.ReadToEndAsync(TimeSpan.FromSeconds(10));
        Assert.StartsWith("HTTP/1.1 200 ", all);
        Assert.EndsWith("\r\n\r\nab", all);
    }
}

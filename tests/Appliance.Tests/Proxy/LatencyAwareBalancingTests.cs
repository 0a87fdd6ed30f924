using Appliance.Tests.Support;

namespace Appliance.Tests.Proxy;

/// <summary>Power of two choices weighs each destination by the EWMA of its response-head latency times its load.</summary>
public sealed class LatencyAwareBalancingTests
{
    [Fact]
    public async Task Power_of_two_choices_prefers_the_faster_destination()
    {
        await using var fast = new ScriptedUpstream(_ => Task.FromResult(ScriptedUpstream.Ok("fast")));
        // The slow one's pace is the behaviour under test, not synchronisation.
        await using var slow = new ScriptedUpstream(async _ => { await Task.Delay(150); return ScriptedUpstream.Ok("slow"); });
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
}

using Appliance.Tests.Support;

namespace Appliance.Tests.Proxy;

/// <summary>Load balancing and health over two real nginx upstreams ("a" and "b").</summary>
public sealed class LoadBalancingTests : IAsyncLifetime
{
    private NginxUpstream _a = null!;
    private NginxUpstream _b = null!;

    public async Task InitializeAsync()
    {
        _a = await NginxUpstream.StartAsync("a");
        _b = await NginxUpstream.StartAsync("b");
    }

    public async Task DisposeAsync()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
    }

    private Task<TestServer> StartAsync(string clusterExtra) => TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: """
            { "id": "lb", "order": -1, "match": { "pathPrefix": "/" }, "cluster": "two" },
            """).Replace("\"routes\": [", $$"""
              "clusters": [ { "id": "two", "destinations": [ { "address": "{{_a.Address}}" }, { "address": "{{_b.Address}}" } ] {{clusterExtra}} } ],
              "routes": [
            """));

    private static async Task<string> GetAsync(TestServer server, string extraHeader = "")
    {
        await using RawClient client = await RawClient.ConnectAsync(server.EndPoint("http"));
        await client.SendAsync($"GET /id.txt HTTP/1.1\r\nHost: localhost\r\n{extraHeader}\r\n");
        HttpResponse r = (await client.ReadResponsesAsync(1)).Single();
        return r.Status == 200 ? r.Body : r.Status.ToString();
    }

    [Fact]
    public async Task Round_robin_alternates_between_destinations()
    {
        await using TestServer server = await StartAsync("");
        var seen = new List<string>();
        for (int i = 0; i < 10; i++)
        {
            seen.Add(await GetAsync(server));
        }

        Assert.Equal(5, seen.Count(s => s == "a"));
        Assert.Equal(5, seen.Count(s => s == "b"));
    }

    [Fact]
    public async Task Weights_shape_the_round_robin_share()
    {
        await using TestServer server = await TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: """
            { "id": "lb", "order": -1, "match": { "pathPrefix": "/" }, "cluster": "two" },
            """).Replace("\"routes\": [", $$"""
              "clusters": [ { "id": "two", "destinations": [ { "address": "{{_a.Address}}", "weight": 3 }, { "address": "{{_b.Address}}", "weight": 1 } ] } ],
              "routes": [
            """));
        var seen = new List<string>();
        for (int i = 0; i < 8; i++)
        {
            seen.Add(await GetAsync(server));
        }

        Assert.Equal(6, seen.Count(s => s == "a"));
    }

    [Fact]
    public async Task Consistent_hash_keeps_a_key_on_one_destination_and_spreads_keys()
    {
        await using TestServer server = await StartAsync(""", "loadBalancing": "consistentHash", "hashOn": "header:X-User" """);
        var byUser = new Dictionary<string, HashSet<string>>();
        for (int u = 0; u < 20; u++)
        {
            for (int i = 0; i < 3; i++)
            {
                string served = await GetAsync(server, $"X-User: user-{u}\r\n");
                byUser.TryAdd($"user-{u}", []);
                byUser[$"user-{u}"].Add(served);
            }
        }

        Assert.All(byUser.Values, set => Assert.Single(set));                 // sticky
        Assert.Equal(2, byUser.Values.SelectMany(s => s).Distinct().Count()); // both used
    }

    [Fact]
    public async Task Least_requests_uses_both_destinations()
    {
        await using TestServer server = await StartAsync(""", "loadBalancing": "leastRequests" """);
        var seen = new HashSet<string>();
        for (int i = 0; i < 10; i++)
        {
            seen.Add(await GetAsync(server));
        }

        Assert.Contains("a", seen);
    }

    [Fact]
    public async Task Passive_health_ejects_a_stopped_destination_then_traffic_flows_to_the_other()
    {
        await using TestServer server = await StartAsync(""", "healthCheck": { "passive": { "consecutiveFailures": 1, "ejectionTime": "60s" } } """);
        await _b.StopAsync();
        var results = new List<string>();
        for (int i = 0; i < 10; i++)
        {
            results.Add(await GetAsync(server));
        }

        // at most the one request that found b down fails (a 502, not a hang); the rest go to a
        Assert.True(results.Count(r => r == "502") <= 1, string.Join(",", results));
        Assert.True(results.Skip(2).All(r => r == "a"), string.Join(",", results));
    }

    [Fact]
    public async Task Active_health_marks_a_destination_down_and_up_again()
    {
        await using TestServer server = await StartAsync(""", "healthCheck": { "active": { "interval": "200ms", "timeout": "1s", "path": "/hello.txt", "healthyThreshold": 1, "unhealthyThreshold": 1 }, "passive": { "consecutiveFailures": 0 } } """);
        await _b.StopAsync();
        Assert.True(await EventuallyOnlyAsync(server, "a"), "b was not marked down");
        await _b.RestartAsync();
        Assert.True(await EventuallyServedByAsync(server, "b"), "b was not marked up again");
    }

    private static async Task<bool> EventuallyOnlyAsync(TestServer server, string expected)
    {
        // requests are the events: keep asking until ten in a row come from the expected destination (bounded)
        var deadline = DateTime.UtcNow.AddSeconds(20);
        int streak = 0;
        while (DateTime.UtcNow < deadline)
        {
            streak = await GetAsync(server) == expected ? streak + 1 : 0;
            if (streak == 10) return true;
        }

        return false;
    }

    private static async Task<bool> EventuallyServedByAsync(TestServer server, string expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (await GetAsync(server) == expected) return true;
        }

        return false;
    }

    [Fact]
    public async Task All_destinations_down_gets_503_problem()
    {
        await using TestServer server = await StartAsync(""", "healthCheck": { "passive": { "consecutiveFailures": 1, "maxEjectionPercent": 100 } } """);
        await _a.StopAsync();
        await _b.StopAsync();
        var results = new List<string>();
        for (int i = 0; i < 4; i++)
        {
            results.Add(await GetAsync(server));
        }

        Assert.Equal("503", results[^1]);
    }

    [Fact]
    public async Task Killing_an_upstream_under_wrk_load_costs_only_the_requests_in_flight_on_it()
    {
        await using TestServer server = await StartAsync(""", "healthCheck": { "passive": { "consecutiveFailures": 1, "ejectionTime": "60s" } } """);
        Task<Peer.Result> load = Peer.RunAsync("wrk", ["-t1", "-c16", "-d3s", "--timeout", "2s", $"http://127.0.0.1:{server.HttpPort}/id.txt"],
            timeout: TimeSpan.FromSeconds(30));
        // kill b while the load runs: wait until the gateway has served some requests through it first
        while (server.Host.Snapshot.Clusters[0].Destinations[1].OpenConnections == 0)
        {
            await Task.Yield();
        }

        await _b.StopAsync();
        Peer.Result r = await load;
        Assert.True(r.ExitCode == 0, r.All);
        Assert.DoesNotContain("Socket errors", r.Stdout); // no resets, no hangs (timeouts) for the clients
        var non2xx = System.Text.RegularExpressions.Regex.Match(r.Stdout, @"Non-2xx or 3xx responses: (\d+)");
        int failed = non2xx.Success ? int.Parse(non2xx.Groups[1].Value) : 0;
        Assert.True(failed <= 16, $"{failed} failed requests; at most the 16 in flight on b may fail:\n{r.Stdout}\n"
            + string.Join("\n", Appliance.Telemetry.LimitCounters.Snapshot().Where(kv => kv.Key.StartsWith("upstream")).Select(kv => $"{kv.Key}={kv.Value}")));
    }

    [Fact]
    public async Task Retries_stop_at_the_cluster_retry_budget()
    {
        // No budget at all: a request that lands on the stopped destination is not moved to the other one.
        await using TestServer server = await StartAsync(""", "healthCheck": { "passive": { "consecutiveFailures": 0 } }, "retryBudget": { "percent": 0, "minRetryConcurrency": 0 } """);
        await _b.StopAsync();
        long before = Appliance.Telemetry.LimitCounters.Get("upstream_retry_budget_exhausted");
        var results = new List<string>();
        for (int i = 0; i < 6; i++)
        {
            results.Add(await GetAsync(server));
        }

        Assert.Equal(3, results.Count(r => r == "a"));
        Assert.Equal(3, results.Count(r => r == "502"));
        Assert.True(Appliance.Telemetry.LimitCounters.Get("upstream_retry_budget_exhausted") >= before + 3);
    }

    [Fact]
    public async Task Within_the_default_budget_a_failed_connect_goes_to_the_other_destination()
    {
        await using TestServer server = await StartAsync(""", "healthCheck": { "passive": { "consecutiveFailures": 0 } } """);
        await _b.StopAsync();
        var results = new List<string>();
        for (int i = 0; i < 6; i++)
        {
            results.Add(await GetAsync(server));
        }

        Assert.All(results, r => Assert.Equal("a", r));
    }

    [Fact]
    public async Task Failure_share_in_an_interval_ejects_a_destination()
    {
        // Consecutive-failure ejection off; half of b's requests failing in the interval is enough.
        await using TestServer server = await StartAsync(
            """, "healthCheck": { "passive": { "consecutiveFailures": 0, "failurePercentage": 50, "failurePercentageMinimumRequests": 4, "failurePercentageInterval": "60s", "ejectionTime": "60s" } } """);
        Appliance.Proxy.DestinationHealth b = server.Host.Snapshot.Clusters[0].Destinations[1].Health;
        await _b.StopAsync();
        for (int i = 0; i < 12 && !b.IsEjected; i++)
        {
            Assert.Equal("a", await GetAsync(server)); // each failure on b is retried on a
        }

        Assert.True(b.IsEjected);
    }
}

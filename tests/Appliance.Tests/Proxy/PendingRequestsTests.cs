using Appliance.Tests.Support;

namespace Appliance.Tests.Proxy;

/// <summary>
/// A destination at its connection cap queues requests up to maxPendingRequestsPerDestination and refuses the
/// rest with 503 at once; queued ones go out on the connection as it comes back. The upstream is a scripted socket
/// that holds every answer until the test opens the gate.
/// </summary>
public sealed class PendingRequestsTests : IAsyncLifetime
{
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ScriptedUpstream _upstream = null!;
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _upstream = new ScriptedUpstream(async _ =>
        {
            await _gate.Task;
            return ScriptedUpstream.Ok("ok");
        });
        _server = await TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: """
            { "id": "held", "match": { "pathPrefix": "/held" }, "cluster": "held" },
            """).Replace("\"routes\": [", $$"""
              "clusters": [ { "id": "held", "destinations": [ { "address": "{{_upstream.Address}}" } ],
                              "maxConnectionsPerDestination": 1, "maxPendingRequestsPerDestination": 2,
                              "timeouts": { "connect": "30s" } } ],
              "routes": [
            """));
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    private async Task<int> GetAsync()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("GET /held HTTP/1.1\r\nHost: localhost\r\n\r\n");
        return (await client.ReadResponsesAsync(1, TimeSpan.FromSeconds(20))).Single().Status;
    }

    [Fact]
    public async Task Past_the_connection_cap_two_wait_and_the_rest_get_503()
    {
        Task<int> first = GetAsync();
        while (Volatile.Read(ref _upstream.Requests) == 0)
        {
            await Task.Yield(); // the first request holds the only connection
        }

        Task<int> second = GetAsync(), third = GetAsync();
        Appliance.Proxy.DestinationModel destination = _server.Host.Snapshot.Clusters.Single(c => c.Id == "held").Destinations[0];
        while (destination.PendingRequests < 2)
        {
            await Task.Yield();
        }

        // The line is full: a fourth request is refused at once, while the gate is still shut.
        Assert.Equal(503, await GetAsync());
        Assert.False(second.IsCompleted || third.IsCompleted);
        _gate.SetResult();
        int[] statuses = await Task.WhenAll(first, second, third);
        Assert.Equal(new[] { 200, 200, 200 }, statuses);
        Assert.Equal(1, Volatile.Read(ref _upstream.Connections)); // all went over the one connection, in turn
    }
}

using Appliance.Tests.Support;

namespace Appliance.Tests.Proxy;

/// <summary>
/// While a bodyless request is proxied, the HTTP/1.1 connection already waits for the client's next bytes (the read
/// for the next request starts with the exchange, not after it). What the client sends meanwhile, or its leaving, is
/// handled as before: a pipelined request is answered in order after the first, a close ends the connection cleanly,
/// and Connection: close still closes after the response. Over TLS and cleartext.
/// </summary>
public sealed class ReadAheadTests : IAsyncLifetime
{
    private readonly SemaphoreSlim _release = new(0);
    private ScriptedUpstream _upstream = null!;
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        // /held answers when the test releases it; anything else at once. Each answer names its path.
        _upstream = new ScriptedUpstream(async head =>
        {
            string path = head.Split(' ')[1];
            if (path.StartsWith("/held", StringComparison.Ordinal))
            {
                await _release.WaitAsync(TimeSpan.FromSeconds(30));
            }

            return ScriptedUpstream.Ok("answer " + path);
        });
        _server = await TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: """
            { "id": "up", "match": { "pathPrefix": "/" }, "cluster": "up" },
            """).Replace("\"routes\": [", $$"""
              "clusters": [ { "id": "up", "destinations": [ { "address": "{{_upstream.Address}}" } ] } ],
              "routes": [
            """));
    }

    public async Task DisposeAsync()
    {
        _release.Release(100);
        await _server.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_request_sent_while_the_first_is_proxied_is_answered_after_it_in_order(bool tls)
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint(tls ? "https" : "http"), tls);
        await client.SendAsync("GET /held/1 HTTP/1.1\r\nHost: localhost\r\n\r\n");
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref _upstream.Requests) >= 1, TimeSpan.FromSeconds(10))); // the first is at the upstream

        await client.SendAsync("GET /second HTTP/1.1\r\nHost: localhost\r\n\r\n");
        _release.Release();
        List<HttpResponse> responses = await client.ReadResponsesAsync(2, TimeSpan.FromSeconds(20));
        Assert.Equal(["answer /held/1", "answer /second"], responses.Select(r => r.Body));

        await client.SendAsync("GET /third HTTP/1.1\r\nHost: localhost\r\n\r\n"); // and the connection goes on
        Assert.Equal("answer /third", (await client.ReadResponsesAsync(1, TimeSpan.FromSeconds(20))).Single().Body);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Connection_close_still_closes_after_the_proxied_response(bool tls)
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint(tls ? "https" : "http"), tls);
        await client.SendAsync("GET /now HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        string all = await client.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", all);
        Assert.EndsWith("answer /now", all);
    }

    [Fact]
    public async Task A_client_that_leaves_during_the_exchange_does_not_hold_the_server()
    {
        RawClient leaving = await RawClient.ConnectAsync(_server.EndPoint("https"), tls: true);
        int before = Volatile.Read(ref _upstream.Requests);
        await leaving.SendAsync("GET /held/gone HTTP/1.1\r\nHost: localhost\r\n\r\n");
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref _upstream.Requests) > before, TimeSpan.FromSeconds(10)));

        await leaving.DisposeAsync(); // gone while its request is at the upstream
        _release.Release();

        await using RawClient next = await RawClient.ConnectAsync(_server.EndPoint("https"), tls: true);
        await next.SendAsync("GET /after HTTP/1.1\r\nHost: localhost\r\n\r\n");
        Assert.Equal("answer /after", (await next.ReadResponsesAsync(1, TimeSpan.FromSeconds(20))).Single().Body);
    }
}

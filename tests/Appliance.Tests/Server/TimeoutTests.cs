using Appliance.Tests.Support;

namespace Appliance.Tests.Server;

/// <summary>Every timeout closes what it must: slowloris heads (408), idle keep-alive, slow TLS handshakes, slow bodies.</summary>
public sealed class TimeoutTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(TestServer.DefaultConfig(httpsLimits: """
        { "requestHeadersTimeout": "1s", "keepAliveTimeout": "1s", "handshakeTimeout": "1s",
          "minRequestBodyRate": 1000, "minRequestBodyRateGracePeriod": "1s" }
        """));

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Slow_request_head_gets_408_and_close()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ");
        string response = await client.ReadToEndAsync(TimeSpan.FromSeconds(10));
        Assert.StartsWith("HTTP/1.1 408 ", response);
        Assert.Contains("Connection: close", response);
    }

    [Fact]
    public async Task Idle_keep_alive_connection_is_closed()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Equal(200, (await client.ReadResponsesAsync(1)).Single().Status);
        Assert.True(await client.IsClosedByServerAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Connection_that_never_starts_a_tls_handshake_is_closed()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("https"));
        Assert.True(await client.IsClosedByServerAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Request_body_slower_than_the_minimum_rate_gets_408()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc");
        string response = await client.ReadToEndAsync(TimeSpan.FromSeconds(15));
        Assert.StartsWith("HTTP/1.1 408 ", response);
    }
}

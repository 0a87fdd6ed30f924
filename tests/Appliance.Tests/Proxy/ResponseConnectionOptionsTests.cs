using Appliance.Tests.Support;

namespace Appliance.Tests.Proxy;

/// <summary>
/// RFC 9110 §7.6.1 on responses: the fields an upstream's Connection names are hop-by-hop and never reach the client,
/// whatever their case and however many Connection fields list them; "close" in any case ends the upstream connection.
/// </summary>
public sealed class ResponseConnectionOptionsTests
{
    private static Task<TestServer> StartAsync(string address) => TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: """
        { "id": "c", "order": -1, "match": { "pathPrefix": "/" }, "cluster": "c" },
        """).Replace("\"routes\": [", $$"""
          "clusters": [ { "id": "c", "destinations": [ { "address": "{{address}}" } ] } ],
          "routes": [
        """));

    [Fact]
    public async Task Fields_named_by_Connection_are_not_relayed_and_the_others_are()
    {
        await using var upstream = new ScriptedUpstream(_ => Task.FromResult(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop-One\r\nX-Hop-One: a\r\nX-End: kept\r\n"
            + "connection: x-hop-two , Keep-Alive\r\nX-HOP-TWO: b\r\nx-hop-one: again\r\nContent-Length: 2\r\n\r\nok"));
        await using TestServer server = await StartAsync(upstream.Address);
        await using RawClient client = await RawClient.ConnectAsync(server.EndPoint("http"));
        for (int i = 0; i < 2; i++)
        {
            await client.SendAsync("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n");
            HttpResponse r = (await client.ReadResponsesAsync(1, TimeSpan.FromSeconds(10))).Single();
            Assert.Equal(200, r.Status);
            Assert.Equal("ok", r.Body);
            Assert.Equal("kept", r.Header("x-end"));
            Assert.Null(r.Header("x-hop-one"));
            Assert.Null(r.Header("x-hop-two"));
            Assert.Null(r.Header("connection"));
        }

        Assert.Equal(1, upstream.Connections); // keep-alive: one upstream connection for both
    }

    [Fact]
    public async Task Close_in_any_case_is_not_reused()
    {
        await using var upstream = new ScriptedUpstream(_ => Task.FromResult(
            "HTTP/1.1 200 OK\r\nConnection: CLOSE\r\nContent-Length: 2\r\n\r\nok"));
        await using TestServer server = await StartAsync(upstream.Address);
        await using RawClient client = await RawClient.ConnectAsync(server.EndPoint("http"));
        for (int i = 0; i < 2; i++)
        {
            await client.SendAsync("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n");
            HttpResponse r = (await client.ReadResponsesAsync(1, TimeSpan.FromSeconds(10))).Single();
            Assert.Equal("ok", r.Body);
        }

        Assert.Equal(2, upstream.Connections);
    }
}

using System.Net;
using Appliance.Tests.Support;

namespace Appliance.Tests.Server;

/// <summary>Listener addresses and the per-listener connection limit.</summary>
public sealed class ListenerTests
{
    private static string Config(string address, string limits = "{}") => $$"""
        { "listeners": [ { "name": "l", "address": "{{address}}", "tls": false, "limits": {{limits}} } ],
          "routes": [ { "id": "r", "direct": { "status": 200, "body": "ok" } } ] }
        """;

    [Fact]
    public async Task Ipv6_loopback_listener_serves_requests()
    {
        await using TestServer server = await TestServer.StartAsync(Config("[::1]:0"));
        await using RawClient client = await RawClient.ConnectAsync(new IPEndPoint(IPAddress.IPv6Loopback, server.Port("l")));
        await client.SendAsync("GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n");
        Assert.Equal("ok", (await client.ReadResponsesAsync(1)).Single().Body);
    }

    [Fact]
    public async Task Connections_past_the_listener_limit_are_closed_at_accept()
    {
        await using TestServer server = await TestServer.StartAsync(Config("127.0.0.1:0", """{ "maxConnections": 1 }"""));
        await using RawClient first = await RawClient.ConnectAsync(server.EndPoint("l"));
        await first.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Equal("ok", (await first.ReadResponsesAsync(1)).Single().Body);

        await using RawClient second = await RawClient.ConnectAsync(server.EndPoint("l"));
        Assert.True(await second.IsClosedByServerAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(1, server.Host.Listeners.Single().RejectedConnections);

        // the first connection is unaffected
        await first.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Equal("ok", (await first.ReadResponsesAsync(1)).Single().Body);
    }

    [Fact]
    public async Task A_connection_that_ends_gives_its_place_back_and_keeps_serving_until_then()
    {
        // The connection's own task ends once its protocol runs; the protocol's end is what closes it. Both halves:
        // a kept-alive connection answers request after request, and its end (the client's FIN) frees its place.
        await using TestServer server = await TestServer.StartAsync(Config("127.0.0.1:0", """{ "maxConnections": 1 }"""));
        Appliance.Transport.SocketListener listener = server.Host.Listeners.Single();
        await using (RawClient first = await RawClient.ConnectAsync(server.EndPoint("l")))
        {
            for (int i = 0; i < 3; i++)
            {
                await first.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
                Assert.Equal("ok", (await first.ReadResponsesAsync(1)).Single().Body);
            }

            Assert.Equal(1, listener.ActiveConnections);
        }

        Assert.True(SpinWait.SpinUntil(() => listener.ActiveConnections == 0, TimeSpan.FromSeconds(10)), $"active: {listener.ActiveConnections}");
        Assert.Equal(0, server.Host.ConnectionCount); // out of the registry too, or a drain would wait for it
        await using RawClient second = await RawClient.ConnectAsync(server.EndPoint("l"));
        await second.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Equal("ok", (await second.ReadResponsesAsync(1)).Single().Body);
        Assert.Equal(0, listener.RejectedConnections);
    }

    [Fact]
    public async Task A_listener_whose_socket_stops_listening_is_dropped_once_and_named_as_a_problem()
    {
        // shutdown(2) on the listening socket (as `ss -K` or another holder of a socket-activated file can do): epoll
        // then reports HUP for it on every wait. The loop must stop watching it rather than spin, and say why.
        await using TestServer server = await TestServer.StartAsync(Config("127.0.0.1:0", "{}"));
        Appliance.Transport.SocketListener listener = server.Host.Listeners.Single();
        Assert.Null(listener.AcceptLoopProblem);
        listener.ListeningSocket.Shutdown(System.Net.Sockets.SocketShutdown.Both);

        Assert.True(SpinWait.SpinUntil(() => listener.AcceptLoopProblem is not null, TimeSpan.FromSeconds(10)));
        Assert.Equal("listener l: stopped accepting: the socket no longer listens (epoll reported a hang-up)", listener.AcceptLoopProblem);
        Assert.Equal(0, listener.AcceptErrors);
        Assert.Equal(listener.AcceptLoopProblem, server.Host.ListenerStatus().Single().Problem);
    }

    [Fact]
    public async Task A_refused_upload_is_answered_then_read_to_its_end_before_the_close()
    {
        // RFC 9112 §9.6: the 413 leaves while the client is still sending. Closing with its bytes unread would reset
        // the connection (and a client may lose the answer to it); the server shuts down its side and reads on until
        // the client is done, as nginx's lingering close.
        await using TestServer server = await TestServer.StartAsync(Config("127.0.0.1:0", """{ "maxRequestBodySize": 1000 }"""));
        await using RawClient client = await RawClient.ConnectAsync(server.EndPoint("l"));
        await client.SendAsync("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000000\r\n\r\n");
        await client.SendAsync(new byte[64 * 1024]);
        Assert.Equal(413, (await client.ReadResponsesAsync(1)).Single().Status);
        for (int i = 0; i < 16; i++)
        {
            await client.SendAsync(new byte[64 * 1024]); // a reset connection would fail these (EPIPE, ECONNRESET)
        }

        client.ShutdownSend();
        Assert.True(await client.IsClosedByServerAsync(TimeSpan.FromSeconds(10))); // a FIN: read to its end, not reset
        Assert.True(SpinWait.SpinUntil(() => server.Host.Listeners.Single().ActiveConnections == 0, TimeSpan.FromSeconds(10)));
    }
}

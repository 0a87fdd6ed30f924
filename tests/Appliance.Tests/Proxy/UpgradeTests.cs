using System.Net;
using System.Net.Sockets;
using System.Text;
using Appliance.Telemetry;
using Appliance.Tests.Support;

namespace Appliance.Tests.Proxy;

/// <summary>
/// WebSocket through the gateway to a real Node `ws` echo server: HTTP/1.1 Upgrade (Node's `ws` client, plain and
/// TLS) and RFC 8441 extended CONNECT over HTTP/2 (python3-h2), tunnel idle timeout, and upstreams that botch
/// the handshake.
/// </summary>
public sealed class UpgradeTests : IAsyncLifetime
{
    private NodePeer _ws = null!;
    private TestServer _server = null!;
    private readonly TcpListener _liar = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();

    public async Task InitializeAsync()
    {
        _ws = await NodePeer.StartAsync("ws_echo_server.js");
        _liar.Start();
        _ = ServeWrongAcceptAsync();
        int liar = ((IPEndPoint)_liar.LocalEndpoint).Port;
        _server = await TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: """
            { "id": "ws", "match": { "pathPrefix": "/ws" }, "cluster": "ws" },
            { "id": "idle", "match": { "pathPrefix": "/idle" }, "cluster": "ws-idle" },
            { "id": "liar", "match": { "pathPrefix": "/liar" }, "cluster": "liar" },
            """).Replace("\"routes\": [", $$"""
              "clusters": [
                { "id": "ws", "destinations": [ { "address": "127.0.0.1:{{_ws.Port}}" } ] },
                { "id": "ws-idle", "destinations": [ { "address": "127.0.0.1:{{_ws.Port}}" } ], "timeouts": { "tunnelIdle": "1s" } },
                { "id": "liar", "destinations": [ { "address": "127.0.0.1:{{liar}}" } ] }
              ],
              "routes": [
            """));
    }

    public async Task DisposeAsync()
    {
        _stop.Cancel();
        _liar.Stop();
        await _server.DisposeAsync();
        await _ws.DisposeAsync();
    }

    /// <summary>An upstream that answers every handshake with 101 and a Sec-WebSocket-Accept for some other key.</summary>
    private async Task ServeWrongAcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket s;
            try
            {
                s = await _liar.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            _ = Task.Run(async () =>
            {
                using (s)
                {
                    byte[] buffer = new byte[8192];
                    var head = new StringBuilder();
                    while (!head.ToString().Contains("\r\n\r\n"))
                    {
                        int n = await s.ReceiveAsync(buffer, SocketFlags.None);
                        if (n == 0) return;
                        head.Append(Encoding.Latin1.GetString(buffer, 0, n));
                    }

                    await s.SendAsync(Encoding.Latin1.GetBytes(
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
                        SocketFlags.None);
                    try { await s.ReceiveAsync(buffer, SocketFlags.None, _stop.Token); } catch (OperationCanceledException) { }
                }
            });
        }
    }

    [Fact]
    public async Task WebSocket_echo_through_the_gateway_over_http()
    {
        Peer.Result r = await NodePeer.RunAsync("ws_client.js", $"ws://127.0.0.1:{_server.HttpPort}/ws");
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Contains("\"closeCode\":4000", r.Stdout);
    }

    [Fact]
    public async Task WebSocket_echo_through_the_gateway_over_tls()
    {
        Peer.Result r = await NodePeer.RunAsync("ws_client.js", $"wss://localhost:{_server.HttpsPort}/ws");
        Assert.True(r.ExitCode == 0, r.All);
    }

    [Fact]
    public async Task Plain_request_on_a_websocket_route_is_proxied_as_usual()
    {
        Peer.Result r = await Peer.CurlAsync($"http://127.0.0.1:{_server.HttpPort}/ws");
        Assert.Equal("plain", r.Stdout);
    }

    [Theory]
    [InlineData("tls")]
    [InlineData("plain")]
    public async Task WebSocket_over_http2_extended_connect_reaches_an_http1_upstream(string mode)
    {
        int port = mode == "tls" ? _server.HttpsPort : _server.HttpPort;
        if (mode == "plain")
        {
            // h2c by prior knowledge needs a listener that offers h2
            await using TestServer h2c = await TestServer.StartAsync(TestServer.DefaultConfig(httpProtocols: ["h2", "http/1.1"], extraRoutes: """
                { "id": "ws", "match": { "pathPrefix": "/ws" }, "cluster": "ws" },
                """).Replace("\"routes\": [", $$"""
                  "clusters": [ { "id": "ws", "destinations": [ { "address": "127.0.0.1:{{_ws.Port}}" } ] } ],
                  "routes": [
                """));
            await RunH2WebSocketAsync(h2c.HttpPort, mode);
            return;
        }

        await RunH2WebSocketAsync(port, mode);
    }

    private static async Task RunH2WebSocketAsync(int port, string mode)
    {
        Peer.Result r = await Peer.RunAsync("/usr/bin/python3",
            [Path.Combine(AppContext.BaseDirectory, "Peers", "h2_websocket.py"), port.ToString(), mode, "/ws/h2"]);
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Contains("\"connectProtocol\": 1", r.Stdout);
        Assert.Contains("\"status\": 200", r.Stdout);
    }

    [Fact]
    public async Task Idle_tunnel_is_closed_after_the_cluster_timeout()
    {
        long before = LimitCounters.Get("upstream_tunnel_idle_timeout");
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("GET /idle HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
        string head = await client.ReadUntilAsync("\r\n\r\n", TimeSpan.FromSeconds(10));
        Assert.StartsWith("HTTP/1.1 101 ", head);
        Assert.Contains("Upgrade: websocket", head, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", head); // the upstream's answer, relayed
        Assert.True(await client.IsClosedByServerAsync(TimeSpan.FromSeconds(10)));
        Assert.True(LimitCounters.Get("upstream_tunnel_idle_timeout") > before);
    }

    [Fact]
    public async Task Upgrade_answered_without_upgrading_is_relayed_as_a_response()
    {
        // The ws server answers a handshake without a key with 400: the client sees it, and the connection stays HTTP.
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            + "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        List<HttpResponse> responses = await client.ReadResponsesAsync(2, TimeSpan.FromSeconds(10));
        Assert.Equal(400, responses[0].Status);
        Assert.Equal(200, responses[1].Status);
    }

    [Fact]
    public async Task Http2_websocket_with_a_wrong_accept_from_the_upstream_gets_502()
    {
        Peer.Result r = await Peer.RunAsync("/usr/bin/python3",
            [Path.Combine(AppContext.BaseDirectory, "Peers", "h2_websocket.py"), _server.HttpsPort.ToString(), "tls", "/liar"]);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("\"status\": 502", r.Stdout);
    }
}

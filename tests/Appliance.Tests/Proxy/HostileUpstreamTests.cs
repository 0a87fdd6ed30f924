using System.Net;
using System.Net.Sockets;
using System.Text;
using Appliance.Tests.Support;

namespace Appliance.Tests.Proxy;

/// <summary>
/// Upstreams that break HTTP: a raw socket server answers each request with a scripted byte sequence. Before the
/// response starts the client gets a 502 and keeps its connection; after it started, the client connection is closed.
/// </summary>
public sealed class HostileUpstreamTests : IAsyncLifetime
{
    private readonly TcpListener _upstream = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private string _answer = "";
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _upstream.Start();
        _ = ServeAsync();
        int port = ((IPEndPoint)_upstream.LocalEndpoint).Port;
        _server = await TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: """
            { "id": "hostile", "order": -1, "match": { "pathPrefix": "/" }, "cluster": "hostile" },
            """).Replace("\"routes\": [", $$"""
              "clusters": [ { "id": "hostile", "destinations": [ { "address": "127.0.0.1:{{port}}" } ],
                              "timeouts": { "responseHeaders": "2s" }, "healthCheck": { "passive": { "consecutiveFailures": 0 } } } ],
              "routes": [
            """));
    }

    public async Task DisposeAsync()
    {
        _stop.Cancel();
        _upstream.Stop();
        await _server.DisposeAsync();
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket s;
            try
            {
                s = await _upstream.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            _ = Task.Run(async () =>
            {
                using (s)
                {
                    byte[] buffer = new byte[65536];
                    // read one request head, answer with the script, then close
                    var head = new StringBuilder();
                    while (!head.ToString().Contains("\r\n\r\n"))
                    {
                        int n = await s.ReceiveAsync(buffer, SocketFlags.None);
                        if (n == 0) return;
                        head.Append(Encoding.Latin1.GetString(buffer, 0, n));
                    }

                    if (_answer.Length > 0)
                    {
                        await s.SendAsync(Encoding.Latin1.GetBytes(_answer), SocketFlags.None);
                    }

                    if (_answer == "")
                    {
                        // silent upstream: wait for the gateway to give up
                        try { await s.ReceiveAsync(buffer, SocketFlags.None, _stop.Token); } catch (OperationCanceledException) { }
                    }

                    s.Shutdown(SocketShutdown.Both);
                }
            });
        }
    }

    public static TheoryData<string, int> BadHeads => new()
    {
        { "garbage\r\n\r\n", 502 },
        { "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 502 },
        { "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", 502 },
        { "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 502 },
        { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 502 },
        { "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok", 502 },
        { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", 502 },
        { "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", 502 },
        { "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 502 },
        { "HTTP/1.1 200 OK\r\nX: " + new string('a', 70000) + "\r\n\r\n", 502 },
        { "HTTP/1.1 200 OK\r\nContent-Len", 502 },
        { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 502 }, // nobody asked to switch
        { "", 504 },
    };

    [Theory]
    [MemberData(nameof(BadHeads))]
    public async Task Broken_response_head_gets_a_problem_and_the_client_connection_stays_usable(string answer, int status)
    {
        _answer = answer;
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n");
        HttpResponse response = (await client.ReadResponsesAsync(1, TimeSpan.FromSeconds(20))).Single();
        Assert.Equal(status, response.Status);
        Assert.Equal("application/problem+json", response.Header("content-type"));

        _answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        await client.SendAsync("GET /y HTTP/1.1\r\nHost: localhost\r\n\r\n");
        Assert.Equal("ok", (await client.ReadResponsesAsync(1)).Single().Body);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-ten..")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")]
    public async Task Body_cut_short_closes_the_client_connection(string answer)
    {
        _answer = answer;
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n");
        string all = await client.ReadToEndAsync(TimeSpan.FromSeconds(15));
        Assert.StartsWith("HTTP/1.1 200 OK", all); // the head was already relayed; the close is the only signal left
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-ten..")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")]
    public async Task Body_cut_short_resets_the_http2_stream(string answer)
    {
        _answer = answer;
        int port = _server.HttpsPort;

        Peer.Result result = await Peer.CurlAsync("-k", "--http2", "--resolve", $"localhost:{port}:127.0.0.1", "-o", "/dev/null", $"https://localhost:{port}/x");

        // curl 92: "HTTP/2 stream 1 was not closed cleanly: INTERNAL_ERROR"; a clean END_STREAM would pass as whole.
        Assert.Equal(92, result.ExitCode);
        Assert.Contains("INTERNAL_ERROR", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Close_delimited_response_is_relayed_in_full()
    {
        _answer = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end";
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n");
        HttpResponse response = (await client.ReadResponsesAsync(1)).Single();
        Assert.Equal("until the end", response.Body);
    }
}

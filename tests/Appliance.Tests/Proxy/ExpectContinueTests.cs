using System.Net;
using System.Net.Sockets;
using System.Text;
using Appliance.Tests.Support;

namespace Appliance.Tests.Proxy;

/// <summary>
/// Expect: 100-continue relayed (RFC 9110 §10.1.1): the upstream's 100 reaches the client before it sends the body,
/// a final answer without 100 reaches it with the body unsent, and a silent upstream gets the body after a second.
/// The upstream is a scripted socket so each exchange is seen byte for byte; curl against nginx checks the common case.
/// </summary>
public sealed class ExpectContinueTests : IAsyncLifetime
{
    private readonly TcpListener _upstream = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private Func<Socket, Task> _behaviour = _ => Task.CompletedTask;
    private NginxUpstream _nginx = null!;
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _upstream.Start();
        _ = ServeAsync();
        _nginx = await NginxUpstream.StartAsync();
        int port = ((IPEndPoint)_upstream.LocalEndpoint).Port;
        _server = await TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: """
            { "id": "scripted", "match": { "pathPrefix": "/s" }, "cluster": "scripted" },
            { "id": "nginx", "match": { "pathPrefix": "/upload" }, "order": -1, "cluster": "nginx" },
            """).Replace("\"routes\": [", $$"""
              "clusters": [
                { "id": "scripted", "destinations": [ { "address": "127.0.0.1:{{port}}" } ], "healthCheck": { "passive": { "consecutiveFailures": 0 } } },
                { "id": "nginx", "destinations": [ { "address": "{{_nginx.Address}}" } ] }
              ],
              "routes": [
            """));
    }

    public async Task DisposeAsync()
    {
        _stop.Cancel();
        _upstream.Stop();
        await _server.DisposeAsync();
        await _nginx.DisposeAsync();
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
                    try
                    {
                        await _behaviour(s);
                    }
                    catch (Exception e) when (e is SocketException or OperationCanceledException)
                    {
                    }
                }
            });
        }
    }

    private static async Task<string> ReadHeadAsync(Socket s)
    {
        var head = new StringBuilder();
        byte[] one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await s.ReceiveAsync(one, SocketFlags.None) == 0) break;
            head.Append((char)one[0]);
        }

        return head.ToString();
    }

    private static async Task<int> ReadBodyAsync(Socket s, int length)
    {
        byte[] buffer = new byte[length];
        int n = 0;
        while (n < length)
        {
            int r = await s.ReceiveAsync(buffer.AsMemory(n), SocketFlags.None);
            if (r == 0) break;
            n += r;
        }

        return n;
    }

    private static Task SendAsync(Socket s, string text) => s.SendAsync(Encoding.Latin1.GetBytes(text), SocketFlags.None);

    private const string Request = "POST /s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";

    [Fact]
    public async Task Upstream_100_reaches_the_client_before_the_body_is_sent()
    {
        var upstreamHead = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        _behaviour = async s =>
        {
            upstreamHead.TrySetResult(await ReadHeadAsync(s));
            await SendAsync(s, "HTTP/1.1 100 Continue\r\n\r\n");
            int n = await ReadBodyAsync(s, 5);
            await SendAsync(s, $"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ngot {n}");
        };
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync(Request);
        Assert.Contains("Expect: 100-continue", await upstreamHead.Task.WaitAsync(TimeSpan.FromSeconds(10)), StringComparison.OrdinalIgnoreCase);
        Assert.Equal("HTTP/1.1 100 Continue\r\n\r\n", await client.ReadUntilAsync("\r\n\r\n", TimeSpan.FromSeconds(10)));
        await client.SendAsync("hello");
        HttpResponse r = (await client.ReadResponsesAsync(1, TimeSpan.FromSeconds(10))).Single();
        Assert.Equal(200, r.Status);
        Assert.Equal("got 5", r.Body);
    }

    [Fact]
    public async Task Final_answer_without_100_reaches_the_client_and_the_body_is_never_sent()
    {
        var bodyBytes = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        _behaviour = async s =>
        {
            await ReadHeadAsync(s);
            await SendAsync(s, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope");
            using var quiet = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                bodyBytes.TrySetResult(await s.ReceiveAsync(new byte[16], SocketFlags.None, quiet.Token));
            }
            catch (OperationCanceledException)
            {
                bodyBytes.TrySetResult(-1); // nothing came: as it must be
            }
        };
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync(Request);
        HttpResponse r = (await client.ReadResponsesAsync(1, TimeSpan.FromSeconds(10))).Single();
        Assert.Equal(401, r.Status);
        Assert.Equal("nope", r.Body);
        Assert.Equal("close", r.Header("connection")); // the unsent body leaves the client connection unusable
        Assert.True(await bodyBytes.Task.WaitAsync(TimeSpan.FromSeconds(10)) <= 0);
    }

    [Fact]
    public async Task Silent_upstream_gets_the_body_after_the_wait()
    {
        _behaviour = async s =>
        {
            await ReadHeadAsync(s);
            int n = await ReadBodyAsync(s, 5);
            await SendAsync(s, $"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ngot {n}");
        };
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync(Request);
        Assert.Equal("HTTP/1.1 100 Continue\r\n\r\n", await client.ReadUntilAsync("\r\n\r\n", TimeSpan.FromSeconds(10)));
        await client.SendAsync("hello");
        HttpResponse r = (await client.ReadResponsesAsync(1, TimeSpan.FromSeconds(10))).Single();
        Assert.Equal("got 5", r.Body);
    }

    [Fact]
    public async Task Curl_upload_with_expect_through_to_nginx()
    {
        byte[] data = new byte[2 * 1024 * 1024];
        string file = Path.Combine(Path.GetTempPath(), "expect-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllBytesAsync(file, data);
        try
        {
            // curl sends Expect: 100-continue for bodies over 1 MiB.
            Peer.Result r = await Peer.CurlAsync("-v", "--data-binary", "@" + file, $"http://127.0.0.1:{_server.HttpPort}/upload");
            Assert.True(r.Stdout.Contains("len=2097152"), r.All);
            Assert.Contains("Expect: 100-continue", r.Stderr);
        }
        finally
        {
            File.Delete(file);
        }
    }
}

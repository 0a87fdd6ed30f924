using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using Appliance.Server;
using Appliance.Tests.Support;
using Appliance.Transport;

namespace Appliance.Tests.Server;

/// <summary>
/// An HTTP/2 connection reuses closed streams (request context, header buffers, body pipe) from a pool, one per
/// stream it ran at once; once idle, it keeps one. A code-built h2c listener whose connections the test can reach,
/// with a heartbeat it drives itself.
/// </summary>
public sealed class Http2StreamPoolTests : IAsyncLifetime
{
    private readonly ConnectionRegistry _registry = new(period: TimeSpan.FromHours(1)); // the test calls the heartbeat
    private readonly ConcurrentQueue<HttpConnection> _connections = new();
    private SocketListener _listener = null!;

    public Task InitializeAsync()
    {
        var runtime = new ListenerRuntime("pool", new ListenerRuntime.State(null, new ServerLimits(), new WholeBodyThenOk(), Http2Enabled: true));
        _listener = CodeListener.Start(runtime, _registry, _connections.Enqueue);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _listener.DisposeAsync();
        _registry.Dispose();
    }

    /// <summary>Reads the whole request body, then answers 200 "ok" (and ":N", N bytes read, when there was a body).</summary>
    private sealed class WholeBodyThenOk : IRequestDispatcher
    {
        public async ValueTask DispatchAsync(RequestContext context)
        {
            long bytes = 0;
            while (true)
            {
                ReadResult read = await context.Body.ReadAsync();
                bytes += read.Buffer.Length;
                context.Body.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    break;
                }
            }

            await context.RespondAsync(200, "text/plain"u8, System.Text.Encoding.ASCII.GetBytes(bytes == 0 ? "ok" : "ok:" + bytes));
        }
    }

    [Fact]
    public async Task Streams_run_at_once_are_pooled_and_a_heartbeat_after_an_idle_interval_keeps_one()
    {
        await using RawH2Client client = await RawH2Client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _listener.Port), tls: false);
        await client.HandshakeAsync();
        int[] ids = [1, 3, 5, 7, 9];
        foreach (int id in ids)
        {
            await client.SendHeadersAsync(id, RawH2Client.Block(client.Request("POST", "/")), endStream: false);
        }

        foreach (int id in ids)
        {
            await client.SendDataAsync(id, "x"u8, endStream: true);
        }

        foreach (int id in ids)
        {
            H2Response response = await client.ReadResponseAsync(id);
            Assert.Equal(200, response.Status);
            Assert.Equal("ok:1", response.BodyText);
        }

        Assert.True(_connections.TryPeek(out HttpConnection? connection));
        Http2Connection http2 = connection.Http2 ?? throw new InvalidOperationException("not HTTP/2");
        // The last stream goes back to the pool just after its END_STREAM is written: wait for it, bounded.
        Assert.True(SpinWait.SpinUntil(() => http2.PooledStreams == ids.Length, TimeSpan.FromSeconds(10)), $"pooled: {http2.PooledStreams}");

        // No stream open, but five started since the last heartbeat: a busy client between two batches, not an idle
        // one. Trimming now would make its next batch allocate the streams again.
        connection.OnHeartbeat(Environment.TickCount64);
        Assert.Equal(ids.Length, http2.PooledStreams);
        connection.OnHeartbeat(Environment.TickCount64); // a whole interval without a stream: idle, keep one
        Assert.Equal(1, http2.PooledStreams);

        await client.SendGetAsync(11);
        await client.SendHeadersAsync(13, RawH2Client.Block(client.Request("POST", "/")), endStream: false);
        connection.OnHeartbeat(Environment.TickCount64); // a stream open: the pool is left alone
        await client.SendDataAsync(13, "y"u8, endStream: true);
        Assert.Equal(200, (await client.ReadResponseAsync(11)).Status);
        Assert.Equal("ok:1", (await client.ReadResponseAsync(13)).BodyText);
    }

    [Fact]
    public async Task One_pooled_stream_serves_requests_with_and_without_a_body_and_after_a_reset_in_any_order()
    {
        // One stream at a time, so each request runs on the same pooled stream object, whose body pipe a request
        // without a body never touches and one with a body (or a reset) leaves to be reset.
        await using RawH2Client client = await RawH2Client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _listener.Port), tls: false);
        await client.HandshakeAsync();
        Assert.True(_connections.TryPeek(out HttpConnection? connection));
        int id = 1;

        async Task<string> ExchangeAsync(string? body)
        {
            int stream = id;
            id += 2;
            if (body is null)
            {
                await client.SendGetAsync(stream);
            }
            else
            {
                await client.SendHeadersAsync(stream, RawH2Client.Block(client.Request("POST", "/")), endStream: false);
                await client.SendDataAsync(stream, System.Text.Encoding.ASCII.GetBytes(body), endStream: true);
            }

            H2Response response = await client.ReadResponseAsync(stream);
            Assert.Equal(200, response.Status);
            Http2Connection http2 = connection.Http2 ?? throw new InvalidOperationException("not HTTP/2");
            Assert.True(SpinWait.SpinUntil(() => http2.PooledStreams == 1, TimeSpan.FromSeconds(10)), $"pooled: {http2.PooledStreams}");
            return response.BodyText;
        }

        Assert.Equal("ok", await ExchangeAsync(null));
        Assert.Equal("ok:3", await ExchangeAsync("abc"));
        Assert.Equal("ok", await ExchangeAsync(null));
        Assert.Equal("ok", await ExchangeAsync(null));

        // A request reset by the client while its handler waits for the body: the handler's read fails.
        await client.SendHeadersAsync(id, RawH2Client.Block(client.Request("POST", "/")), endStream: false);
        await client.SendDataAsync(id, "part"u8, endStream: false);
        await client.SendRstStreamAsync(id, Appliance.Protocol.Http2.Http2ErrorCode.Cancel);
        id += 2;

        // The PING ACK means the server has read the frames before it, so the reset stream took the pooled object; it
        // goes back once its handler saw the reset.
        await client.SendPingAsync(7);
        await client.ExpectAsync("PING ACK", f => f.Type == Appliance.Protocol.Http2.Http2FrameType.Ping && f.Has(Appliance.Protocol.Http2.Http2FrameFlags.Ack));
        Http2Connection h2 = connection.Http2 ?? throw new InvalidOperationException("not HTTP/2");
        Assert.True(SpinWait.SpinUntil(() => h2.PooledStreams == 1, TimeSpan.FromSeconds(10)), $"pooled: {h2.PooledStreams}");

        Assert.Equal("ok", await ExchangeAsync(null));
        Assert.Equal("ok:5", await ExchangeAsync("hello"));
        Assert.Equal("ok:1", await ExchangeAsync("x"));
        Assert.Equal("ok", await ExchangeAsync(null));
    }
}

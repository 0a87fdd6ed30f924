using System.Buffers;
using System.Net.Sockets;
using System.Text.Json;
using Appliance.Protocol.Http2;
using Appliance.Telemetry;
using Appliance.Tests.Support;

namespace Appliance.Tests.Server;

/// <summary>
/// The HTTP/2 timeouts, on the fixture's "timeouts" listener (one-second limits, a 250 ms heartbeat): a request body
/// that stops arriving (408, or RST_STREAM CANCEL once the response started), a response the client does not take
/// (RST_STREAM CANCEL on the stream window, GOAWAY on the connection window, close when the socket does not drain),
/// and the connection-level header-block and idle timeouts. Each waits for the server's own timeout, bounded.
/// </summary>
[Collection(Http2TimeoutCollection.Name)]
public sealed class Http2TimeoutTests(Http2Fixture fixture)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private Task<RawH2Client> ConnectAsync(params Http2Setting[] settings) => fixture.ConnectAsync(fixture.H2cTimeouts, settings);

    // ---------------- request body ----------------

    [Fact]
    public async Task Request_body_that_stops_arriving_gets_408_then_the_stream_is_closed()
    {
        long before = LimitCounters.Get("h2_body_timeout");
        await using RawH2Client c = await ConnectAsync();
        c.WriteHeaders(1, RawH2Client.Block(c.Request("POST", "/upload", ("content-length", "100000"))), endStream: false);
        c.WriteData(1, "abc"u8, endStream: false);
        await c.FlushAsync();

        H2Response r = await c.ReadResponseAsync(1, timeout: Bound);
        Assert.Equal(408, r.Status);
        Assert.Equal("application/problem+json", r.Field("content-type"));
        Assert.Equal(408, JsonDocument.Parse(r.Body).RootElement.GetProperty("status").GetInt32());
        // §8.1: the response is complete but the request is not: the client is told to stop sending.
        await c.ExpectRstStreamAsync(1, Http2ErrorCode.NoError);
        Assert.True(LimitCounters.Get("h2_body_timeout") > before);

        // Late DATA for the abandoned body is ignored; the connection serves the next request.
        await c.SendDataAsync(1, "def"u8, endStream: false);
        await c.SendGetAsync(3);
        Assert.Equal(200, (await c.ReadResponseAsync(3)).Status);
    }

    [Fact]
    public async Task Request_body_that_stops_arriving_after_the_response_started_gets_rst_stream_cancel()
    {
        long before = LimitCounters.Get("h2_body_timeout");
        await using RawH2Client c = await ConnectAsync();
        await c.SendHeadersAsync(1, RawH2Client.Block(c.Request("POST", "/echo")), endStream: false);
        H2Frame head = await c.ExpectAsync("the response HEADERS", f => f.Type == Http2FrameType.Headers && f.StreamId == 1);
        Assert.Contains((":status", "200"), head.Fields!);

        await c.SendDataAsync(1, "abc"u8, endStream: false);
        H2Frame echoed = await c.ExpectAsync("the echoed DATA", f => f.Type == Http2FrameType.Data && f.StreamId == 1);
        Assert.Equal("abc"u8.ToArray(), echoed.Payload);

        await c.ExpectAsync("RST_STREAM CANCEL on stream 1", f => f.Type == Http2FrameType.RstStream && f.StreamId == 1 && f.ErrorCode == Http2ErrorCode.Cancel,
            fail: f => f.Type == Http2FrameType.GoAway || (f.Type == Http2FrameType.RstStream && f.StreamId == 1), timeout: Bound);
        Assert.True(LimitCounters.Get("h2_body_timeout") > before);
        await c.ExpectAliveAsync();
    }

    [Fact]
    public async Task Request_body_arriving_above_the_minimum_rate_is_not_timed_out()
    {
        // 20,000 bytes in 5 pieces, 400 ms apart, the first with the HEADERS: 1.6 s in all, past the 1 s grace period,
        // and never below 4,000 B/s within the first 4 s, whatever the scheduling: 4x the 1,000 B/s minimum.
        await using RawH2Client c = await ConnectAsync();
        c.WriteHeaders(1, RawH2Client.Block(c.Request("POST", "/upload")), endStream: false);
        await SendBodyAtASlowSteadyPaceAsync(c, 1);

        H2Response r = await c.ReadResponseAsync(1);
        Assert.Equal(200, r.Status);
        Assert.Equal("uploaded", r.BodyText);
    }

    // ---------------- response the client does not take ----------------

    [Fact]
    public async Task Response_blocked_on_a_closed_stream_window_gets_rst_stream_cancel()
    {
        long before = LimitCounters.Get("h2_send_timeout");
        await using RawH2Client c = await ConnectAsync(new Http2Setting(Http2SettingId.InitialWindowSize, 100));
        await c.SendGetAsync(1, "/huge");
        H2Frame data = await c.ExpectAsync("the first DATA", f => f.Type == Http2FrameType.Data && f.StreamId == 1);
        Assert.Equal(100, data.Length);

        // No WINDOW_UPDATE: after StreamSendTimeout the stream is given up, the connection is not.
        await c.ExpectAsync("RST_STREAM CANCEL on stream 1", f => f.Type == Http2FrameType.RstStream && f.StreamId == 1 && f.ErrorCode == Http2ErrorCode.Cancel,
            fail: f => f.Type == Http2FrameType.GoAway || (f.Type == Http2FrameType.Data && f.StreamId == 1), timeout: Bound);
        Assert.True(LimitCounters.Get("h2_send_timeout") > before);
        await c.ExpectAliveAsync();
        await c.SendGetAsync(3);
        Assert.Equal(200, (await c.ReadResponseAsync(3)).Status);
    }

    [Fact]
    public async Task Response_blocked_on_a_closed_connection_window_gets_goaway()
    {
        long before = LimitCounters.Get("h2_send_timeout");
        await using RawH2Client c = await ConnectAsync(new Http2Setting(Http2SettingId.InitialWindowSize, int.MaxValue));
        await c.SendGetAsync(1, "/huge");
        int received = 0;
        H2Frame goAway;
        while (true)
        {
            H2Frame f = await c.ExpectAsync("DATA or GOAWAY", f => f.Type is Http2FrameType.Data or Http2FrameType.GoAway, timeout: Bound);
            if (f.Type == Http2FrameType.GoAway)
            {
                goAway = f;
                break;
            }

            received += f.Length;
        }

        Assert.Equal(65_535, received); // the whole default connection window, then nothing until the timeout
        Assert.Equal(Http2ErrorCode.NoError, goAway.ErrorCode);
        Assert.Contains("send timeout", goAway.DebugData);
        Assert.Equal(1, goAway.LastStreamId);
        await c.ExpectConnectionClosedAsync(Bound);
        Assert.True(LimitCounters.Get("h2_send_timeout") > before);
    }

    private const int PacedWindow = 5_000;

    [Fact]
    public async Task Slow_reader_that_keeps_opening_the_window_gets_the_whole_response()
    {
        // 200,000 bytes through a 5,000-byte stream window, 50 ms per window: about 2 s in all, past the 1 s send
        // timeout and the 1 s keep-alive timeout, but every WINDOW_UPDATE moves the data along. Each pause leaves
        // 950 ms to the send timeout, for a test process whose thread pool is shared with the other test classes
        // (with 250 ms pauses a CI run on a loaded 2-core box once saw a pause pass the timeout).
        await using RawH2Client c = await ConnectAsync(new Http2Setting(Http2SettingId.InitialWindowSize, PacedWindow));
        await c.SendWindowUpdateAsync(0, 1_000_000);
        await c.SendGetAsync(1, "/big");
        await c.ExpectAsync("the response HEADERS", f => f.Type == Http2FrameType.Headers && f.StreamId == 1);
        var body = new MemoryStream();
        int window = PacedWindow;
        bool ended = false;
        while (!ended)
        {
            H2Frame f = await c.ExpectAsync("DATA on stream 1", f => f.Type == Http2FrameType.Data && f.StreamId == 1,
                fail: f => f.Type is Http2FrameType.RstStream or Http2FrameType.GoAway);
            body.Write(f.Payload);
            window -= f.Length;
            ended = f.EndStream;
            if (window == 0 && !ended)
            {
                await Task.Delay(50); // the pace of a slow client, not synchronisation
                window = PacedWindow;
                await c.SendWindowUpdateAsync(1, window);
            }
        }

        Assert.Equal(Http2Fixture.BigBody, System.Text.Encoding.ASCII.GetString(body.ToArray()));
        await c.ExpectAliveAsync();
    }

    [Fact]
    public async Task Client_that_stops_reading_the_socket_is_disconnected()
    {
        long before = LimitCounters.Get("h2_send_timeout");
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await socket.ConnectAsync(fixture.H2cTimeouts);

        // Every window wide open, eight 3 MB responses asked for, and then nothing read: the server's socket writes
        // stall once the kernel buffers are full.
        var frames = new ArrayBufferWriter<byte>();
        frames.Write(Http2Preface.ClientPreface);
        Http2FrameWriter.WriteSettings(frames, [new Http2Setting(Http2SettingId.InitialWindowSize, int.MaxValue)]);
        Http2FrameWriter.WriteWindowUpdate(frames, 0, int.MaxValue - 65_535);
        for (int i = 0; i < 8; i++)
        {
            byte[] block = RawH2Client.Block((":method", "GET"), (":scheme", "http"), (":path", "/huge"), (":authority", "localhost"));
            Span<byte> header = frames.GetSpan(Http2FrameHeader.Size);
            new Http2FrameHeader(block.Length, Http2FrameType.Headers, Http2FrameFlags.EndHeaders | Http2FrameFlags.EndStream, 1 + (2 * i)).Write(header);
            frames.Advance(Http2FrameHeader.Size);
            frames.Write(block);
        }

        await socket.SendAsync(frames.WrittenMemory);

        // Wait for the server's timeout (bounded), then find the connection closed behind what it had sent.
        using (var cts = new CancellationTokenSource(Bound))
        {
            while (LimitCounters.Get("h2_send_timeout") == before)
            {
                await Task.Delay(50, cts.Token);
            }
        }

        using var drain = new CancellationTokenSource(Bound);
        byte[] buffer = new byte[1 << 20];
        long total = 0;
        try
        {
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, drain.Token)) > 0)
            {
                total += n;
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            // closed with unread data: a reset is a close too
        }

        Assert.True(total < 8L * Http2Fixture.HugeBody.Length, $"the server sent all {total} bytes, so it never stalled");
    }

    // ---------------- connection-level timeouts ----------------

    [Fact]
    public async Task Header_block_left_open_gets_goaway_protocol_error()
    {
        long before = LimitCounters.Get("h2_header_timeout");
        await using RawH2Client c = await ConnectAsync();
        await c.SendHeadersAsync(1, RawH2Client.Block(c.Request("GET", "/")), endStream: true, endHeaders: false);
        H2Frame goAway = await c.ExpectGoAwayAsync(Http2ErrorCode.ProtocolError, Bound);
        Assert.Contains("header block timeout", goAway.DebugData);
        Assert.True(LimitCounters.Get("h2_header_timeout") > before);
    }

    [Fact]
    public async Task Idle_connection_gets_goaway_no_error_and_is_closed()
    {
        long before = LimitCounters.Get("h2_idle_timeout");
        await using RawH2Client c = await ConnectAsync();
        await c.SendGetAsync(1);
        Assert.Equal(200, (await c.ReadResponseAsync(1)).Status);
        H2Frame goAway = await c.ExpectGoAwayAsync(Http2ErrorCode.NoError, Bound);
        Assert.Equal(1, goAway.LastStreamId);
        Assert.Contains("idle timeout", goAway.DebugData);
        await c.ExpectConnectionClosedAsync(Bound);
        Assert.True(LimitCounters.Get("h2_idle_timeout") > before);
    }

    [Fact]
    public async Task Open_stream_waiting_for_its_handler_keeps_the_idle_timeout_off()
    {
        // /echo answers HEADERS at once and then reads the body, which takes 1.6 s (past the 1 s keep-alive timeout)
        // at 4,000 bytes per 400 ms, the first piece at once (above the 1,000 B/s minimum rate, as above).
        await using RawH2Client c = await ConnectAsync();
        c.WriteHeaders(1, RawH2Client.Block(c.Request("POST", "/echo")), endStream: false);
        await SendBodyAtASlowSteadyPaceAsync(c, 1);

        H2Response r = await c.ReadResponseAsync(1);
        Assert.Equal(200, r.Status);
        Assert.Equal(20_000, r.Body.Length);
    }

    /// <summary>
    /// 20,000 bytes in 5 pieces, 400 ms apart, the first at once: 1.6 s in all and about 4,000 B/s, 4x the fixture's
    /// minimum rate. The delays are the pace of the slow client under test, not synchronisation.
    /// </summary>
    private static async Task SendBodyAtASlowSteadyPaceAsync(RawH2Client c, int streamId)
    {
        for (int i = 0; i < 5; i++)
        {
            if (i > 0)
            {
                await Task.Delay(400);
            }

            await c.SendDataAsync(streamId, new byte[4000], endStream: i == 4);
        }
    }
}

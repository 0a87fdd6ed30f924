using System.Buffers;
using System.Net.Sockets;
using Appliance.Protocol.Http2;
using Appliance.Telemetry;
using Appliance.Tests.Support;

namespace Appliance.Tests.Server;

/// <summary>
/// The flood defences of the HTTP/2 connection, each driven past its default limit (Http2Limits): rapid reset
/// (CVE-2023-44487), CONTINUATION flood (CVE-2024-27316), PING/SETTINGS/empty-DATA floods, the HPACK bomb, and a
/// client that never reads what it asked for. Each ends in the documented answer and bumps its counter.
/// </summary>
[Collection(Http2Collection.Name)]
public sealed class Http2DefenceTests(Http2Fixture fixture)
{
    [Fact]
    public async Task Rapid_reset_past_200_streams_gets_goaway_enhance_your_calm()
    {
        long before = LimitCounters.Get("h2_rapid_reset");
        await using RawH2Client c = await fixture.ConnectAsync();
        for (int i = 0; i < 300; i++)
        {
            int id = 1 + (2 * i);
            // A request whose handler is still waiting for its body, cancelled at once.
            c.WriteHeaders(id, RawH2Client.Block(c.Request("POST", "/upload")), endStream: false);
            c.WriteRstStream(id, Http2ErrorCode.Cancel);
        }

        await c.TryFlushAsync();
        H2Frame goAway = await c.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
        Assert.Equal(401, goAway.LastStreamId); // the 201st reset (stream 401) trips it; later streams are not processed
        Assert.True(LimitCounters.Get("h2_rapid_reset") > before);
    }

    [Fact]
    public async Task Made_you_reset_past_200_streams_gets_goaway_enhance_your_calm()
    {
        // CVE-2025-8671: the client opens requests and makes the server reset them (a WINDOW_UPDATE of 0 on the
        // stream is a stream error) instead of resetting them itself; the work started counts the same.
        long before = LimitCounters.Get("h2_made_you_reset");
        await using RawH2Client c = await fixture.ConnectAsync();
        for (int i = 0; i < 300; i++)
        {
            int id = 1 + (2 * i);
            c.WriteHeaders(id, RawH2Client.Block(c.Request("POST", "/upload")), endStream: false);
            c.WriteWindowUpdate(id, 0);
        }

        await c.TryFlushAsync();
        H2Frame goAway = await c.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
        Assert.Equal(401, goAway.LastStreamId);
        Assert.True(LimitCounters.Get("h2_made_you_reset") > before);
    }

    [Fact]
    public async Task Streams_reset_after_their_response_do_not_count_as_rapid_reset()
    {
        await using RawH2Client c = await fixture.ConnectAsync();
        for (int i = 0; i < 250; i++)
        {
            int id = 1 + (2 * i);
            await c.SendGetAsync(id);
            Assert.Equal(200, (await c.ReadResponseAsync(id)).Status);
            await c.SendRstStreamAsync(id, Http2ErrorCode.Cancel);
        }

        await c.ExpectAliveAsync();
    }

    [Fact]
    public async Task Window_update_flood_without_data_to_pay_for_gets_goaway_enhance_your_calm()
    {
        long before = LimitCounters.Get("h2_window_update_flood");
        await using RawH2Client c = await fixture.ConnectAsync();
        for (int i = 0; i < 1100; i++)
        {
            c.WriteWindowUpdate(0, 1);
        }

        await c.TryFlushAsync();
        await c.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
        Assert.True(LimitCounters.Get("h2_window_update_flood") > before);
    }

    [Fact]
    public async Task Window_updates_that_give_back_what_our_data_used_are_not_a_flood()
    {
        // A 100-byte stream window: 2,000 DATA frames for /big, each answered with a WINDOW_UPDATE for the stream and
        // one for the connection, 4,000 in all, four times the per-interval limit on other control frames.
        long before = LimitCounters.Get("h2_window_update_flood");
        await using RawH2Client c = await fixture.ConnectAsync(settings: new Http2Setting(Http2SettingId.InitialWindowSize, 100));
        await c.SendGetAsync(1, "/big");
        H2Response r = await c.ReadResponseAsync(1, timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(Http2Fixture.BigBody, r.BodyText);
        await c.ExpectAliveAsync();
        Assert.Equal(before, LimitCounters.Get("h2_window_update_flood"));
    }

    [Fact]
    public async Task Continuation_flood_with_empty_frames_gets_goaway_before_the_block_ends()
    {
        long before = LimitCounters.Get("h2_continuation_flood");
        await using RawH2Client c = await fixture.ConnectAsync();
        c.WriteHeaders(1, RawH2Client.Block(c.Request("GET", "/")), endStream: true, endHeaders: false);
        for (int i = 0; i < 40; i++)
        {
            c.WriteContinuation(1, [], endHeaders: false); // zero-length frames count too
        }

        await c.TryFlushAsync();
        await c.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
        Assert.True(LimitCounters.Get("h2_continuation_flood") > before);
    }

    [Fact]
    public async Task Continuation_frames_up_to_the_limit_are_accepted()
    {
        await using RawH2Client c = await fixture.ConnectAsync();
        byte[] block = RawH2Client.Block(c.Request("GET", "/"));
        c.WriteHeaders(1, block[..1], endStream: true, endHeaders: false);
        for (int i = 1; i < 32; i++)
        {
            c.WriteContinuation(1, i < block.Length ? block[i..(i + 1)] : [], endHeaders: false);
        }

        c.WriteContinuation(1, block.Length > 32 ? block[32..] : [], endHeaders: true); // the 32nd
        await c.FlushAsync();
        Assert.Equal(200, (await c.ReadResponseAsync(1)).Status);
    }

    [Fact]
    public async Task Ping_flood_gets_goaway_enhance_your_calm()
    {
        long before = LimitCounters.Get("h2_ping_flood");
        await using RawH2Client c = await fixture.ConnectAsync();
        for (int i = 0; i < 1100; i++)
        {
            c.WritePing((ulong)i);
        }

        await c.TryFlushAsync();
        await c.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
        Assert.True(LimitCounters.Get("h2_ping_flood") > before);
    }

    [Fact]
    public async Task Settings_flood_gets_goaway_enhance_your_calm()
    {
        long before = LimitCounters.Get("h2_settings_flood");
        await using RawH2Client c = await fixture.ConnectAsync();
        for (int i = 0; i < 1100; i++)
        {
            c.WriteSettings(new Http2Setting(Http2SettingId.MaxConcurrentStreams, 100));
        }

        await c.TryFlushAsync();
        await c.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
        Assert.True(LimitCounters.Get("h2_settings_flood") > before);
    }

    [Fact]
    public async Task Empty_data_flood_gets_goaway_enhance_your_calm()
    {
        long before = LimitCounters.Get("h2_empty_data_flood");
        await using RawH2Client c = await fixture.ConnectAsync();
        c.WriteHeaders(1, RawH2Client.Block(c.Request("POST", "/upload")), endStream: false);
        for (int i = 0; i < 150; i++)
        {
            c.WriteData(1, [], endStream: false);
        }

        await c.TryFlushAsync();
        await c.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
        Assert.True(LimitCounters.Get("h2_empty_data_flood") > before);
    }

    [Fact]
    public async Task Hpack_bomb_gets_431_with_bounded_memory_and_the_connection_stays_usable()
    {
        long before = LimitCounters.Get("h2_header_list_too_large");
        await using RawH2Client c = await fixture.ConnectAsync();

        // One 4,000-byte value goes into the dynamic table (incremental indexing, new name), then 10,000 one-byte
        // references to it (index 62): a 14 KB block that decodes to a 40 MB header list.
        byte[] value = new byte[4000];
        Array.Fill(value, (byte)'x');
        byte[] literal = [0x40, 6, .. "x-bomb"u8, .. RawH2Client.Integer(value.Length, 7, 0), .. value];
        byte[] references = new byte[10_000];
        Array.Fill(references, (byte)(0x80 | 62));

        long allocated = GC.GetTotalAllocatedBytes(precise: false);
        for (int i = 0; i < 5; i++)
        {
            int id = 1 + (2 * i);
            // The first block adds the entry; the later ones only reference it (it is still there).
            byte[] block = i == 0 ? [.. RawH2Client.Block(c.Request("GET", "/")), .. literal, .. references] : [.. RawH2Client.Block(c.Request("GET", "/")), .. references];
            await c.SendHeadersAsync(id, block, endStream: true);
            H2Response r = await c.ReadResponseAsync(id);
            Assert.Equal(431, r.Status);
        }

        // Five bombs decode to 200 MB if materialised; the decoder stops at the 32 KB limit and skips the rest. (The
        // count is process-wide: the bound leaves room for tests running in parallel.)
        Assert.True(GC.GetTotalAllocatedBytes(precise: false) - allocated < 128L * 1024 * 1024, "the header list was materialised");
        Assert.True(LimitCounters.Get("h2_header_list_too_large") >= before + 5);

        // The HPACK context is still in step: a normal request on the same connection works.
        await c.SendGetAsync(11);
        Assert.Equal(200, (await c.ReadResponseAsync(11)).Status);
    }

    /// <summary>
    /// A client that never reads while making us answer: PING ACKs; RST_STREAM for streams past the concurrency
    /// limit; WINDOW_UPDATE for the padding of tiny padded DATA frames. On "h2c-noread" the per-interval flood limits
    /// are out of the way, so only the queued-control-frame cap (16 KiB there) can stop it: the connection is closed
    /// instead of buffering without bound.
    /// </summary>
    [Theory]
    [InlineData("ping")]
    [InlineData("refused-streams")]
    [InlineData("padded-data")]
    public async Task Client_that_never_reads_is_disconnected_at_the_queued_control_frame_cap(string flood)
    {
        long before = LimitCounters.Get("h2_output_queue_full");
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.ReceiveBufferSize = 4096; // our side of the pipe fills quickly
        using var total = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await socket.ConnectAsync(fixture.H2cNoRead, total.Token);

        var setup = new ArrayBufferWriter<byte>();
        setup.Write(Http2Preface.ClientPreface);
        Http2FrameWriter.WriteSettings(setup, []);
        byte[] get = [0x82, 0x86, 0x84]; // :method GET, :scheme http, :path / (static table)
        byte[] post = [0x83, 0x86, 0x84]; // :method POST
        int nextId = 1;
        if (flood == "refused-streams")
        {
            for (; nextId < 200; nextId += 2)
            {
                Http2FrameWriter.WriteHeaders(setup, nextId, post, endStream: false, 16_384); // 100 streams waiting for a body
            }
        }
        else if (flood == "padded-data")
        {
            Http2FrameWriter.WriteHeaders(setup, 1, post, endStream: false, 16_384);
        }

        await socket.SendAsync(setup.WrittenMemory, total.Token);

        bool sendFailed = false;
        for (int i = 0; i < 3000 && !sendFailed; i++) // bounded: at most ~50 MB
        {
            var batch = new ArrayBufferWriter<byte>();
            for (int k = 0; k < 1000; k++)
            {
                switch (flood)
                {
                    case "ping":
                        Http2FrameWriter.WritePing(batch, (ulong)k, ack: false);
                        break;
                    case "refused-streams":
                        Http2FrameWriter.WriteHeaders(batch, nextId, get, endStream: true, 16_384);
                        nextId += 2;
                        break;
                    default:
                        // One byte of data and one of padding: the padding is credited back at once.
                        Span<byte> header = batch.GetSpan(Http2FrameHeader.Size);
                        new Http2FrameHeader(3, Http2FrameType.Data, Http2FrameFlags.Padded, 1).Write(header);
                        batch.Advance(Http2FrameHeader.Size);
                        batch.Write((ReadOnlySpan<byte>)[1, (byte)'x', 0]);
                        break;
                }
            }

            try
            {
                await socket.SendAsync(batch.WrittenMemory, total.Token);
            }
            catch (SocketException)
            {
                sendFailed = true; // the server closed the connection
            }
        }

        // Whatever is left to read, the connection ends (FIN or reset) within the bound.
        byte[] sink = new byte[64 * 1024];
        bool closed = false;
        while (!closed)
        {
            try
            {
                closed = await socket.ReceiveAsync(sink, total.Token) == 0;
            }
            catch (SocketException)
            {
                closed = true;
            }
        }

        Assert.True(LimitCounters.Get("h2_output_queue_full") > before);
    }
}

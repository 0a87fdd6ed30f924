using System.Text;
using Appliance.Protocol.Http2;
using Appliance.Tests.Support;

namespace Appliance.Tests.Server;

/// <summary>
/// Flow control and multiplexing over one connection (RFC 9113 §5.2, §6.9), and the graceful GOAWAY on shutdown
/// (§6.8): a stream the client does not read stalls alone, the connection window is honoured, request bodies
/// larger than both receive windows flow because WINDOW_UPDATE follows the application's reads.
/// </summary>
[Collection(Http2Collection.Name)]
public sealed class Http2FlowControlTests(Http2Fixture fixture)
{
    private static int DataBytes(IEnumerable<H2Frame> frames, int streamId) =>
        frames.Where(f => f.Type == Http2FrameType.Data && f.StreamId == streamId).Sum(f => f.Length);

    [Fact]
    public async Task A_stream_the_client_does_not_read_does_not_stall_the_others()
    {
        // Stream windows of 1000 bytes, a connection window large enough for everything.
        await using RawH2Client c = await fixture.ConnectAsync(fixture.H2c, new Http2Setting(Http2SettingId.InitialWindowSize, 1000));
        await c.SendWindowUpdateAsync(0, 10_000_000);
        await c.SendGetAsync(1, "/big");
        await c.SendGetAsync(3, "/big");
        await c.SendWindowUpdateAsync(3, 300_000); // only stream 3 is read

        H2Response three = await c.ReadResponseAsync(3);
        Assert.Equal(Http2Fixture.BigBody, Encoding.ASCII.GetString(three.Body));

        // Stream 1 got exactly its window and is waiting; it completes once the client opens it.
        var first = new List<H2Frame>();
        while (first.Sum(f => f.Length) < 1000)
        {
            first.Add(await c.ExpectAsync("DATA on stream 1", f => f.Type == Http2FrameType.Data && f.StreamId == 1));
        }

        Assert.Equal(1000, DataBytes(first, 1));
        Assert.DoesNotContain(first, f => f.EndStream);
        await c.SendPingAsync(7); // everything the server had to send is out once the ACK is in
        await c.ExpectAsync("PING ACK", f => f.Type == Http2FrameType.Ping && f.Has(Http2FrameFlags.Ack), fail: f => f.Type == Http2FrameType.Data && f.StreamId == 1);

        await c.SendWindowUpdateAsync(1, 199_000);
        H2Response one = await c.ReadResponseAsync(1);
        Assert.Equal(Http2Fixture.BigBody[1000..], Encoding.ASCII.GetString(one.Body));
    }

    [Fact]
    public async Task The_connection_window_of_the_client_is_honoured()
    {
        // Large stream windows, the default 65,535-byte connection window.
        await using RawH2Client c = await fixture.ConnectAsync(fixture.H2c, new Http2Setting(Http2SettingId.InitialWindowSize, 1_000_000));
        await c.SendGetAsync(1, "/big");
        var frames = new List<H2Frame>();
        while (frames.Sum(f => f.Length) < 65_535)
        {
            frames.Add(await c.ExpectAsync("DATA on stream 1", f => f.Type == Http2FrameType.Data && f.StreamId == 1));
        }

        Assert.Equal(65_535, DataBytes(frames, 1));
        Assert.All(frames, f => Assert.True(f.Length <= 16_384));
        await c.SendPingAsync(9);
        await c.ExpectAsync("PING ACK", f => f.Type == Http2FrameType.Ping && f.Has(Http2FrameFlags.Ack), fail: f => f.Type == Http2FrameType.Data);

        await c.SendWindowUpdateAsync(0, 200_000);
        H2Response rest = await c.ReadResponseAsync(1);
        Assert.Equal(200_000 - 65_535, rest.Body.Length);
    }

    [Fact]
    public async Task A_request_body_larger_than_both_receive_windows_completes_as_the_app_reads()
    {
        await using RawH2Client c = await fixture.ConnectAsync();
        Assert.Equal(768u * 1024, c.ServerSetting(Http2SettingId.InitialWindowSize));
        long connectionWindow = 65_535 + c.ServerConnectionWindowIncrement;
        Assert.Equal(1024 * 1024, connectionWindow);
        long streamWindow = 768 * 1024;

        const int size = 3_000_000;
        c.WriteHeaders(1, RawH2Client.Block(c.Request("POST", "/upload", ("content-length", size.ToString()))), endStream: false);
        await c.FlushAsync();
        int sent = 0, streamUpdates = 0, connectionUpdates = 0;
        byte[] chunk = new byte[16_384];
        while (sent < size)
        {
            int n = (int)Math.Min(Math.Min(chunk.Length, size - sent), Math.Min(streamWindow, connectionWindow));
            if (n > 0)
            {
                sent += n;
                streamWindow -= n;
                connectionWindow -= n;
                await c.SendDataAsync(1, chunk.AsSpan(0, n), endStream: sent == size);
                continue;
            }

            // A window is spent: only the server's WINDOW_UPDATE can open it.
            H2Frame update = await c.ExpectAsync("WINDOW_UPDATE", f => f.Type == Http2FrameType.WindowUpdate,
                fail: f => f.Type is Http2FrameType.GoAway or Http2FrameType.RstStream);
            int increment = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(update.Payload);
            if (update.StreamId == 0)
            {
                connectionWindow += increment;
                connectionUpdates++;
            }
            else
            {
                Assert.Equal(1, update.StreamId);
                streamWindow += increment;
                streamUpdates++;
            }
        }

        H2Response r = await c.ReadResponseAsync(1);
        Assert.Equal(200, r.Status);
        Assert.Equal("uploaded", r.BodyText);
        Assert.True(streamUpdates >= 3, $"stream WINDOW_UPDATEs: {streamUpdates}");
        Assert.True(connectionUpdates >= 2, $"connection WINDOW_UPDATEs: {connectionUpdates}");
    }

    [Theory]
    [InlineData(false, 65_535)]
    [InlineData(true, 65_535)]
    [InlineData(false, 16 * 1024 * 1024)]
    public async Task A_response_larger_than_the_output_queue_and_the_windows_completes(bool tls, int clientWindow)
    {
        // 3 MB: past MaxQueuedOutputBytes (1 MiB); with the default 64 KiB windows the server waits for
        // WINDOW_UPDATE about 45 times, with 16 MiB windows only for the queue to drain.
        await using RawH2Client c = await fixture.ConnectAsync(tls ? fixture.Https : fixture.H2c, new Http2Setting(Http2SettingId.InitialWindowSize, (uint)clientWindow));
        if (clientWindow > 65_535)
        {
            await c.SendWindowUpdateAsync(0, clientWindow);
        }

        await c.SendGetAsync(1, "/huge");
        H2Response r = await c.ReadResponseAsync(1, timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(200, r.Status);
        Assert.Equal(3_000_000, r.Body.Length);
        Assert.True(Http2Fixture.HugeBody == Encoding.ASCII.GetString(r.Body), "the body differs");
    }

    [Fact]
    public async Task A_ping_while_responses_fill_the_output_queue_is_answered()
    {
        // Browser-like windows (4 MB per stream, 100 MB for the connection), eight 200 KB downloads and a PING in
        // one write: the responses queue past MaxQueuedOutputBytes (1 MiB) at once. Response data waits for the
        // client to read it; the PING ACK must not be mistaken for a control-frame flood.
        await using RawH2Client c = await fixture.ConnectAsync(fixture.H2c, new Http2Setting(Http2SettingId.InitialWindowSize, 4 * 1024 * 1024));
        c.WriteWindowUpdate(0, 100 * 1024 * 1024);
        for (int id = 1; id <= 15; id += 2)
        {
            c.WriteHeaders(id, RawH2Client.Block(c.Request("GET", "/big")), endStream: true);
        }

        c.WritePing(42);
        await c.FlushAsync();
        await c.ExpectAsync("PING ACK", f => f.Type == Http2FrameType.Ping && f.Has(Http2FrameFlags.Ack), fail: f => f.Type == Http2FrameType.GoAway);
        for (int id = 1; id <= 15; id += 2)
        {
            H2Response r = await c.ReadResponseAsync(id);
            Assert.Equal(200_000, r.Body.Length);
        }
    }

    [Fact]
    public async Task Request_data_discarded_after_an_early_response_still_returns_the_connection_window()
    {
        // A 404 is answered without reading the body; the rest of the body is discarded (RST_STREAM NO_ERROR), but
        // what it cost in the connection window must come back, or four such requests would exhaust the 1 MiB.
        await using RawH2Client c = await fixture.ConnectAsync();
        long connectionWindow = 65_535 + c.ServerConnectionWindowIncrement;
        const int bodyBytes = 600_000;
        for (int i = 0; i < 4; i++)
        {
            int id = 1 + (2 * i);
            while (connectionWindow < bodyBytes)
            {
                H2Frame update = await c.ExpectAsync("a connection WINDOW_UPDATE", f => f.Type == Http2FrameType.WindowUpdate && f.StreamId == 0,
                    fail: f => f.Type == Http2FrameType.GoAway);
                connectionWindow += (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(update.Payload);
            }

            c.WriteHeaders(id, RawH2Client.Block(c.Request("POST", "/nothing-here")), endStream: false);
            for (int sent = 0; sent < bodyBytes; sent += 15_000)
            {
                c.WriteData(id, new byte[15_000], endStream: false);
            }

            connectionWindow -= bodyBytes;
            await c.FlushAsync();
            H2Response r = await c.ReadResponseAsync(id);
            Assert.Equal(404, r.Status);
            await c.ExpectRstStreamAsync(id, Http2ErrorCode.NoError, checkConnectionAlive: false);
        }

        await c.SendGetAsync(11);
        Assert.Equal(200, (await c.ReadResponseAsync(11)).Status);
    }

    [Fact]
    public async Task Streams_reset_by_the_client_while_waiting_for_the_window_free_their_slots()
    {
        // Window 0: each response sends its HEADERS and waits. 100 of them fill SETTINGS_MAX_CONCURRENT_STREAMS;
        // once the client resets them, 100 new streams must be accepted (not refused) on the same connection.
        await using RawH2Client c = await fixture.ConnectAsync(fixture.H2c, new Http2Setting(Http2SettingId.InitialWindowSize, 0));
        for (int round = 0; round < 2; round++)
        {
            int first = 1 + (round * 200);
            for (int i = 0; i < 100; i++)
            {
                c.WriteHeaders(first + (2 * i), RawH2Client.Block(c.Request("GET", "/big")), endStream: true);
            }

            await c.FlushAsync();
            for (int i = 0; i < 100; i++)
            {
                int id = first + (2 * i);
                await c.ExpectAsync($"HEADERS on stream {id}", f => f.Type == Http2FrameType.Headers && f.StreamId == id,
                    fail: f => f.Type is Http2FrameType.RstStream or Http2FrameType.GoAway);
            }

            for (int i = 0; i < 100; i++)
            {
                c.WriteRstStream(first + (2 * i), Http2ErrorCode.Cancel);
            }

            await c.FlushAsync();
        }

        await c.ExpectAliveAsync();
    }

    [Fact]
    public async Task Header_table_size_changes_between_responses_are_signalled_smallest_first()
    {
        // RFC 7541 §4.2: 0 then 4096 before the next block: the block starts with an update to 0, then to 4096.
        await using RawH2Client c = await fixture.ConnectAsync(fixture.H2c, new Http2Setting(Http2SettingId.HeaderTableSize, 0));
        await c.SendSettingsAsync(new Http2Setting(Http2SettingId.HeaderTableSize, 4096));
        await c.ExpectAsync("SETTINGS ACK", f => f.Type == Http2FrameType.Settings && f.Has(Http2FrameFlags.Ack));
        await c.SendGetAsync(1, "/users/1");
        H2Frame headers = await c.ExpectAsync("HEADERS", f => f.Type == Http2FrameType.Headers && f.StreamId == 1);
        Assert.Equal([0x20, 0x3F, 0xE1, 0x1F], headers.FieldBlock![..4]);
        Assert.DoesNotContain(headers.Fields!, f => f.Name == "x-test-hpack-error");

        // Indexing is back: the second response refers to entries of the first.
        await c.SendGetAsync(3, "/users/2");
        H2Frame second = await c.ExpectAsync("HEADERS", f => f.Type == Http2FrameType.Headers && f.StreamId == 3);
        Assert.True(second.FieldBlock!.Length < headers.FieldBlock.Length, "the second block did not use the dynamic table");
        Assert.Equal("no-store", second.Fields!.First(f => f.Name == "cache-control").Value);
    }

    [Fact]
    public async Task A_response_header_block_larger_than_a_frame_goes_out_as_headers_and_continuations()
    {
        // 40 KB of response fields: HEADERS and CONTINUATIONs of at most 16 KiB, back to back (§4.3), while another
        // stream's response is being sent too.
        await using RawH2Client c = await fixture.ConnectAsync();
        c.WriteHeaders(1, RawH2Client.Block(c.Request("GET", "/big")), endStream: true);
        c.WriteHeaders(3, RawH2Client.Block(c.Request("GET", "/bigheaders")), endStream: true);
        await c.FlushAsync();
        Assert.Equal(200_000, (await c.ReadResponseAsync(1)).Body.Length); // gives the connection window back
        H2Response r = await c.ReadResponseAsync(3);
        Assert.Equal(200, r.Status);
        Assert.Equal(new string('h', 40_000), r.Field("x-large"));
        Assert.Equal("ok", r.BodyText);

        string[] frames = c.Transcript.Split('\n').Select(l => l.Trim()).ToArray();
        int start = Array.FindIndex(frames, l => l.StartsWith("Headers flags=0x00 stream=3 length=16384", StringComparison.Ordinal));
        Assert.True(start >= 0, c.Transcript);
        int end = Array.FindIndex(frames, start + 1, l => !l.StartsWith("Continuation flags=0x00 stream=3 length=16384", StringComparison.Ordinal));
        Assert.True(end > start, c.Transcript);
        Assert.StartsWith("Continuation flags=0x04 stream=3", frames[end]); // nothing else in between
    }

    [Fact]
    public async Task Many_streams_are_answered_on_one_connection()
    {
        await using RawH2Client c = await fixture.ConnectAsync(fixture.Https);
        for (int round = 0; round < 3; round++)
        {
            int first = 1 + (round * 200);
            for (int i = 0; i < 100; i++)
            {
                int id = first + (2 * i);
                c.WriteHeaders(id, RawH2Client.Block(c.Request("GET", i % 2 == 0 ? "/" : $"/users/{i}")), endStream: true);
            }

            await c.FlushAsync();
            for (int i = 0; i < 100; i++)
            {
                int id = first + (2 * i);
                H2Response r = await c.ReadResponseAsync(id);
                Assert.Equal(200, r.Status);
                Assert.Equal(i % 2 == 0 ? "Hello, World!" : "user", r.BodyText);
            }
        }
    }

    [Fact]
    public async Task Response_fields_are_lowercase_and_connection_specific_fields_are_dropped()
    {
        await using RawH2Client c = await fixture.ConnectAsync(fixture.Https);
        await c.SendGetAsync(1, "/users/7");
        H2Response r = await c.ReadResponseAsync(1);
        Assert.Equal(200, r.Status);
        Assert.All(r.Fields, f => Assert.Equal(f.Name.ToLowerInvariant(), f.Name));
        Assert.Equal("no-store", r.Field("cache-control"));
        Assert.Equal("Mixed-Case", r.Field("x-custom"));
        Assert.Equal("4", r.Field("content-length"));
        Assert.DoesNotContain(r.Fields, f => f.Name is "connection" or "keep-alive" or "transfer-encoding");
    }

    [Fact]
    public async Task Head_gets_headers_with_end_stream_and_no_data()
    {
        await using RawH2Client c = await fixture.ConnectAsync();
        await c.SendHeadersAsync(1, RawH2Client.Block(c.Request("HEAD", "/")), endStream: true);
        H2Frame headers = await c.ExpectAsync("HEADERS", f => f.Type == Http2FrameType.Headers && f.StreamId == 1);
        Assert.True(headers.BlockEndsStream);
        Assert.Contains(("content-length", "13"), headers.Fields!);
        await c.SendPingAsync(3);
        await c.ExpectAsync("PING ACK", f => f.Type == Http2FrameType.Ping, fail: f => f.StreamId == 1);
    }

    [Fact]
    public async Task Header_table_size_zero_from_the_client_makes_the_server_stop_indexing()
    {
        await using RawH2Client c = await fixture.ConnectAsync(fixture.H2c, new Http2Setting(Http2SettingId.HeaderTableSize, 0));
        for (int id = 1; id <= 5; id += 2)
        {
            await c.SendGetAsync(id, "/users/1");
            H2Frame headers = await c.ExpectAsync("HEADERS", f => f.Type == Http2FrameType.Headers && f.StreamId == id);
            byte[] block = headers.FieldBlock!;
            if (id == 1)
            {
                Assert.Equal(0x20, block[0]); // RFC 7541 §6.3: dynamic table size update to 0 first
            }

            Assert.DoesNotContain(headers.Fields!, f => f.Name == "x-test-hpack-error");
            Assert.Equal("no-store", headers.Fields!.First(f => f.Name == "cache-control").Value);
            Assert.False(HasIncrementalIndexing(block), "a field was added to a zero-size table");
        }
    }

    /// <summary>Walks an HPACK block and reports whether any representation is "literal with incremental indexing".</summary>
    private static bool HasIncrementalIndexing(byte[] block)
    {
        int i = 0;
        while (i < block.Length)
        {
            byte b = block[i];
            if ((b & 0x80) != 0)
            {
                i += IntegerLength(block, i, 7);
            }
            else if ((b & 0xC0) == 0x40)
            {
                return true;
            }
            else if ((b & 0xE0) == 0x20)
            {
                i += IntegerLength(block, i, 5);
            }
            else
            {
                bool newName = (b & 0x0F) == 0;
                i += IntegerLength(block, i, 4);
                if (newName)
                {
                    i += StringLength(block, i);
                }

                i += StringLength(block, i);
            }
        }

        return false;
    }

    private static int IntegerLength(byte[] b, int at, int prefix)
    {
        int max = (1 << prefix) - 1;
        if ((b[at] & max) != max)
        {
            return 1;
        }

        int n = 1;
        while ((b[at + n] & 0x80) != 0)
        {
            n++;
        }

        return n + 1;
    }

    private static int StringLength(byte[] b, int at)
    {
        int n = IntegerLength(b, at, 7);
        int value = b[at] & 0x7F;
        if (value == 0x7F)
        {
            value = 0x7F;
            int shift = 0;
            for (int k = 1; k < n; k++)
            {
                value += (b[at + k] & 0x7F) << shift;
                shift += 7;
            }
        }

        return n + value;
    }

    [Fact]
    public async Task Max_frame_size_from_the_client_is_used_for_data()
    {
        await using RawH2Client c = await fixture.ConnectAsync(fixture.H2c,
            new Http2Setting(Http2SettingId.MaxFrameSize, 65_536), new Http2Setting(Http2SettingId.InitialWindowSize, 1_000_000));
        await c.SendWindowUpdateAsync(0, 1_000_000);
        await c.SendGetAsync(1, "/big");
        Assert.Equal(200_000, (await c.ReadResponseAsync(1)).Body.Length);
        Assert.Contains("Data flags=0x00 stream=1 length=65536", c.Transcript); // frames as large as the client allows

        // Lowered again: the next response keeps to the new size.
        await c.SendSettingsAsync(new Http2Setting(Http2SettingId.MaxFrameSize, 20_000));
        await c.ExpectAsync("SETTINGS ACK", f => f.Type == Http2FrameType.Settings && f.Has(Http2FrameFlags.Ack));
        await c.SendGetAsync(3, "/big");
        var frames = new List<H2Frame>();
        for (int got = 0; got < 200_000;)
        {
            H2Frame f = await c.ExpectAsync("DATA on stream 3", f => f.Type == Http2FrameType.Data && f.StreamId == 3);
            frames.Add(f);
            got += f.Length;
        }

        Assert.All(frames, f => Assert.True(f.Length <= 20_000));
        Assert.Contains(frames, f => f.Length > 16_384);
    }

    [Fact]
    public async Task Shutdown_sends_goaway_no_error_and_lets_the_in_flight_stream_finish()
    {
        TestServer server = await TestServer.StartAsync(Http2Fixture.Config(shutdownTimeout: "10s"));
        Task? stopping = null;
        try
        {
            await using RawH2Client c = await RawH2Client.ConnectAsync(server.EndPoint("h2c"), tls: false);
            await c.HandshakeAsync();
            c.WriteHeaders(1, RawH2Client.Block(c.Request("POST", "/upload")), endStream: false);
            await c.FlushAsync();
            await c.ExpectAliveAsync(); // stream 1 is open on the server

            stopping = server.DisposeAsync().AsTask();
            // RFC 9113 §6.8, in two steps: first a GOAWAY with the highest stream id and a PING...
            H2Frame announce = await c.ExpectGoAwayAsync(Http2ErrorCode.NoError);
            Assert.Equal(int.MaxValue, announce.LastStreamId);
            H2Frame ping = await c.ExpectAsync("the server's PING", f => f.Type == Http2FrameType.Ping && !f.Has(Http2FrameFlags.Ack));

            // ...so a request the client sent before it saw that GOAWAY is still served;
            await c.SendGetAsync(3);
            H2Response early = await c.ReadResponseAsync(3);
            Assert.Equal(200, early.Status);

            // once the client has answered the PING, the final GOAWAY names the last stream processed.
            await c.SendPingAsync(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(ping.Payload), ack: true);
            H2Frame goAway = await c.ExpectGoAwayAsync(Http2ErrorCode.NoError);
            Assert.Equal(3, goAway.LastStreamId);
            Assert.False(stopping.IsCompleted, "the server stopped before the in-flight stream finished");

            // A new stream is not processed any more; the open one is.
            await c.SendGetAsync(5);
            await c.ExpectRstStreamAsync(5, Http2ErrorCode.RefusedStream);
            await c.SendDataAsync(1, "last bytes"u8, endStream: true);
            H2Response r = await c.ReadResponseAsync(1);
            Assert.Equal("uploaded", r.BodyText);
            await c.ExpectConnectionClosedAsync();
            await stopping.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            if (stopping is null)
            {
                await server.DisposeAsync();
            }
        }
    }
}

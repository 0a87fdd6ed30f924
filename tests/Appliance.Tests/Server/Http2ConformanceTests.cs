using System.Text;
using Appliance.Protocol.Http2;
using Appliance.Tests.Support;
using static Appliance.Protocol.Http2.Http2ErrorCode;

namespace Appliance.Tests.Server;

/// <summary>
/// h2spec-style conformance: each case sends what RFC 9113 (and RFC 7541 for HPACK) forbids or allows and checks the
/// exact answer, with its scope: a connection error is a GOAWAY with the code and then the connection closes; a
/// stream error is a RST_STREAM with the code on that stream and the connection keeps working (a PING is answered).
/// </summary>
[Collection(Http2Collection.Name)]
public sealed class Http2ConformanceTests(Http2Fixture fixture)
{
    public enum Listener
    {
        H2c,
        Tls,
        /// <summary>A 4 KiB stream receive window.</summary>
        Small,
    }

    public sealed record Case(
        string Name,
        Func<RawH2Client, Task> Send,
        Func<RawH2Client, Task> Expect,
        Listener On = Listener.H2c,
        bool Handshake = true,
        Http2Setting[]? Settings = null);

    private static readonly Case[] s_cases =
    [
        // ---- §3.4 connection preface (over TLS: on a cleartext listener a wrong preface is HTTP/1.1) ----
        new("3.4 invalid connection preface", c => Raw(c, "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"), GoAway(ProtocolError), Listener.Tls, Handshake: false),
        new("3.4 preface followed by PING instead of SETTINGS", c => { c.WritePreface(); c.WritePing(1); return c.FlushAsync(); }, GoAway(ProtocolError), Listener.Tls, Handshake: false),
        new("3.4 HTTP/1.1 request on an ALPN h2 connection", c => Raw(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), GoAway(ProtocolError), Listener.Tls, Handshake: false),
        new("3.4 preface and SETTINGS in separate writes", async c => { c.WritePreface(); await c.FlushAsync(); await c.SendSettingsAsync(); await c.SendGetAsync(1); }, Response(1, 200), Listener.Tls, Handshake: false),

        // ---- §4.1 frame format, §4.2 frame size ----
        new("4.1 undefined flags and the reserved bit are ignored", c => Raw(c, [0, 0, 8, 6, 0xF6, 0x80, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]), PingAck(0x0102030405060708), Listener.H2c),
        new("4.2 DATA larger than SETTINGS_MAX_FRAME_SIZE", c => { OpenPost(c, 1); c.WriteData(1, new byte[16_385], false); return c.FlushAsync(); }, GoAway(FrameSizeError)),
        new("4.2 HEADERS larger than SETTINGS_MAX_FRAME_SIZE", c => c.SendHeadersAsync(1, RawH2Client.Block(c.Request("GET", "/", ("x-big", new string('a', 16_400)))), true), GoAway(FrameSizeError)),
        new("4.2 DATA of exactly SETTINGS_MAX_FRAME_SIZE is accepted", c => { OpenPost(c, 1, ("content-length", "16384")); c.WriteData(1, new byte[16_384], true); return c.FlushAsync(); }, Response(1, 200)),

        // ---- §4.3 field blocks and HPACK ----
        new("4.3 HPACK indexed field with index 0", c => c.SendHeadersAsync(1, [0x80], true), GoAway(CompressionError)),
        new("4.3 HPACK index past the static and dynamic tables", c => c.SendHeadersAsync(1, RawH2Client.Integer(70, 7, 0x80), true), GoAway(CompressionError)),
        new("4.3 HPACK table size update above SETTINGS_HEADER_TABLE_SIZE", c => c.SendHeadersAsync(1, [.. RawH2Client.Integer(4097, 5, 0x20), .. RawH2Client.Block(c.Request("GET", "/"))], true), GoAway(CompressionError)),
        new("4.3 HPACK table size update after a field", c => c.SendHeadersAsync(1, [.. RawH2Client.Block(c.Request("GET", "/")), .. RawH2Client.Integer(0, 5, 0x20)], true), GoAway(CompressionError)),
        new("4.3 HPACK block ending inside a field", c => c.SendHeadersAsync(1, [0x00, 0x05, (byte)'a'], true), GoAway(CompressionError)),
        new("4.3 HPACK literal whose name index is past the tables", c => c.SendHeadersAsync(1, [.. RawH2Client.Block(c.Request("GET", "/")), .. RawH2Client.Integer(70, 4, 0x00), 1, (byte)'v'], true), GoAway(CompressionError)),
        new("4.3 HPACK Huffman string containing EOS", c => c.SendHeadersAsync(1, [.. RawH2Client.Block(c.Request("GET", "/")), 0x00, 1, (byte)'x', 0x84, 0xFF, 0xFF, 0xFF, 0xFF], true), GoAway(CompressionError)),
        new("4.3 HPACK Huffman padding longer than 7 bits", c => c.SendHeadersAsync(1, [.. RawH2Client.Block(c.Request("GET", "/")), 0x00, 1, (byte)'x', 0x82, 0x1F, 0xFF], true), GoAway(CompressionError)),
        new("4.3 HPACK Huffman padding of zeros", c => c.SendHeadersAsync(1, [.. RawH2Client.Block(c.Request("GET", "/")), 0x00, 1, (byte)'x', 0x81, 0x18], true), GoAway(CompressionError)),
        new("4.3 HPACK dynamic table entries are kept across requests", async c =>
        {
            // x-req: v with incremental indexing (01 + new name) becomes dynamic index 62; the second request uses it.
            byte[] indexed = [0x40, 5, .. "x-req"u8, 1, (byte)'v'];
            await c.SendHeadersAsync(1, [.. RawH2Client.Block(c.Request("GET", "/")), .. indexed], true);
            Assert.Equal(200, (await c.ReadResponseAsync(1)).Status);
            await c.SendHeadersAsync(3, [.. RawH2Client.Block(c.Request("GET", "/")), 0x80 | 62], true);
        }, Response(3, 200)),

        // ---- §5.1 stream states ----
        new("5.1 idle: DATA", c => c.SendDataAsync(1, "test"u8, true), GoAway(ProtocolError)),
        new("5.1 idle: RST_STREAM", c => c.SendRstStreamAsync(1, Cancel), GoAway(ProtocolError)),
        new("5.1 idle: WINDOW_UPDATE", c => c.SendWindowUpdateAsync(1, 100), GoAway(ProtocolError)),
        new("5.1 idle: WINDOW_UPDATE of 0", c => c.SendWindowUpdateAsync(1, 0), GoAway(ProtocolError)),
        new("5.1 idle: CONTINUATION", c => { c.WriteContinuation(1, RawH2Client.Block(c.Request("GET", "/")), true); return c.FlushAsync(); }, GoAway(ProtocolError)),
        new("5.1 half-closed (remote): DATA", async c => { await GetStalled(c, 1); await c.SendDataAsync(1, "test"u8, true); }, Rst(1, StreamClosed), Settings: [new(Http2SettingId.InitialWindowSize, 0)]),
        new("5.1 half-closed (remote): HEADERS", async c => { await GetStalled(c, 1); await c.SendGetAsync(1); }, Rst(1, StreamClosed), Settings: [new(Http2SettingId.InitialWindowSize, 0)]),
        new("5.1 half-closed (remote): CONTINUATION", async c => { await GetStalled(c, 1); c.WriteContinuation(1, RawH2Client.Block(("x-a", "b")), true); await c.FlushAsync(); }, GoAway(ProtocolError), Settings: [new(Http2SettingId.InitialWindowSize, 0)]),
        new("5.1 closed after the client's RST_STREAM: DATA", c => { OpenPost(c, 1); c.WriteRstStream(1, Cancel); c.WriteData(1, "test"u8, true); return c.FlushAsync(); }, Rst(1, StreamClosed)),
        new("5.1 closed after the client's RST_STREAM: HEADERS", c => { OpenPost(c, 1); c.WriteRstStream(1, Cancel); c.WriteHeaders(1, RawH2Client.Block(c.Request("GET", "/")), true); return c.FlushAsync(); }, Rst(1, StreamClosed)),
        new("5.1 closed after the client's RST_STREAM: CONTINUATION", c => { OpenPost(c, 1); c.WriteRstStream(1, Cancel); c.WriteContinuation(1, RawH2Client.Block(("x-a", "b")), true); return c.FlushAsync(); }, GoAway(ProtocolError)),
        new("5.1 closed: DATA", async c => { await GetAndRead(c, 1); await c.SendDataAsync(1, "test"u8, true); }, GoAway(StreamClosed)),
        new("5.1 closed: HEADERS", async c => { await GetAndRead(c, 1); await c.SendGetAsync(1); }, GoAway(StreamClosed)),
        new("5.1 closed: CONTINUATION", async c => { await GetAndRead(c, 1); c.WriteContinuation(1, RawH2Client.Block(("x-a", "b")), true); await c.FlushAsync(); }, GoAway(ProtocolError)),
        new("5.1 closed: WINDOW_UPDATE, PRIORITY and RST_STREAM are ignored", async c =>
        {
            await GetAndRead(c, 1);
            c.WriteWindowUpdate(1, 10);
            c.WritePriority(1, 0);
            c.WriteRstStream(1, Cancel);
            await c.FlushAsync();
        }, Alive),
        new("5.1 HEADERS with END_STREAM then DATA: STREAM_CLOSED", c => { c.WriteHeaders(1, RawH2Client.Block(c.Request("GET", "/")), true); c.WriteData(1, "x"u8, true); return c.FlushAsync(); }, StreamClosedEitherScope(1)),

        // ---- §5.1.1 stream identifiers, §5.1.2 concurrency ----
        new("5.1.1 HEADERS on an even stream id", c => c.SendGetAsync(2), GoAway(ProtocolError)),
        new("5.1.1 HEADERS on a lower id than a previous stream", c => { c.WriteHeaders(5, RawH2Client.Block(c.Request("GET", "/")), true); c.WriteHeaders(3, RawH2Client.Block(c.Request("GET", "/")), true); return c.FlushAsync(); }, GoAway(ProtocolError)),
        new("5.1.2 streams past SETTINGS_MAX_CONCURRENT_STREAMS are refused", async c =>
        {
            for (int id = 1; id <= 199; id += 2)
            {
                OpenPost(c, id); // 100 streams whose bodies are still to come
            }

            c.WriteHeaders(201, RawH2Client.Block(c.Request("POST", "/upload")), false);
            await c.FlushAsync();
            await c.ExpectRstStreamAsync(201, RefusedStream);
            // Once one finishes, a new stream is accepted again.
            await c.SendDataAsync(1, "x"u8, true);
            Assert.Equal(200, (await c.ReadResponseAsync(1)).Status);
            await c.SendGetAsync(203);
        }, Response(203, 200)),

        // ---- §5.3 priority (deprecated, but still parsed) ----
        new("5.3.1 HEADERS depending on itself", c => c.SendFrameAsync(Http2FrameType.Headers, Http2FrameFlags.EndStream | Http2FrameFlags.EndHeaders | Http2FrameFlags.Priority, 1,
            [.. RawH2Client.PriorityFields(1), .. RawH2Client.Block(c.Request("GET", "/"))]), Rst(1, ProtocolError)),
        new("5.3.1 PRIORITY depending on itself", c => { c.WritePriority(1, 1); return c.FlushAsync(); }, Rst(1, ProtocolError)),
        new("5.3 PRIORITY on an idle stream does not open it", async c => { c.WritePriority(5, 0); await c.SendGetAsync(3); Assert.Equal(200, (await c.ReadResponseAsync(3)).Status); await c.SendGetAsync(5); }, Response(5, 200)),

        // ---- §5.5 extensions ----
        new("5.5 unknown frame type is ignored", async c => { c.WriteFrame(0xFF, 0xFF, 0, "ignore me"u8); c.WriteFrame(0x20, 0, 1, "and me"u8); await c.FlushAsync(); await c.SendGetAsync(1); }, Response(1, 200)),
        new("5.5 unknown frame type inside a header block", c => { c.WriteHeaders(1, RawH2Client.Block(c.Request("GET", "/")), true, endHeaders: false); c.WriteFrame(0xFF, 0, 1, "x"u8); return c.FlushAsync(); }, GoAway(ProtocolError)),

        // ---- §6.1 DATA ----
        new("6.1 DATA on stream 0", c => c.SendDataAsync(0, "test"u8, true), GoAway(ProtocolError)),
        new("6.1 DATA padding longer than the payload", c => { OpenPost(c, 1); c.WriteFrame(Http2FrameType.Data, Http2FrameFlags.Padded, 1, [5, (byte)'a', (byte)'b', (byte)'c']); return c.FlushAsync(); }, GoAway(ProtocolError)),
        new("6.1 padded DATA: padding stripped and content-length checked on the data", c =>
        {
            OpenPost(c, 1, ("content-length", "3"));
            c.WriteFrame(Http2FrameType.Data, Http2FrameFlags.Padded | Http2FrameFlags.EndStream, 1, [2, (byte)'a', (byte)'b', (byte)'c', 0, 0]);
            return c.FlushAsync();
        }, Response(1, 200)),

        // ---- §6.2 HEADERS ----
        new("6.2 HEADERS on stream 0", c => c.SendHeadersAsync(0, RawH2Client.Block(c.Request("GET", "/")), true), GoAway(ProtocolError)),
        new("6.2 HEADERS padding longer than the payload", c => c.SendFrameAsync(Http2FrameType.Headers, Http2FrameFlags.Padded | Http2FrameFlags.EndHeaders | Http2FrameFlags.EndStream, 1,
            [200, .. RawH2Client.Block(c.Request("GET", "/"))]), GoAway(ProtocolError)),
        new("6.2 padded HEADERS with priority fields", c => c.SendFrameAsync(Http2FrameType.Headers, Http2FrameFlags.Padded | Http2FrameFlags.Priority | Http2FrameFlags.EndHeaders | Http2FrameFlags.EndStream, 1,
            [3, .. RawH2Client.PriorityFields(0, 200), .. RawH2Client.Block(c.Request("GET", "/")), 0, 0, 0]), Response(1, 200)),
        new("6.2 PRIORITY between HEADERS and CONTINUATION", c => { c.WriteHeaders(1, RawH2Client.Block(c.Request("GET", "/")), true, endHeaders: false); c.WritePriority(1, 0); return c.FlushAsync(); }, GoAway(ProtocolError)),
        new("6.2 DATA between HEADERS and CONTINUATION", c => { c.WriteHeaders(1, RawH2Client.Block(c.Request("POST", "/upload")), false, endHeaders: false); c.WriteData(1, "x"u8, true); return c.FlushAsync(); }, GoAway(ProtocolError)),
        new("6.2 CONTINUATION on another stream", c =>
        {
            c.WriteHeaders(1, RawH2Client.Block(c.Request("GET", "/")), true, endHeaders: false);
            c.WriteContinuation(3, RawH2Client.Block(("x-a", "b")), true);
            return c.FlushAsync();
        }, GoAway(ProtocolError)),

        // ---- §6.3 PRIORITY ----
        new("6.3 PRIORITY on stream 0", c => { c.WritePriority(0, 1); return c.FlushAsync(); }, GoAway(ProtocolError)),
        new("6.3 PRIORITY with a length of 4", async c => { await c.SendGetAsync(1); await c.SendFrameAsync(Http2FrameType.Priority, 0, 1, [0x80, 0, 0, 1]); }, Rst(1, FrameSizeError)),

        // ---- §6.4 RST_STREAM ----
        new("6.4 RST_STREAM on stream 0", c => c.SendRstStreamAsync(0, Cancel), GoAway(ProtocolError)),
        new("6.4 RST_STREAM with a length of 3", c => { OpenPost(c, 1); c.WriteFrame(Http2FrameType.RstStream, 0, 1, [0, 0, 8]); return c.FlushAsync(); }, GoAway(FrameSizeError)),
        new("6.4 RST_STREAM ends the stream; the connection goes on", async c => { OpenPost(c, 1); c.WriteRstStream(1, Cancel); await c.FlushAsync(); await c.SendGetAsync(3); }, Response(3, 200)),

        // ---- §6.5 SETTINGS ----
        new("6.5 SETTINGS ACK with a payload", c => c.SendFrameAsync(Http2FrameType.Settings, Http2FrameFlags.Ack, 0, [0, 3, 0, 0, 0, 100]), GoAway(FrameSizeError)),
        new("6.5 SETTINGS on a stream", c => c.SendFrameAsync(Http2FrameType.Settings, 0, 1, [0, 3, 0, 0, 0, 100]), GoAway(ProtocolError)),
        new("6.5 SETTINGS length not a multiple of 6", c => c.SendFrameAsync(Http2FrameType.Settings, 0, 0, [0, 3, 0, 0, 0, 100, 0, 0, 0]), GoAway(FrameSizeError)),
        new("6.5.2 SETTINGS_ENABLE_PUSH of 2", c => c.SendSettingsAsync(new Http2Setting(Http2SettingId.EnablePush, 2)), GoAway(ProtocolError)),
        new("6.5.2 SETTINGS_INITIAL_WINDOW_SIZE of 2^31", c => c.SendSettingsAsync(new Http2Setting(Http2SettingId.InitialWindowSize, 1u << 31)), GoAway(FlowControlError)),
        new("6.5.2 SETTINGS_MAX_FRAME_SIZE below 16384", c => c.SendSettingsAsync(new Http2Setting(Http2SettingId.MaxFrameSize, 16_383)), GoAway(ProtocolError)),
        new("6.5.2 SETTINGS_MAX_FRAME_SIZE above 2^24-1", c => c.SendSettingsAsync(new Http2Setting(Http2SettingId.MaxFrameSize, 1u << 24)), GoAway(ProtocolError)),
        new("6.5.2 unknown settings are ignored", async c =>
        {
            await c.SendSettingsAsync(new Http2Setting((Http2SettingId)0xFF, 1), new Http2Setting((Http2SettingId)0x4242, uint.MaxValue));
            await c.ExpectAsync("SETTINGS ACK", f => f.Type == Http2FrameType.Settings && f.Has(Http2FrameFlags.Ack));
            await c.SendGetAsync(1);
        }, Response(1, 200)),
        new("6.5.3 several values of one setting in a frame: the last wins", async c =>
        {
            await c.SendSettingsAsync(new Http2Setting(Http2SettingId.InitialWindowSize, 100), new Http2Setting(Http2SettingId.InitialWindowSize, 1));
            await c.ExpectAsync("SETTINGS ACK", f => f.Type == Http2FrameType.Settings && f.Has(Http2FrameFlags.Ack));
            await c.SendGetAsync(1);
        }, DataOf(1, 1)),
        new("6.5.3 SETTINGS during the connection are acknowledged", c => c.SendSettingsAsync(new Http2Setting(Http2SettingId.MaxConcurrentStreams, 10)),
            c => c.ExpectAsync("SETTINGS ACK", f => f.Type == Http2FrameType.Settings && f.Has(Http2FrameFlags.Ack))),

        // ---- §6.6 PUSH_PROMISE, §6.7 PING, §6.8 GOAWAY ----
        new("6.6 PUSH_PROMISE from a client", c => c.SendFrameAsync(Http2FrameType.PushPromise, Http2FrameFlags.EndHeaders, 1, [0, 0, 0, 2, .. RawH2Client.Block(c.Request("GET", "/"))]), GoAway(ProtocolError)),
        new("6.7 PING is answered with ACK and the same data", c => c.SendPingAsync(0xDEADBEEF_CAFEF00D), PingAck(0xDEADBEEF_CAFEF00D)),
        new("6.7 PING with ACK is not answered", c => { c.WritePing(1, ack: true); c.WritePing(2); return c.FlushAsync(); },
            async c => Assert.Equal(2UL, System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian((await c.ExpectAsync("PING", f => f.Type == Http2FrameType.Ping)).Payload))),
        new("6.7 PING on a stream", c => c.SendFrameAsync(Http2FrameType.Ping, 0, 1, new byte[8]), GoAway(ProtocolError)),
        new("6.7 PING with a length of 6", c => c.SendFrameAsync(Http2FrameType.Ping, 0, 0, new byte[6]), GoAway(FrameSizeError)),
        new("6.8 GOAWAY on a stream", c => c.SendFrameAsync(Http2FrameType.GoAway, 0, 1, new byte[8]), GoAway(ProtocolError)),
        new("6.8 client GOAWAY: the open stream completes, then the server closes", async c =>
        {
            OpenPost(c, 1);
            c.WriteGoAway(0, NoError);
            c.WriteData(1, "x"u8, true);
            await c.FlushAsync();
            Assert.Equal(200, (await c.ReadResponseAsync(1)).Status);
        }, c => c.ExpectConnectionClosedAsync()),

        // ---- §6.9 WINDOW_UPDATE and flow control ----
        new("6.9 WINDOW_UPDATE of 0 on the connection", c => c.SendWindowUpdateAsync(0, 0), GoAway(ProtocolError)),
        new("6.9 WINDOW_UPDATE of 0 on a stream", c => { OpenPost(c, 1); c.WriteWindowUpdate(1, 0); return c.FlushAsync(); }, Rst(1, ProtocolError)),
        new("6.9 WINDOW_UPDATE with a length of 3", c => c.SendFrameAsync(Http2FrameType.WindowUpdate, 0, 0, [0, 0, 1]), GoAway(FrameSizeError)),
        new("6.9.1 WINDOW_UPDATE overflowing the connection window", c => { c.WriteWindowUpdate(0, int.MaxValue); c.WriteWindowUpdate(0, int.MaxValue); return c.FlushAsync(); }, GoAway(FlowControlError)),
        new("6.9.1 WINDOW_UPDATE overflowing a stream window", c => { OpenPost(c, 1); c.WriteWindowUpdate(1, int.MaxValue); return c.FlushAsync(); }, Rst(1, FlowControlError)),
        new("6.9.1 DATA beyond the stream window", c => { OpenPost(c, 1); c.WriteData(1, new byte[4097], false); return c.FlushAsync(); }, Rst(1, FlowControlError), Listener.Small),
        new("6.9.2 before our SETTINGS are acknowledged the client may use the default stream window", c =>
        {
            // Request body sent right after the preface, as curl does: 30,000 bytes past our 4 KiB window (§6.9.2).
            c.WritePreface();
            c.WriteSettings();
            OpenPost(c, 1, ("content-length", "30000"));
            c.WriteData(1, new byte[16_384], false);
            c.WriteData(1, new byte[13_616], true);
            return c.FlushAsync();
        }, Response(1, 200), Listener.Small, Handshake: false),
        new("6.9.1 an initial window of 1 lets one byte through", c => c.SendGetAsync(1), DataOf(1, 1), Settings: [new(Http2SettingId.InitialWindowSize, 1)]),
        new("6.9.2 SETTINGS_INITIAL_WINDOW_SIZE changed after HEADERS applies to the stream", async c =>
        {
            await GetStalled(c, 1);
            await c.SendSettingsAsync(new Http2Setting(Http2SettingId.InitialWindowSize, 1));
        }, DataOf(1, 1), Settings: [new(Http2SettingId.InitialWindowSize, 0)]),
        new("6.9.2 a window made negative by SETTINGS is tracked", async c =>
        {
            await c.SendGetAsync(1, "/medium");
            await c.ExpectAsync("DATA of 3", f => f.Type == Http2FrameType.Data && f.StreamId == 1 && f.Length == 3);
            await c.SendSettingsAsync(new Http2Setting(Http2SettingId.InitialWindowSize, 2)); // window 0 - 1 = -1
            await c.ExpectAsync("SETTINGS ACK", f => f.Type == Http2FrameType.Settings && f.Has(Http2FrameFlags.Ack), fail: f => f.Type == Http2FrameType.Data);
            await c.SendWindowUpdateAsync(1, 2); // -1 + 2 = 1
        }, DataOf(1, 1), Settings: [new(Http2SettingId.InitialWindowSize, 3)]),
        new("6.9.2 SETTINGS_INITIAL_WINDOW_SIZE overflowing an open stream window", async c =>
        {
            OpenPost(c, 1);
            c.WriteWindowUpdate(1, int.MaxValue - 65_535); // the stream send window is now 2^31-1
            await c.FlushAsync();
            await c.ExpectAliveAsync();
            await c.SendSettingsAsync(new Http2Setting(Http2SettingId.InitialWindowSize, 65_536));
        }, GoAway(FlowControlError)),

        // ---- §6.10 CONTINUATION ----
        new("6.10 a field block in HEADERS and two CONTINUATIONs", c =>
        {
            byte[] block = RawH2Client.Block(c.Request("GET", "/", ("x-a", "1"), ("x-b", "2")));
            c.WriteHeaders(1, block[..5], true, endHeaders: false);
            c.WriteContinuation(1, block[5..9], false);
            c.WriteContinuation(1, block[9..], true);
            return c.FlushAsync();
        }, Response(1, 200)),
        new("6.10 CONTINUATION after END_HEADERS", c => { OpenPost(c, 1); c.WriteContinuation(1, RawH2Client.Block(("x-a", "b")), true); return c.FlushAsync(); }, GoAway(ProtocolError)),
        new("6.10 CONTINUATION on stream 0 inside a block", c =>
        {
            c.WriteHeaders(1, RawH2Client.Block(c.Request("GET", "/")), true, endHeaders: false);
            c.WriteContinuation(0, RawH2Client.Block(("x-a", "b")), true);
            return c.FlushAsync();
        }, GoAway(ProtocolError)),

        // ---- §8.1, §8.2, §8.3 malformed requests: stream errors of type PROTOCOL_ERROR ----
        Malformed("8.2.1 uppercase field name", ("X-Upper", "1")),
        Malformed("8.2.1 field value with a NUL", ("x-a", "a\0b")),
        Malformed("8.2.1 field value with CR LF", ("x-a", "a\r\nx-b: c")),
        Malformed("8.2.1 field value with leading whitespace", ("x-a", " a")),
        Malformed("8.2.2 connection field", ("connection", "keep-alive")),
        Malformed("8.2.2 transfer-encoding field", ("transfer-encoding", "chunked")),
        Malformed("8.2.2 keep-alive field", ("keep-alive", "timeout=5")),
        Malformed("8.2.2 upgrade field", ("upgrade", "h2c")),
        Malformed("8.2.2 proxy-connection field", ("proxy-connection", "keep-alive")),
        Malformed("8.2.2 TE other than trailers", ("te", "gzip")),
        new("8.2.2 TE: trailers is allowed", c => c.SendHeadersAsync(1, RawH2Client.Block(c.Request("GET", "/", ("te", "trailers"))), true), Response(1, 200)),
        MalformedBlock("8.3.1 missing :method", [(":scheme", "http"), (":path", "/"), (":authority", "localhost")]),
        MalformedBlock("8.3.1 missing :scheme", [(":method", "GET"), (":path", "/"), (":authority", "localhost")]),
        MalformedBlock("8.3.1 missing :path", [(":method", "GET"), (":scheme", "http"), (":authority", "localhost")]),
        MalformedBlock("8.3.1 empty :path", [(":method", "GET"), (":scheme", "http"), (":path", ""), (":authority", "localhost")]),
        MalformedBlock("8.3.1 duplicate :path", [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":path", "/"), (":authority", "localhost")]),
        MalformedBlock("8.3.1 duplicate :method", [(":method", "GET"), (":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "localhost")]),
        Malformed("8.3 unknown pseudo-header", (":foo", "bar")),
        Malformed("8.3 :status in a request", (":status", "200")),
        // Names of a known one's length, a letter or case away from it (the name is picked by length, then compared).
        Malformed("8.3 pseudo-header like :path", (":pat_", "/")),
        Malformed("8.3 pseudo-header like :method", (":methoD", "GET")),
        Malformed("8.3 pseudo-header like :scheme", (":schema", "http")),
        Malformed("8.3 pseudo-header like :protocol", (":protocoL", "websocket")),
        Malformed("8.3 pseudo-header like :authority", (":authorit_", "localhost")),
        Malformed("8.3 pseudo-header of no known length", (":pathx", "/")),
        MalformedWhenIndexedAgain("8.2.1 uppercase field name, inserted into the dynamic table", ("X-Upper", "1")),
        MalformedWhenIndexedAgain("8.2.1 field value with a NUL, inserted into the dynamic table", ("x-a", "a\0b")),
        MalformedWhenIndexedAgain("8.2.1 field value with trailing whitespace, inserted into the dynamic table", ("x-a", "a ")),
        MalformedWhenIndexedAgain("8.2.2 connection field, inserted into the dynamic table", ("connection", "close")),
        MalformedPseudoWhenIndexedAgain("8.3.1 :authority that is no host, inserted into the dynamic table", (":authority", "bad host")),
        MalformedPseudoWhenIndexedAgain("8.3.1 :method that is no token, inserted into the dynamic table", (":method", "G T")),
        MalformedPseudoWhenIndexedAgain("8.3.1 :path with a space, inserted into the dynamic table", (":path", "/a b")),
        new("8.3.1 a valid pseudo-header from the dynamic table, then twice in one request", async c =>
        {
            (string, string)[] rest = [(":method", "GET"), (":scheme", c.IsTls ? "https" : "http"), (":path", "/")];
            await c.SendHeadersAsync(1, [.. RawH2Client.Block(rest), .. Indexed((":authority", "localhost"))], true);
            Assert.Equal(200, (await c.ReadResponseAsync(1)).Status);
            await c.SendHeadersAsync(3, [.. RawH2Client.Block(rest), 0xBE], true); // dynamic entry 1, checked once
            Assert.Equal(200, (await c.ReadResponseAsync(3)).Status);
            await c.SendHeadersAsync(5, [.. RawH2Client.Block(rest), 0xBE, 0xBE], true); // repeated: still malformed
        }, Rst(5, ProtocolError)),
        new("8.2 a valid field from the dynamic table, indexed by later requests", async c =>
        {
            await c.SendHeadersAsync(1, [.. RawH2Client.Block(c.Request("GET", "/")), .. Indexed(("x-ok", "1"))], true);
            Assert.Equal(200, (await c.ReadResponseAsync(1)).Status);
            await c.SendHeadersAsync(3, [.. RawH2Client.Block(c.Request("GET", "/")), 0xBE], true); // dynamic entry 1
            Assert.Equal(200, (await c.ReadResponseAsync(3)).Status);
            await c.SendHeadersAsync(5, [.. RawH2Client.Block(c.Request("GET", "/")), 0xBE, 0xBE], true);
        }, Response(5, 200)),
        MalformedBlock("8.3 pseudo-header after a regular field", [(":method", "GET"), (":scheme", "http"), ("x-a", "b"), (":path", "/"), (":authority", "localhost")]),
        Malformed("8.3.1 :authority and host differ", ("host", "other.test")),
        new("8.3.1 host without :authority is accepted", c => c.SendHeadersAsync(1, RawH2Client.Block((":method", "GET"), (":scheme", "http"), (":path", "/"), ("host", "localhost")), true), Response(1, 200)),
        new("8.1 pseudo-header in trailers", c =>
        {
            OpenPost(c, 1);
            c.WriteData(1, "x"u8, false);
            c.WriteHeaders(1, RawH2Client.Block((":path", "/")), true);
            return c.FlushAsync();
        }, Rst(1, ProtocolError)),
        new("8.1 trailers without END_STREAM", c =>
        {
            OpenPost(c, 1);
            c.WriteData(1, "x"u8, false);
            c.WriteHeaders(1, RawH2Client.Block(("x-trailer", "1")), false);
            return c.FlushAsync();
        }, Rst(1, ProtocolError)),
        new("8.1 trailers end the request", c =>
        {
            OpenPost(c, 1);
            c.WriteData(1, "x"u8, false);
            c.WriteHeaders(1, RawH2Client.Block(("x-trailer", "1")), true);
            return c.FlushAsync();
        }, Response(1, 200)),
        new("8.1.1 content-length larger than the DATA", c => { OpenPost(c, 1, ("content-length", "10")); c.WriteData(1, "12345"u8, true); return c.FlushAsync(); }, Rst(1, ProtocolError)),
        new("8.1.1 DATA larger than content-length", c => { OpenPost(c, 1, ("content-length", "5")); c.WriteData(1, "1234567890"u8, false); return c.FlushAsync(); }, Rst(1, ProtocolError)),
        new("8.1.1 DATA frames adding up past content-length", c =>
        {
            OpenPost(c, 1, ("content-length", "4"));
            c.WriteData(1, "12"u8, false);
            c.WriteData(1, "345"u8, true);
            return c.FlushAsync();
        }, Rst(1, ProtocolError)),
        new("8.1.1 content-length on HEADERS with END_STREAM", c => c.SendHeadersAsync(1, RawH2Client.Block(c.Request("POST", "/upload", ("content-length", "3"))), true), Rst(1, ProtocolError)),
        new("8.1.1 content-length above the body limit gets 413", c => { OpenPost(c, 1, ("content-length", "40000000")); return c.FlushAsync(); }, Response(1, 413)),
        new("10.5.1 a header list past SETTINGS_MAX_HEADER_LIST_SIZE gets 431", c =>
        {
            // 40 KB of field value in HEADERS and CONTINUATIONs: above the 32 KiB we advertise, within what we decode.
            byte[] block = RawH2Client.Block(c.Request("GET", "/", ("x-big", new string('a', 40_000))));
            c.WriteHeaders(1, block[..16_000], true, endHeaders: false);
            c.WriteContinuation(1, block[16_000..32_000], false);
            c.WriteContinuation(1, block[32_000..], true);
            return c.FlushAsync();
        }, Response(1, 431)),
        new("8.5 CONNECT is well-formed and answered 501 (no tunnelling)", c => c.SendHeadersAsync(1, RawH2Client.Block((":method", "CONNECT"), (":authority", "localhost:443")), true), Response(1, 501)),
        MalformedBlock("8.5 CONNECT with :scheme and :path", [(":method", "CONNECT"), (":scheme", "http"), (":path", "/"), (":authority", "localhost:443")]),
        MalformedBlock("8.3.1 absolute-form :path", [(":method", "GET"), (":scheme", "http"), (":path", "http://localhost/"), (":authority", "localhost")]),
        new("8.2 request over TLS gets the response", c => c.SendGetAsync(1), Response(1, 200), Listener.Tls),
    ];

    public static TheoryData<string> Cases => new(s_cases.Select(c => c.Name));

    [Fact]
    public void The_table_has_at_least_45_cases_with_unique_names()
    {
        Assert.True(s_cases.Length >= 45);
        Assert.Equal(s_cases.Length, s_cases.Select(c => c.Name).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Conformance(string name)
    {
        Case c = s_cases.Single(x => x.Name == name);
        System.Net.IPEndPoint endPoint = c.On switch
        {
            Listener.Tls => fixture.Https,
            Listener.Small => fixture.H2cSmall,
            _ => fixture.H2c,
        };
        await using RawH2Client client = await RawH2Client.ConnectAsync(endPoint, tls: c.On == Listener.Tls);
        if (c.Handshake)
        {
            await client.HandshakeAsync(c.Settings ?? []);
        }

        await c.Send(client);
        await c.Expect(client);
    }

    // ---------------- what is sent ----------------

    private static Task Raw(RawH2Client c, string text) => Raw(c, Encoding.ASCII.GetBytes(text));

    private static Task Raw(RawH2Client c, byte[] bytes)
    {
        c.WriteRaw(bytes);
        return c.FlushAsync();
    }

    /// <summary>HEADERS of a POST to /upload without END_STREAM: the stream stays open while its handler waits for the body.</summary>
    private static void OpenPost(RawH2Client c, int streamId, params (string, string)[] extra) =>
        c.WriteHeaders(streamId, RawH2Client.Block(c.Request("POST", "/upload", extra)), endStream: false);

    /// <summary>A GET whose response cannot send its body (the client's window is 0): the stream stays half-closed (remote).</summary>
    private static async Task GetStalled(RawH2Client c, int streamId)
    {
        await c.SendGetAsync(streamId);
        await c.ExpectAsync($"response HEADERS on stream {streamId}", f => f.Type == Http2FrameType.Headers && f.StreamId == streamId);
    }

    /// <summary>A complete GET exchange: the stream is closed on both sides afterwards.</summary>
    private static async Task GetAndRead(RawH2Client c, int streamId)
    {
        await c.SendGetAsync(streamId);
        Assert.Equal(200, (await c.ReadResponseAsync(streamId)).Status);
    }

    /// <summary>A GET to "/" with one extra field: RST_STREAM PROTOCOL_ERROR on stream 1 (§8.1.1).</summary>
    private static Case Malformed(string name, (string, string) field) =>
        new(name, c => c.SendHeadersAsync(1, RawH2Client.Block(c.Request("GET", "/", field)), true), Rst(1, ProtocolError));

    /// <summary>
    /// A field the server must refuse, sent as a literal with incremental indexing (RFC 7541 §6.2.1) so that it also
    /// enters the server's dynamic table; then a second request refers to it by index alone (0xBE, dynamic entry 1).
    /// Both requests are malformed: a field found bad once stays bad however it is referenced.
    /// </summary>
    private static Case MalformedWhenIndexedAgain(string name, (string, string) field) =>
        new(name, async c =>
        {
            await c.SendHeadersAsync(1, [.. RawH2Client.Block(c.Request("GET", "/")), .. Indexed(field)], true);
            await c.ExpectRstStreamAsync(1, ProtocolError);
            await c.SendHeadersAsync(3, [.. RawH2Client.Block(c.Request("GET", "/")), 0xBE], true);
        }, Rst(3, ProtocolError));

    /// <summary>
    /// As <see cref="MalformedWhenIndexedAgain"/> for a pseudo-header whose value breaks its own rule (a host, a token, a
    /// target), the other pseudo-headers valid: a value found bad once is not taken as checked when it comes back.
    /// </summary>
    private static Case MalformedPseudoWhenIndexedAgain(string name, (string Name, string Value) field) =>
        new(name, async c =>
        {
            (string, string)[] rest = c.Request("GET", "/").Where(f => f.Item1 != field.Name).ToArray();
            await c.SendHeadersAsync(1, [.. RawH2Client.Block(rest), .. Indexed(field)], true);
            await c.ExpectRstStreamAsync(1, ProtocolError);
            await c.SendHeadersAsync(3, [.. RawH2Client.Block(rest), 0xBE], true);
        }, Rst(3, ProtocolError));

    /// <summary>A literal field with incremental indexing and a literal name, no Huffman (names and values under 127 bytes).</summary>
    private static byte[] Indexed((string Name, string Value) field)
    {
        byte[] name = System.Text.Encoding.Latin1.GetBytes(field.Name);
        byte[] value = System.Text.Encoding.Latin1.GetBytes(field.Value);
        return [0x40, (byte)name.Length, .. name, (byte)value.Length, .. value];
    }

    private static Case MalformedBlock(string name, (string, string)[] fields) =>
        new(name, c => c.SendHeadersAsync(1, RawH2Client.Block(fields), true), Rst(1, ProtocolError));

    // ---------------- what is expected ----------------

    private static Func<RawH2Client, Task> GoAway(Http2ErrorCode code) => c => c.ExpectGoAwayAsync(code);

    private static Func<RawH2Client, Task> Rst(int streamId, Http2ErrorCode code) => c => c.ExpectRstStreamAsync(streamId, code);

    private static Task Alive(RawH2Client c) => c.ExpectAliveAsync();

    private static Func<RawH2Client, Task> Response(int streamId, int status) => async c =>
    {
        H2Response r = await c.ReadResponseAsync(streamId);
        Assert.Equal(status, r.Status);
        await c.ExpectAliveAsync();
    };

    private static Func<RawH2Client, Task> PingAck(ulong data) => c => c.ExpectAsync("PING ACK", f => f.Type == Http2FrameType.Ping && f.Has(Http2FrameFlags.Ack)
        && System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(f.Payload) == data, fail: f => f.Type == Http2FrameType.GoAway);

    /// <summary>The next DATA on the stream carries exactly <paramref name="length"/> bytes (flow control).</summary>
    private static Func<RawH2Client, Task> DataOf(int streamId, int length) => async c =>
    {
        H2Frame data = await c.ExpectAsync($"DATA on stream {streamId}", f => f.Type == Http2FrameType.Data && f.StreamId == streamId,
            fail: f => f.Type is Http2FrameType.GoAway or Http2FrameType.RstStream);
        Assert.Equal(length, data.Length);
    };

    /// <summary>
    /// STREAM_CLOSED for a frame after END_STREAM: a stream error while our response is still going (half-closed
    /// remote), a connection error once both sides have ended the stream (§5.1 closed); which one depends on whether
    /// the response was already complete when the frame arrived.
    /// </summary>
    private static Func<RawH2Client, Task> StreamClosedEitherScope(int streamId) => async c =>
    {
        H2Frame f = await c.ExpectAsync("STREAM_CLOSED", f => (f.Type == Http2FrameType.RstStream && f.StreamId == streamId) || f.Type == Http2FrameType.GoAway);
        Assert.Equal(StreamClosed, f.ErrorCode);
    };
}

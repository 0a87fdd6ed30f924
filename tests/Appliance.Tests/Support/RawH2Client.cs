using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Appliance.Protocol.Hpack;
using Appliance.Protocol.Http2;

namespace Appliance.Tests.Support;

/// <summary>One frame as received, with the decoded field block on the frame that ended it.</summary>
public sealed class H2Frame
{
    public H2Frame(Http2FrameHeader header, byte[] payload)
    {
        Header = header;
        Payload = payload;
    }

    public Http2FrameHeader Header { get; }

    public byte[] Payload { get; }

    public Http2FrameType Type => Header.Type;

    public int StreamId => Header.StreamId;

    public int Length => Header.Length;

    public bool Has(Http2FrameFlags flag) => Header.HasFlag(flag);

    public bool EndStream => Type is Http2FrameType.Data or Http2FrameType.Headers && Has(Http2FrameFlags.EndStream);

    /// <summary>The whole decoded field block (HEADERS, or the CONTINUATION with END_HEADERS); null otherwise.</summary>
    public List<(string Name, string Value)>? Fields { get; set; }

    /// <summary>The raw field block (all fragments), for checks on the HPACK bytes themselves.</summary>
    public byte[]? FieldBlock { get; set; }

    /// <summary>The HEADERS frame carried END_STREAM (on the frame that completes the block).</summary>
    public bool BlockEndsStream { get; set; }

    /// <summary>RST_STREAM and GOAWAY: the error code.</summary>
    public Http2ErrorCode ErrorCode => Type switch
    {
        Http2FrameType.RstStream => (Http2ErrorCode)BinaryPrimitives.ReadUInt32BigEndian(Payload),
        Http2FrameType.GoAway => (Http2ErrorCode)BinaryPrimitives.ReadUInt32BigEndian(Payload.AsSpan(4)),
        _ => throw new InvalidOperationException($"{Type} carries no error code"),
    };

    /// <summary>GOAWAY: the last stream id.</summary>
    public int LastStreamId => (int)(BinaryPrimitives.ReadUInt32BigEndian(Payload) & 0x7FFF_FFFF);

    public string DebugData => Type == Http2FrameType.GoAway ? Encoding.ASCII.GetString(Payload, 8, Payload.Length - 8) : "";

    public override string ToString() => Type switch
    {
        Http2FrameType.RstStream or Http2FrameType.GoAway => $"{Header} {ErrorCode} {DebugData}",
        _ => Header.ToString(),
    };
}

/// <summary>A decoded response: status, fields (in order), body and trailers.</summary>
public sealed record H2Response(int Status, List<(string Name, string Value)> Fields, byte[] Body, List<(string Name, string Value)>? Trailers)
{
    public string? Field(string name) => Fields.FirstOrDefault(f => f.Name == name).Value;

    public string BodyText => Encoding.UTF8.GetString(Body);
}

/// <summary>
/// A raw HTTP/2 client for conformance tests (h2spec style): TLS with ALPN h2 or cleartext prior knowledge; frames
/// are built byte by byte (with <see cref="Http2FrameWriter"/>), so anything can be sent, including what a real
/// client never would. A background loop reads frames into a queue and decodes every field block in order (the
/// server's HPACK encoder keeps a dynamic table), so the expectation helpers can wait for a given frame without
/// losing the others. Every wait is bounded.
/// </summary>
public sealed class RawH2Client : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly TcpClient _tcp;
    private readonly Stream _stream;
    private readonly ArrayBufferWriter<byte> _out = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Channel<H2Frame> _frames = Channel.CreateUnbounded<H2Frame>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<H2Frame> _backlog = [];
    private readonly List<H2Frame> _seen = [];
    private readonly HpackDecoder _decoder = new(4096, 1 << 24);
    private readonly CancellationTokenSource _stop = new();
    private Task? _readLoop;
    private MemoryStream? _block;
    private int _blockStream;
    private bool _blockEndStream;

    private RawH2Client(TcpClient tcp, Stream stream, bool tls)
    {
        _tcp = tcp;
        _stream = stream;
        IsTls = tls;
    }

    public bool IsTls { get; }

    /// <summary>The server's SETTINGS (the first non-ACK one), filled by <see cref="HandshakeAsync"/>.</summary>
    public List<Http2Setting> ServerSettings { get; } = [];

    /// <summary>The connection-level WINDOW_UPDATE the server sent with its SETTINGS (0 if none).</summary>
    public int ServerConnectionWindowIncrement { get; private set; }

    /// <summary>True once the read loop saw the end of the stream (FIN or reset).</summary>
    public bool Closed { get; private set; }

    /// <summary>Every frame received so far, for failure messages.</summary>
    public string Transcript
    {
        get
        {
            lock (_seen)
            {
                return string.Join("\n", _seen.Select(f => "  " + f));
            }
        }
    }

    public static async Task<RawH2Client> ConnectAsync(IPEndPoint endPoint, bool tls, string serverName = "localhost", string alpn = "h2")
    {
        var tcp = new TcpClient { NoDelay = true };
        using var cts = new CancellationTokenSource(DefaultTimeout);
        await tcp.ConnectAsync(endPoint, cts.Token);
        Stream stream = tcp.GetStream();
        if (tls)
        {
            var ssl = new SslStream(stream, false, (_, _, _, _) => true);
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = serverName,
                ApplicationProtocols = [new SslApplicationProtocol(alpn)],
            }, cts.Token);
            stream = ssl;
        }

        var client = new RawH2Client(tcp, stream, tls);
        client._readLoop = client.ReadLoopAsync();
        return client;
    }

    // ---------------- handshake ----------------

    /// <summary>
    /// Sends the preface and a SETTINGS frame, answers the server's SETTINGS with an ACK and waits for the ACK of ours
    /// (h2spec's handshake). Frames the server sends in between (its connection WINDOW_UPDATE) are recorded.
    /// </summary>
    public async Task HandshakeAsync(params Http2Setting[] settings)
    {
        WritePreface();
        WriteSettings(settings);
        await FlushAsync();
        bool gotSettings = false, gotAck = false;
        while (!gotSettings || !gotAck)
        {
            H2Frame f = await NextAsync("the server's SETTINGS and SETTINGS ACK");
            if (f.Type == Http2FrameType.Settings && !f.Has(Http2FrameFlags.Ack))
            {
                gotSettings = true;
                for (int i = 0; i + 6 <= f.Payload.Length; i += 6)
                {
                    ServerSettings.Add(new Http2Setting((Http2SettingId)BinaryPrimitives.ReadUInt16BigEndian(f.Payload.AsSpan(i)),
                        BinaryPrimitives.ReadUInt32BigEndian(f.Payload.AsSpan(i + 2))));
                }

                await SendSettingsAckAsync();
            }
            else if (f.Type == Http2FrameType.Settings)
            {
                gotAck = true;
            }
            else if (f.Type == Http2FrameType.WindowUpdate && f.StreamId == 0)
            {
                ServerConnectionWindowIncrement += (int)BinaryPrimitives.ReadUInt32BigEndian(f.Payload);
            }
            else
            {
                throw new Xunit.Sdk.XunitException($"unexpected frame during the handshake: {f}\n{Transcript}");
            }
        }
    }

    public uint? ServerSetting(Http2SettingId id) =>
        ServerSettings.Where(s => s.Id == id).Select(s => (uint?)s.Value).LastOrDefault();

    // ---------------- writing: Write* appends, FlushAsync sends, Send* does both ----------------

    public void WriteRaw(ReadOnlySpan<byte> bytes) => _out.Write(bytes);

    public void WritePreface() => _out.Write(Http2Preface.ClientPreface);

    public void WriteFrame(Http2FrameType type, Http2FrameFlags flags, int streamId, ReadOnlySpan<byte> payload)
    {
        Span<byte> header = _out.GetSpan(Http2FrameHeader.Size);
        new Http2FrameHeader(payload.Length, type, flags, streamId).Write(header);
        _out.Advance(Http2FrameHeader.Size);
        _out.Write(payload);
    }

    /// <summary>A frame with any type byte (extension frames, §5.5).</summary>
    public void WriteFrame(byte type, byte flags, int streamId, ReadOnlySpan<byte> payload) =>
        WriteFrame((Http2FrameType)type, (Http2FrameFlags)flags, streamId, payload);

    public void WriteSettings(params Http2Setting[] settings) => Http2FrameWriter.WriteSettings(_out, settings);

    public void WriteSettingsAck() => Http2FrameWriter.WriteSettingsAck(_out);

    public void WritePing(ulong data, bool ack = false) => Http2FrameWriter.WritePing(_out, data, ack);

    public void WriteWindowUpdate(int streamId, int increment)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)increment); // 0 allowed here: tests send it on purpose
        WriteFrame(Http2FrameType.WindowUpdate, Http2FrameFlags.None, streamId, payload);
    }

    public void WriteRstStream(int streamId, Http2ErrorCode code)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)code);
        WriteFrame(Http2FrameType.RstStream, Http2FrameFlags.None, streamId, payload);
    }

    public void WriteGoAway(int lastStreamId, Http2ErrorCode code)
    {
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)lastStreamId);
        BinaryPrimitives.WriteUInt32BigEndian(payload[4..], (uint)code);
        WriteFrame(Http2FrameType.GoAway, Http2FrameFlags.None, 0, payload);
    }

    public void WritePriority(int streamId, int dependency, byte weight = 15, bool exclusive = false)
    {
        WriteFrame(Http2FrameType.Priority, Http2FrameFlags.None, streamId, PriorityFields(dependency, weight, exclusive));
    }

    public static byte[] PriorityFields(int dependency, byte weight = 15, bool exclusive = false)
    {
        byte[] p = new byte[5];
        BinaryPrimitives.WriteUInt32BigEndian(p, (uint)dependency | (exclusive ? 0x8000_0000u : 0));
        p[4] = weight;
        return p;
    }

    public void WriteHeaders(int streamId, byte[] block, bool endStream, bool endHeaders = true)
    {
        Http2FrameFlags flags = (endStream ? Http2FrameFlags.EndStream : 0) | (endHeaders ? Http2FrameFlags.EndHeaders : 0);
        WriteFrame(Http2FrameType.Headers, flags, streamId, block);
    }

    public void WriteContinuation(int streamId, byte[] fragment, bool endHeaders)
    {
        WriteFrame(Http2FrameType.Continuation, endHeaders ? Http2FrameFlags.EndHeaders : 0, streamId, fragment);
    }

    public void WriteData(int streamId, ReadOnlySpan<byte> data, bool endStream)
    {
        WriteFrame(Http2FrameType.Data, endStream ? Http2FrameFlags.EndStream : 0, streamId, data);
    }

    public async Task FlushAsync()
    {
        if (_out.WrittenCount == 0)
        {
            return;
        }

        byte[] bytes = _out.WrittenSpan.ToArray();
        _out.ResetWrittenCount();
        await _writeLock.WaitAsync();
        try
        {
            using var cts = new CancellationTokenSource(DefaultTimeout);
            await _stream.WriteAsync(bytes, cts.Token);
            await _stream.FlushAsync(cts.Token);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Like <see cref="FlushAsync"/>, but a connection the server already closed is not a failure.</summary>
    public async Task TryFlushAsync()
    {
        try
        {
            await FlushAsync();
        }
        catch (IOException)
        {
        }
    }

    public Task SendSettingsAsync(params Http2Setting[] settings)
    {
        WriteSettings(settings);
        return FlushAsync();
    }

    public Task SendSettingsAckAsync()
    {
        WriteSettingsAck();
        return FlushAsync();
    }

    public Task SendPingAsync(ulong data, bool ack = false)
    {
        WritePing(data, ack);
        return FlushAsync();
    }

    public Task SendWindowUpdateAsync(int streamId, int increment)
    {
        WriteWindowUpdate(streamId, increment);
        return FlushAsync();
    }

    public Task SendRstStreamAsync(int streamId, Http2ErrorCode code)
    {
        WriteRstStream(streamId, code);
        return FlushAsync();
    }

    public Task SendHeadersAsync(int streamId, byte[] block, bool endStream, bool endHeaders = true)
    {
        WriteHeaders(streamId, block, endStream, endHeaders);
        return FlushAsync();
    }

    public Task SendDataAsync(int streamId, ReadOnlySpan<byte> data, bool endStream)
    {
        WriteData(streamId, data, endStream);
        return FlushAsync();
    }

    public Task SendFrameAsync(Http2FrameType type, Http2FrameFlags flags, int streamId, ReadOnlySpan<byte> payload)
    {
        WriteFrame(type, flags, streamId, payload);
        return FlushAsync();
    }

    /// <summary>Sends a GET (END_STREAM) for <paramref name="path"/> on <paramref name="streamId"/>.</summary>
    public Task SendGetAsync(int streamId, string path = "/") => SendHeadersAsync(streamId, Block(Request("GET", path)), endStream: true);

    // ---------------- HPACK, by hand ----------------

    /// <summary>The pseudo-headers of a request to this client's listener, then <paramref name="extra"/>.</summary>
    public (string, string)[] Request(string method, string path, params (string, string)[] extra) =>
        [(":method", method), (":scheme", IsTls ? "https" : "http"), (":path", path), (":authority", "localhost"), .. extra];

    /// <summary>
    /// A field block of literals without indexing and with literal names (RFC 7541 §6.2.2), no Huffman: stateless,
    /// so blocks can be sent, dropped or reordered without desynchronising the server's dynamic table, and names
    /// and values go on the wire exactly as given (uppercase included).
    /// </summary>
    public static byte[] Block(params (string Name, string Value)[] fields)
    {
        var buffer = new ArrayBufferWriter<byte>();
        foreach ((string name, string value) in fields)
        {
            buffer.Write((ReadOnlySpan<byte>)[0x00]);
            WriteString(buffer, Encoding.Latin1.GetBytes(name));
            WriteString(buffer, Encoding.Latin1.GetBytes(value));
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteString(ArrayBufferWriter<byte> buffer, byte[] s)
    {
        Span<byte> length = stackalloc byte[8];
        HpackIntegers.TryEncode(s.Length, 7, 0, length, out int n);
        buffer.Write(length[..n]);
        buffer.Write(s);
    }

    /// <summary>An HPACK integer with the given prefix bits and flag bits in the first byte.</summary>
    public static byte[] Integer(int value, int prefixBits, byte flags)
    {
        Span<byte> bytes = stackalloc byte[8];
        HpackIntegers.TryEncode(value, prefixBits, flags, bytes, out int n);
        return bytes[..n].ToArray();
    }

    // ---------------- reading ----------------

    private async Task ReadLoopAsync()
    {
        byte[] buffer = new byte[64 * 1024];
        int filled = 0;
        try
        {
            while (true)
            {
                if (filled == buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length * 2);
                }

                int n = await _stream.ReadAsync(buffer.AsMemory(filled), _stop.Token);
                if (n == 0)
                {
                    break;
                }

                filled += n;
                int consumed = ParseFrames(buffer.AsSpan(0, filled));
                Buffer.BlockCopy(buffer, consumed, buffer, 0, filled - consumed);
                filled -= consumed;
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or SocketException)
        {
            // reset by the peer, or disposed: closed either way
        }
        finally
        {
            Closed = true;
            _frames.Writer.TryComplete();
        }
    }

    private int ParseFrames(ReadOnlySpan<byte> data)
    {
        var sequence = new ReadOnlySequence<byte>(data.ToArray());
        var reader = new SequenceReader<byte>(sequence);
        while (Http2FrameReader.TryReadFrame(ref reader, Http2FrameHeader.MaxLength, out Http2FrameHeader header, out ReadOnlySequence<byte> payload, out _))
        {
            var frame = new H2Frame(header, payload.ToArray());
            DecodeFieldBlock(frame);
            lock (_seen)
            {
                _seen.Add(frame);
            }

            _frames.Writer.TryWrite(frame);
        }

        return (int)reader.Consumed;
    }

    private void DecodeFieldBlock(H2Frame frame)
    {
        ReadOnlySpan<byte> fragment;
        if (frame.Type == Http2FrameType.Headers)
        {
            if (!Http2FrameReader.TryReadHeaders(frame.Header, new ReadOnlySequence<byte>(frame.Payload), out Http2HeadersFrame h, out _))
            {
                return;
            }

            _block = new MemoryStream();
            _blockStream = frame.StreamId;
            _blockEndStream = h.EndStream;
            fragment = h.Fragment.ToArray();
        }
        else if (frame.Type == Http2FrameType.Continuation && _block is not null && frame.StreamId == _blockStream)
        {
            fragment = frame.Payload;
        }
        else
        {
            return;
        }

        _block.Write(fragment);
        if (!frame.Has(Http2FrameFlags.EndHeaders))
        {
            return;
        }

        byte[] block = _block.ToArray();
        _block = null;
        var fields = new List<(string, string)>();
        var handler = new FieldCollector(fields);
        HpackStatus status = _decoder.Decode(block, endHeaders: true, ref handler);
        if (status != HpackStatus.Ok)
        {
            fields.Add(("x-test-hpack-error", status.ToString()));
        }

        frame.Fields = fields;
        frame.FieldBlock = block;
        frame.BlockEndsStream = _blockEndStream;
    }

    private readonly struct FieldCollector(List<(string, string)> fields) : IHpackHeaderHandler
    {
        public void OnIndexedHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, long entry) => OnHeader(name, value);

        public void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) =>
            fields.Add((Encoding.Latin1.GetString(name), Encoding.Latin1.GetString(value)));
    }

    /// <summary>The next frame not yet taken by an expectation; null when the connection closed.</summary>
    public async Task<H2Frame?> TryNextAsync(TimeSpan? timeout = null)
    {
        if (_backlog.Count > 0)
        {
            H2Frame first = _backlog[0];
            _backlog.RemoveAt(0);
            return first;
        }

        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            return await _frames.Reader.ReadAsync(cts.Token);
        }
        catch (ChannelClosedException)
        {
            return null;
        }
    }

    private async Task<H2Frame> NextAsync(string waitingFor, TimeSpan? timeout = null)
    {
        H2Frame? f;
        try
        {
            f = await TryNextAsync(timeout);
        }
        catch (OperationCanceledException)
        {
            throw new Xunit.Sdk.XunitException($"timed out waiting for {waitingFor}; received:\n{Transcript}");
        }

        return f ?? throw new Xunit.Sdk.XunitException($"connection closed while waiting for {waitingFor}; received:\n{Transcript}");
    }

    /// <summary>
    /// Waits for the first frame matching <paramref name="match"/>; frames passed over stay queued for later
    /// expectations. <paramref name="fail"/> stops the wait early on a frame that rules out the expected one.
    /// </summary>
    public async Task<H2Frame> ExpectAsync(string what, Func<H2Frame, bool> match, Func<H2Frame, bool>? fail = null, TimeSpan? timeout = null)
    {
        for (int i = 0; i < _backlog.Count; i++)
        {
            H2Frame f = _backlog[i];
            if (match(f))
            {
                _backlog.RemoveAt(i);
                return f;
            }

            if (fail?.Invoke(f) == true)
            {
                throw new Xunit.Sdk.XunitException($"expected {what}, got {f}; received:\n{Transcript}");
            }
        }

        var skipped = new List<H2Frame>();
        try
        {
            using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
            while (true)
            {
                H2Frame? f;
                try
                {
                    f = await _frames.Reader.ReadAsync(cts.Token);
                }
                catch (ChannelClosedException)
                {
                    throw new Xunit.Sdk.XunitException($"connection closed while waiting for {what}; received:\n{Transcript}");
                }
                catch (OperationCanceledException)
                {
                    throw new Xunit.Sdk.XunitException($"timed out waiting for {what}; received:\n{Transcript}");
                }

                if (match(f))
                {
                    return f;
                }

                if (fail?.Invoke(f) == true)
                {
                    throw new Xunit.Sdk.XunitException($"expected {what}, got {f}; received:\n{Transcript}");
                }

                skipped.Add(f);
            }
        }
        finally
        {
            _backlog.AddRange(skipped);
        }
    }

    /// <summary>
    /// Connection error (§5.4.1): a GOAWAY with <paramref name="code"/>, then the server closes the connection. No
    /// RST_STREAM with that code may come first (that would be the wrong scope).
    /// </summary>
    public async Task<H2Frame> ExpectGoAwayAsync(Http2ErrorCode code, TimeSpan? timeout = null)
    {
        H2Frame goAway = await ExpectAsync($"GOAWAY {code}", f => f.Type == Http2FrameType.GoAway,
            fail: f => f.Type == Http2FrameType.RstStream && f.ErrorCode == code && code != Http2ErrorCode.NoError, timeout);
        Assert.True(goAway.ErrorCode == code, $"expected GOAWAY {code}, got {goAway}\n{Transcript}");
        if (code != Http2ErrorCode.NoError)
        {
            await ExpectConnectionClosedAsync(timeout);
        }

        return goAway;
    }

    /// <summary>
    /// Stream error (§5.4.2): RST_STREAM with <paramref name="code"/> on <paramref name="streamId"/>, and the connection
    /// stays usable (a PING is still answered).
    /// </summary>
    public async Task ExpectRstStreamAsync(int streamId, Http2ErrorCode code, bool checkConnectionAlive = true)
    {
        H2Frame rst = await ExpectAsync($"RST_STREAM {code} on stream {streamId}",
            f => f.Type == Http2FrameType.RstStream && f.StreamId == streamId,
            fail: f => f.Type == Http2FrameType.GoAway);
        Assert.True(rst.ErrorCode == code, $"expected RST_STREAM {code} on stream {streamId}, got {rst}\n{Transcript}");
        if (checkConnectionAlive)
        {
            await ExpectAliveAsync();
        }
    }

    /// <summary>A PING is answered with an ACK carrying the same data, and no GOAWAY comes first.</summary>
    public async Task ExpectAliveAsync()
    {
        ulong data = (ulong)Random.Shared.NextInt64();
        await SendPingAsync(data);
        await ExpectAsync("the PING ACK", f => f.Type == Http2FrameType.Ping && f.Has(Http2FrameFlags.Ack)
            && BinaryPrimitives.ReadUInt64BigEndian(f.Payload) == data, fail: f => f.Type == Http2FrameType.GoAway);
    }

    /// <summary>The server closes the connection (frames before the end are ignored) within the timeout.</summary>
    public async Task ExpectConnectionClosedAsync(TimeSpan? timeout = null)
    {
        _backlog.Clear();
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            while (await _frames.Reader.WaitToReadAsync(cts.Token))
            {
                _frames.Reader.TryRead(out _);
            }
        }
        catch (OperationCanceledException)
        {
            throw new Xunit.Sdk.XunitException($"the server did not close the connection; received:\n{Transcript}");
        }
    }

    /// <summary>
    /// Reads the response on <paramref name="streamId"/>: HEADERS, DATA (giving the windows back as it goes, unless
    /// <paramref name="windowUpdates"/> is false), optional trailers, until END_STREAM. Fails on RST_STREAM or GOAWAY.
    /// </summary>
    public async Task<H2Response> ReadResponseAsync(int streamId, bool windowUpdates = true, TimeSpan? timeout = null)
    {
        List<(string, string)>? fields = null;
        List<(string, string)>? trailers = null;
        var body = new MemoryStream();
        int status = 0;
        while (true)
        {
            H2Frame f = await ExpectAsync($"the response on stream {streamId}",
                f => f.StreamId == streamId && f.Type is Http2FrameType.Headers or Http2FrameType.Continuation or Http2FrameType.Data,
                fail: f => (f.Type == Http2FrameType.RstStream && f.StreamId == streamId) || f.Type == Http2FrameType.GoAway, timeout);
            if (f.Fields is not null)
            {
                if (fields is null)
                {
                    fields = f.Fields;
                    status = int.Parse(fields.First(x => x.Item1 == ":status").Item2);
                    if (status < 200)
                    {
                        fields = null; // interim response
                        continue;
                    }
                }
                else
                {
                    trailers = f.Fields;
                }

                if (f.BlockEndsStream)
                {
                    break;
                }
            }
            else if (f.Type == Http2FrameType.Data)
            {
                int padding = f.Has(Http2FrameFlags.Padded) ? f.Payload[0] + 1 : 0;
                body.Write(f.Payload, f.Has(Http2FrameFlags.Padded) ? 1 : 0, f.Length - padding);
                if (windowUpdates && f.Length > 0)
                {
                    WriteWindowUpdate(0, f.Length);
                    if (!f.EndStream)
                    {
                        WriteWindowUpdate(streamId, f.Length);
                    }

                    await TryFlushAsync();
                }

                if (f.EndStream)
                {
                    break;
                }
            }
        }

        return new H2Response(status, fields ?? [], body.ToArray(), trailers);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try
        {
            _tcp.Client.Close(0);
        }
        catch (ObjectDisposedException)
        {
        }

        await _stream.DisposeAsync();
        if (_readLoop is not null)
        {
            await _readLoop;
        }

        _tcp.Dispose();
        _decoder.Dispose();
        _stop.Dispose();
        _writeLock.Dispose();
    }
}

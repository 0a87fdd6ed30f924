using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Hpack;
using Appliance.Protocol.Http1;
using Appliance.Protocol.Http2;
using Appliance.Server;
using HttpVersion = Appliance.Protocol.Http1.HttpVersion;

namespace Appliance.Proxy;

/// <summary>
/// One multiplexed HTTP/2 connection to a destination, the client side of RFC 9113 on the server engine's frame
/// and HPACK code. Requests from many clients share it up to the upstream's SETTINGS_MAX_CONCURRENT_STREAMS.
/// Frames are queued into a pipe under one lock and copied to the socket by one loop, so neither the request
/// writers nor the read loop ever wait for the socket (the read loop must keep reading or both sides could stall
/// on full buffers). Flow control both ways: our receive windows are given back as the client takes the
/// response; the request body waits for the upstream's windows. A protocol error from the upstream closes the
/// connection (GOAWAY) and fails its streams; the pool then stops using it.
/// </summary>
internal sealed class Http2UpstreamConnection : IDisposable
{
    /// <summary>Our SETTINGS_INITIAL_WINDOW_SIZE: how much of one response may be in flight.</summary>
    public const int StreamReceiveWindow = 1 << 20;

    private const int ConnectionReceiveWindow = 16 << 20;
    private const int MaxQueuedBytes = 1 << 20;
    private const int MaxHeaderListSize = 256 * 1024;


    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly PipeReader _input;
    private readonly Pipe _frames = new(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));
    private readonly Lock _lock = new();
    private readonly HpackEncoder _encoder = new();
    private readonly HpackDecoder _decoder = new(HpackDecoder.DefaultMaxDynamicTableSize, MaxHeaderListSize);
    private readonly Dictionary<int, Http2UpstreamStream> _streams = [];
    private readonly List<Http2UpstreamStream> _connectionWindowWaiters = [];
    private readonly Http2Settings _peer = new();
    private readonly ArrayBufferWriter<byte> _path = new(256);
    private readonly string _scheme;
    private Http2FlowWindow _sendWindow = new(Http2Settings.DefaultInitialWindowSize);
    private int _connectionReceiveWindow = ConnectionReceiveWindow;
    private int _connectionUnacknowledged;
    private int _nextStreamId = 1;
    private int _reserved;
    private long _queued;
    private TaskCompletionSource? _drained;
    private byte[] _headerBlock = new byte[4096];
    private int _blockLength;
    private int _blockStreamId;
    private bool _blockEndStream;
    private bool _goAway;
    private Exception? _closed;

    public Http2UpstreamConnection(Socket socket, Stream stream, bool tls)
    {
        _socket = socket;
        _stream = stream;
        _scheme = tls ? "https" : "http";
        _input = new Transport.ConnectionReader(stream, bufferSize: 65536, minimumReadSize: 4096);
        PipeWriter w = _frames.Writer;
        w.Write(Http2Preface.ClientPreface);
        Http2FrameWriter.WriteSettings(w,
        [
            new(Http2SettingId.EnablePush, 0),
            new(Http2SettingId.InitialWindowSize, StreamReceiveWindow),
            new(Http2SettingId.MaxHeaderListSize, MaxHeaderListSize),
        ]);
        Http2FrameWriter.WriteWindowUpdate(w, 0, ConnectionReceiveWindow - Http2Settings.DefaultInitialWindowSize);
        _ = w.FlushAsync();
        _ = CopyLoopAsync();
        _ = ReadLoopAsync();
    }

    public long LastUsed { get; private set; } = Transport.LoopClock.Milliseconds;

    public bool IsClosed => Volatile.Read(ref _closed) is not null;

    /// <summary>Open or reserved streams.</summary>
    public int ActiveStreams
    {
        get
        {
            lock (_lock)
            {
                return _streams.Count + _reserved;
            }
        }
    }

    /// <summary>Closed, or draining after GOAWAY with nothing left on it: the pool drops it.</summary>
    public bool IsFinished
    {
        get
        {
            lock (_lock)
            {
                return _closed is not null || (_goAway && _streams.Count + _reserved == 0);
            }
        }
    }

    /// <summary>Takes a slot for one request when the upstream's concurrency limit allows it.</summary>
    public bool TryReserve()
    {
        lock (_lock)
        {
            if (_closed is not null || _goAway || _streams.Count + _reserved >= _peer.MaxConcurrentStreams || _nextStreamId > int.MaxValue - 2)
            {
                return false;
            }

            _reserved++;
            return true;
        }
    }

    public void Unreserve()
    {
        lock (_lock)
        {
            _reserved--;
            LastUsed = Transport.LoopClock.Milliseconds;
        }
    }

    // ---- requests ----

    /// <summary>
    /// Opens the stream for a reserved slot: the request HEADERS (pseudo-headers, then the forwarded fields),
    /// END_STREAM when there is no body. Throws <see cref="IOException"/> when the connection is gone.
    /// </summary>
    public void StartRequest(Http2UpstreamStream stream, RequestContext c, ProxyTransforms t, bool endStream)
    {
        lock (_lock)
        {
            _reserved--;
            if (_closed is not null)
            {
                throw new Http2StreamRefusedException("the upstream HTTP/2 connection is closed");
            }

            stream.Id = _nextStreamId;
            _nextStreamId += 2;
            stream.SendWindow = new Http2FlowWindow(_peer.InitialWindowSize);
            stream.ReceiveWindow = StreamReceiveWindow;
            stream.LocalEnded = endStream;
            _streams[stream.Id] = stream;

            _blockLength = 0;
            _encoder.BeginBlock(_headerBlock, ref _blockLength);
            EncodeLocked(":method"u8, c.MethodToken);
            EncodeLocked(":scheme"u8, _scheme == "https" ? "https"u8 : "http"u8);
            EncodeLocked(":authority"u8, c.Authority);
            _path.ResetWrittenCount();
            ReadOnlySpan<byte> target = c.RawTarget;
            if (!target.IsEmpty && target[0] == (byte)'/')
            {
                if (!t.TryRewriteTarget(target, _path))
                {
                    _path.Write(target);
                }
            }
            else
            {
                _path.Write(c.Path.IsEmpty ? "/"u8 : c.Path);
                _path.Write(c.Query);
            }

            EncodeLocked(":path"u8, _path.WrittenSpan);
            var fields = new FieldWriter(this);
            ForwardedFields.Write(c, t, ref fields, joinCookies: false);
            if (AsksForTrailers(c.RequestHeaders))
            {
                EncodeLocked("te"u8, "trailers"u8); // gRPC needs it end to end (RFC 9113 §8.2.2 allows only this TE)
            }

            if (c.Body is not EmptyRequestBody && c.Body.Length >= 0)
            {
                Span<byte> digits = stackalloc byte[20];
                System.Buffers.Text.Utf8Formatter.TryFormat(c.Body.Length, digits, out int n);
                EncodeLocked("content-length"u8, digits[..n]);
            }

            Http2FrameWriter.WriteHeaders(_frames.Writer, stream.Id, _headerBlock.AsSpan(0, _blockLength), endStream, _peer.MaxFrameSize);
            QueuedLocked(Http2FrameWriter.GetHeadersLength(_blockLength, _peer.MaxFrameSize));
        }
    }

    private static bool AsksForTrailers(HeaderCollection headers)
    {
        for (int i = 0; i < headers.Count; i++)
        {
            HeaderField f = headers[i];
            if (f.Known == KnownHeader.TE && f.Value.IndexOf("trailers"u8) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    private void EncodeLocked(ReadOnlySpan<byte> lowercaseName, ReadOnlySpan<byte> value)
    {
        while (!_encoder.Encode(lowercaseName, value, _headerBlock, ref _blockLength))
        {
            Array.Resize(ref _headerBlock, Math.Max(_headerBlock.Length * 2, _blockLength + lowercaseName.Length + value.Length + 64));
        }
    }

    /// <summary>HPACK for the forwarded fields: names lowercased (RFC 9113 §8.2.1).</summary>
    private readonly struct FieldWriter(Http2UpstreamConnection owner) : IForwardedFieldWriter
    {
        public void Field(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
            Span<byte> lower = name.Length <= 256 ? stackalloc byte[name.Length] : new byte[name.Length];
            System.Text.Ascii.ToLower(name, lower, out _);
            owner.EncodeLocked(lower, value);
        }
    }

    /// <summary>Request body bytes as DATA frames, as the upstream's stream and connection windows allow.</summary>
    public async ValueTask WriteDataAsync(Http2UpstreamStream stream, ReadOnlyMemory<byte> data, bool endStream, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                if (_closed is not null || stream.Closed)
                {
                    throw stream.Error as IOException ?? new IOException("the upstream stream is closed", stream.Error ?? _closed);
                }

                if (_queued > MaxQueuedBytes)
                {
                    _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    wait = _drained.Task;
                }
                else
                {
                    int n = Math.Min(data.Length, Math.Min(_peer.MaxFrameSize, Math.Min(stream.SendWindow.Available, _sendWindow.Available)));
                    if (n > 0 || (data.IsEmpty && endStream))
                    {
                        bool last = endStream && n == data.Length;
                        Http2FrameWriter.WriteData(_frames.Writer, stream.Id, data.Span[..n], last);
                        stream.SendWindow.TryConsume(n);
                        _sendWindow.TryConsume(n);
                        stream.LocalEnded |= last;
                        QueuedLocked(Http2FrameHeader.Size + n);
                        data = data[n..];
                        if (data.IsEmpty)
                        {
                            return;
                        }

                        continue;
                    }

                    wait = stream.PrepareWindowWait();
                    if (_sendWindow.Available <= 0 && !_connectionWindowWaiters.Contains(stream))
                    {
                        _connectionWindowWaiters.Add(stream);
                    }
                }
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The handler took <paramref name="bytes"/> of the response: give the windows back in large steps.</summary>
    public void OnConsumed(Http2UpstreamStream stream, int bytes)
    {
        lock (_lock)
        {
            stream.Unconsumed -= bytes;
            if (_closed is not null)
            {
                return;
            }

            stream.Unacknowledged += bytes;
            if (!stream.RemoteEnded && !stream.Closed && stream.Unacknowledged >= StreamReceiveWindow / 2)
            {
                Http2FrameWriter.WriteWindowUpdate(_frames.Writer, stream.Id, stream.Unacknowledged);
                QueuedLocked(Http2FrameHeader.Size + 4);
                stream.ReceiveWindow += stream.Unacknowledged;
                stream.Unacknowledged = 0;
            }

            CreditConnectionLocked(bytes);
        }
    }

    private void CreditConnectionLocked(int bytes)
    {
        _connectionUnacknowledged += bytes;
        if (_connectionUnacknowledged >= ConnectionReceiveWindow / 2)
        {
            Http2FrameWriter.WriteWindowUpdate(_frames.Writer, 0, _connectionUnacknowledged);
            QueuedLocked(Http2FrameHeader.Size + 4);
            _connectionReceiveWindow += _connectionUnacknowledged;
            _connectionUnacknowledged = 0;
        }
    }

    /// <summary>
    /// The handler is done with the stream: an unfinished one is reset (CANCEL), and response bytes it never took
    /// go back to the connection window.
    /// </summary>
    public void Release(Http2UpstreamStream stream)
    {
        lock (_lock)
        {
            LastUsed = Transport.LoopClock.Milliseconds;
            if (stream.Closed)
            {
                return;
            }

            stream.Closed = true;
            _streams.Remove(stream.Id);
            _connectionWindowWaiters.Remove(stream);
            if (_closed is not null)
            {
                return;
            }

            if (!stream.RemoteEnded || !stream.LocalEnded)
            {
                Http2FrameWriter.WriteRstStream(_frames.Writer, stream.Id, Http2ErrorCode.Cancel);
                QueuedLocked(Http2FrameHeader.Size + 4);
            }

            if (stream.Unconsumed > 0)
            {
                CreditConnectionLocked((int)stream.Unconsumed);
                stream.Unconsumed = 0;
            }
        }

        stream.Body.Writer.Complete();
        stream.Body.Reader.Complete();
    }

    /// <summary>Gives up on a stream (RST_STREAM CANCEL); whatever waits on it fails with <paramref name="reason"/>.</summary>
    public void Cancel(Http2UpstreamStream stream, string reason)
    {
        lock (_lock)
        {
            if (!stream.Closed && _closed is null)
            {
                ResetLocked(stream, Http2ErrorCode.Cancel, reason);
            }
        }
    }

    private void QueuedLocked(int bytes)
    {
        _queued += bytes;
        _ = _frames.Writer.FlushAsync(); // never waits (pauseWriterThreshold 0): wakes the copy loop
    }

    // ---- socket ----

    private async Task CopyLoopAsync()
    {
        PipeReader frames = _frames.Reader;
        try
        {
            while (true)
            {
                ReadResult r = await frames.ReadAsync().ConfigureAwait(false);
                foreach (ReadOnlyMemory<byte> segment in r.Buffer)
                {
                    await _stream.WriteAsync(segment).ConfigureAwait(false);
                }

                long n = r.Buffer.Length;
                frames.AdvanceTo(r.Buffer.End);
                TaskCompletionSource? drained = null;
                lock (_lock)
                {
                    _queued -= n;
                    if (_queued <= MaxQueuedBytes / 2)
                    {
                        drained = _drained;
                        _drained = null;
                    }
                }

                drained?.TrySetResult();
                if (r.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            Close(new IOException("writing to the upstream failed: " + e.Message, e));
        }
        finally
        {
            frames.Complete();
        }
    }

    private async Task ReadLoopAsync()
    {
        Exception? failure = null;
        try
        {
            while (true)
            {
                ReadResult r = await _input.ReadAsync().ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = r.Buffer;
                var reader = new SequenceReader<byte>(buffer);
                Http2FrameError error = default;
                lock (_lock)
                {
                    while (Http2FrameReader.TryReadFrame(ref reader, Http2Settings.DefaultMaxFrameSize, out Http2FrameHeader header, out ReadOnlySequence<byte> payload, out error))
                    {
                        error = OnFrameLocked(header, payload);
                        if (error.IsStreamError)
                        {
                            if (_streams.TryGetValue(header.StreamId, out Http2UpstreamStream? failed))
                            {
                                ResetLocked(failed, error.ErrorCode, error.Reason);
                            }

                            error = default;
                        }
                        else if (error.IsError)
                        {
                            break;
                        }
                    }
                }

                _input.AdvanceTo(reader.Position, buffer.End);
                if (error.IsError && !error.IsStreamError)
                {
                    lock (_lock)
                    {
                        Http2FrameWriter.WriteGoAway(_frames.Writer, 0, error.ErrorCode, System.Text.Encoding.ASCII.GetBytes(error.Reason));
                        QueuedLocked(64);
                    }

                    failure = new IOException($"HTTP/2 protocol error from the upstream: {error.ErrorCode} {error.Reason}");
                    break;
                }

                if (r.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            failure = e;
        }
        catch (Exception e)
        {
            // A bug here must not leave the streams hanging: they fail, and the message says what happened.
            failure = new IOException($"HTTP/2 upstream read loop failed: {e.GetType().Name}: {e.Message}", e);
        }

        Close(failure as IOException ?? new IOException("the upstream closed the HTTP/2 connection", failure));
    }

    private Http2FrameError OnFrameLocked(in Http2FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (_blockStreamId != 0 && header.Type != Http2FrameType.Continuation)
        {
            return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "header block interrupted"); // §6.10
        }

        switch (header.Type)
        {
            case Http2FrameType.Data:
                return OnDataLocked(header, payload);
            case Http2FrameType.Headers:
            {
                if (!Http2FrameReader.TryReadHeaders(header, payload, out Http2HeadersFrame frame, out Http2FrameError error))
                {
                    return error;
                }

                if (frame.StreamId >= _nextStreamId || (frame.StreamId & 1) == 0)
                {
                    return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "HEADERS on a stream we did not open");
                }

                _blockStreamId = frame.StreamId;
                _blockEndStream = frame.EndStream;
                return DecodeBlockLocked(frame.Fragment, frame.EndHeaders);
            }

            case Http2FrameType.Continuation:
            {
                if (_blockStreamId == 0 || header.StreamId != _blockStreamId)
                {
                    return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "CONTINUATION without its HEADERS");
                }

                if (!Http2FrameReader.TryReadContinuation(header, payload, out ReadOnlySequence<byte> fragment, out Http2FrameError error))
                {
                    return error;
                }

                return DecodeBlockLocked(fragment, header.HasFlag(Http2FrameFlags.EndHeaders));
            }

            case Http2FrameType.RstStream:
            {
                if (!Http2FrameReader.TryReadRstStream(header, payload, out Http2ErrorCode code, out Http2FrameError error))
                {
                    return error;
                }

                if (_streams.Remove(header.StreamId, out Http2UpstreamStream? s))
                {
                    s.Closed = true;
                    CreditConnectionLocked((int)s.Unconsumed);
                    s.Fail(code == Http2ErrorCode.RefusedStream
                        ? new Http2StreamRefusedException("the upstream refused the stream")
                        : new IOException($"the upstream reset the stream ({code})"));
                }

                return default;
            }

            case Http2FrameType.Settings:
            {
                if (!Http2FrameReader.TryReadSettings(header, payload, out Http2SettingsFrame frame, out Http2FrameError error))
                {
                    return error;
                }

                if (frame.IsAck)
                {
                    return default;
                }

                int oldWindow = _peer.InitialWindowSize;
                foreach (Http2Setting setting in frame)
                {
                    error = _peer.Apply(setting.Id, setting.Value);
                    if (error.IsError)
                    {
                        return error;
                    }

                    if (setting.Id == Http2SettingId.HeaderTableSize)
                    {
                        _encoder.SetPeerMaxTableSize((int)Math.Min(setting.Value, int.MaxValue));
                    }
                }

                int delta = _peer.InitialWindowSize - oldWindow;
                if (delta != 0)
                {
                    foreach (Http2UpstreamStream s in _streams.Values)
                    {
                        if (!s.SendWindow.TryAdjust(delta))
                        {
                            return Http2FrameError.Connection(Http2ErrorCode.FlowControlError, "stream window above 2^31-1"); // §6.9.2
                        }

                        s.SignalWindow();
                    }
                }

                Http2FrameWriter.WriteSettingsAck(_frames.Writer);
                QueuedLocked(Http2FrameHeader.Size);
                return default;
            }

            case Http2FrameType.Ping:
            {
                if (!Http2FrameReader.TryReadPing(header, payload, out ulong opaque, out Http2FrameError error))
                {
                    return error;
                }

                if (!header.HasFlag(Http2FrameFlags.Ack))
                {
                    Http2FrameWriter.WritePingAck(_frames.Writer, opaque);
                    QueuedLocked(Http2FrameHeader.Size + 8);
                }

                return default;
            }

            case Http2FrameType.GoAway:
            {
                if (!Http2FrameReader.TryReadGoAway(header, payload, out Http2GoAwayFrame frame, out Http2FrameError error))
                {
                    return error;
                }

                // §6.8: streams above the last id were not processed and may be retried elsewhere.
                _goAway = true;
                foreach (Http2UpstreamStream s in _streams.Values.Where(s => s.Id > frame.LastStreamId).ToList())
                {
                    _streams.Remove(s.Id);
                    s.Closed = true;
                    s.Fail(new Http2StreamRefusedException("the upstream is going away (GOAWAY)"));
                }

                return default;
            }

            case Http2FrameType.WindowUpdate:
            {
                if (!Http2FrameReader.TryReadWindowUpdate(header, payload, out int increment, out Http2FrameError error))
                {
                    return error;
                }

                if (header.StreamId == 0)
                {
                    if (!_sendWindow.TryIncrease(increment))
                    {
                        return Http2FrameError.Connection(Http2ErrorCode.FlowControlError, "connection window above 2^31-1");
                    }

                    foreach (Http2UpstreamStream s in _connectionWindowWaiters)
                    {
                        s.SignalWindow();
                    }

                    _connectionWindowWaiters.Clear();
                }
                else if (_streams.TryGetValue(header.StreamId, out Http2UpstreamStream? s))
                {
                    if (!s.SendWindow.TryIncrease(increment))
                    {
                        ResetLocked(s, Http2ErrorCode.FlowControlError, "stream window above 2^31-1");
                    }
                    else
                    {
                        s.SignalWindow();
                    }
                }

                return default;
            }

            case Http2FrameType.PushPromise:
                return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "PUSH_PROMISE although we disabled push"); // §8.4
            default:
                return default; // PRIORITY and unknown frame types are ignored (§5.5)
        }
    }

    private Http2FrameError OnDataLocked(in Http2FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!Http2FrameReader.TryReadData(header, payload, out Http2DataFrame frame, out Http2FrameError error))
        {
            return error;
        }

        _connectionReceiveWindow -= frame.FlowControlledLength;
        if (_connectionReceiveWindow < 0)
        {
            return Http2FrameError.Connection(Http2ErrorCode.FlowControlError, "DATA beyond the connection window"); // §6.9
        }

        if (!_streams.TryGetValue(frame.StreamId, out Http2UpstreamStream? s))
        {
            if (frame.StreamId >= _nextStreamId)
            {
                return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "DATA on a stream we did not open");
            }

            CreditConnectionLocked(frame.FlowControlledLength); // a stream we gave up on: the bytes are dropped
            return default;
        }

        s.ReceiveWindow -= frame.FlowControlledLength;
        if (!s.HeadDone || s.RemoteEnded || s.ReceiveWindow < 0)
        {
            CreditConnectionLocked(frame.FlowControlledLength);
            ResetLocked(s, s.ReceiveWindow < 0 ? Http2ErrorCode.FlowControlError : Http2ErrorCode.ProtocolError,
                s.ReceiveWindow < 0 ? "DATA beyond the stream window" : "DATA before the response head or after END_STREAM");
            return default;
        }

        int padding = frame.FlowControlledLength - (int)frame.Data.Length;
        if (padding > 0)
        {
            CreditConnectionLocked(padding); // padding is never consumed by anyone
            s.Unacknowledged += padding;
        }

        s.ReceivedLength += frame.Data.Length;
        s.Unconsumed += frame.Data.Length;
        foreach (ReadOnlyMemory<byte> segment in frame.Data)
        {
            s.Body.Writer.Write(segment.Span);
        }

        _ = s.Body.Writer.FlushAsync();
        if (frame.EndStream)
        {
            EndRemoteLocked(s);
        }

        return default;
    }

    private Http2FrameError DecodeBlockLocked(in ReadOnlySequence<byte> fragment, bool endHeaders)
    {
        _streams.TryGetValue(_blockStreamId, out Http2UpstreamStream? s);
        var handler = new ResponseFieldHandler(s);
        HpackStatus status = HpackStatus.Ok;
        if (fragment.IsEmpty)
        {
            status = _decoder.Decode(ReadOnlySpan<byte>.Empty, endHeaders, ref handler);
        }
        else
        {
            SequencePosition position = fragment.Start;
            long remaining = fragment.Length;
            while (remaining > 0 && fragment.TryGet(ref position, out ReadOnlyMemory<byte> segment))
            {
                if (segment.IsEmpty)
                {
                    continue;
                }

                remaining -= segment.Length;
                HpackStatus st = _decoder.Decode(segment.Span, endHeaders && remaining == 0, ref handler);
                if (st != HpackStatus.Ok)
                {
                    status = st;
                }

                if (st == HpackStatus.CompressionError)
                {
                    break;
                }
            }
        }

        if (status == HpackStatus.CompressionError)
        {
            return Http2FrameError.Connection(Http2ErrorCode.CompressionError, "HPACK decoding failed");
        }

        if (!endHeaders)
        {
            return default;
        }

        bool endStream = _blockEndStream;
        _blockStreamId = 0;
        if (s is null || s.Closed)
        {
            return default; // a stream we reset: the block only kept HPACK in sync
        }

        string? malformed = status == HpackStatus.HeaderListTooLarge ? "response header list too large" : handler.Malformed;
        if (!s.HeadDone)
        {
            if (malformed is null && s.Status == 0)
            {
                malformed = "response without :status";
            }

            if (malformed is not null)
            {
                ResetLocked(s, Http2ErrorCode.ProtocolError, "malformed response: " + malformed);
                return default;
            }

            if (s.Status is >= 100 and < 200)
            {
                // Interim response (§8.1): dropped here; the final one follows on the same stream.
                s.Status = 0;
                s.Headers.Clear();
                if (endStream)
                {
                    ResetLocked(s, Http2ErrorCode.ProtocolError, "malformed response: END_STREAM on an interim response");
                }

                return default;
            }

            if (s.Headers.TryGetValue(KnownHeader.ContentLength, out ReadOnlySpan<byte> cl))
            {
                if (s.Headers.CountOf(KnownHeader.ContentLength) > 1 || !Http1RequestFraming.TryParseContentLength(cl, out long length))
                {
                    ResetLocked(s, Http2ErrorCode.ProtocolError, "malformed response: invalid content-length");
                    return default;
                }

                s.ExpectedLength = length;
            }

            s.HeadDone = true;
            s.CompleteHead();
        }
        else
        {
            if (malformed is null && !endStream)
            {
                malformed = "trailers without END_STREAM"; // §8.1
            }

            if (malformed is not null)
            {
                ResetLocked(s, Http2ErrorCode.ProtocolError, "malformed response: " + malformed);
                return default;
            }
        }

        if (endStream)
        {
            EndRemoteLocked(s);
        }

        return default;
    }

    private void EndRemoteLocked(Http2UpstreamStream s)
    {
        s.RemoteEnded = true;
        if (s.ExpectedLength >= 0 && s.ExpectedLength != s.ReceivedLength)
        {
            // §8.1.1: a body that does not match its content-length is malformed; never pass it on as complete.
            ResetLocked(s, Http2ErrorCode.ProtocolError, "malformed response: body length differs from content-length");
            return;
        }

        s.Body.Writer.Complete();
    }

    private void ResetLocked(Http2UpstreamStream s, Http2ErrorCode code, string reason)
    {
        Http2FrameWriter.WriteRstStream(_frames.Writer, s.Id, code);
        QueuedLocked(Http2FrameHeader.Size + 4);
        _streams.Remove(s.Id);
        s.Closed = true;
        CreditConnectionLocked((int)s.Unconsumed);
        s.Fail(new IOException(reason));
    }

    /// <summary>Fails every stream and closes the socket; the first reason wins.</summary>
    private void Close(IOException reason)
    {
        List<Http2UpstreamStream> streams;
        lock (_lock)
        {
            if (_closed is not null)
            {
                return;
            }

            _closed = reason;
            streams = [.. _streams.Values];
            _streams.Clear();
            _frames.Writer.Complete();
        }

        foreach (Http2UpstreamStream s in streams)
        {
            s.Closed = true;
            // Streams the upstream never answered may be retried (nothing came back for them).
            s.Fail(s.HeadDone ? reason : new Http2StreamRefusedException(reason.Message));
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        _stream.Dispose();
        _input.Complete();
    }

    public void Dispose() => Close(new IOException("the upstream HTTP/2 connection was closed by the pool"));

    /// <summary>Response fields into the stream's headers (or trailers once the head is done), with §8.2–8.3 checks.</summary>
    private struct ResponseFieldHandler(Http2UpstreamStream? stream) : IHpackHeaderHandler
    {
        private bool _regularSeen;

        public string? Malformed { get; private set; }

        public void OnIndexedHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, long entry) => OnHeader(name, value);

        public void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
            if (stream is null || Malformed is not null)
            {
                return;
            }

            if (name.IsEmpty || HttpCharacters.IndexOfInvalidFieldValueChar(value) >= 0)
            {
                Malformed = "invalid field";
                return;
            }

            if (name[0] == (byte)':')
            {
                if (stream.HeadDone || _regularSeen || !name.SequenceEqual(":status"u8) || stream.Status != 0
                    || value.Length != 3 || !int.TryParse(value, out int status) || status < 100)
                {
                    Malformed = "invalid pseudo-header";
                    return;
                }

                stream.Status = status;
                return;
            }

            _regularSeen = true;
            if (HttpCharacters.IndexOfInvalidTokenChar(name) >= 0 || name.IndexOfAnyInRange((byte)'A', (byte)'Z') >= 0)
            {
                Malformed = "invalid field name";
                return;
            }

            KnownHeader known = KnownHeaders.Lookup(name);
            if (known is KnownHeader.Connection or KnownHeader.KeepAlive or KnownHeader.ProxyConnection or KnownHeader.TransferEncoding
                or KnownHeader.Upgrade)
            {
                Malformed = "connection-specific field"; // §8.2.2
                return;
            }

            (stream.HeadDone ? stream.Trailers : stream.Headers).Add(known, name, value);
        }
    }
}

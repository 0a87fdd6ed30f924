using System.Buffers;
using System.Threading.Tasks.Sources;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Hpack;
using Appliance.Protocol.Http2;

namespace Appliance.Server;

/// <summary>
/// The single writer of an HTTP/2 connection (Kestrel's Http2FrameWriter idea): every frame goes through one
/// lock into an in-memory queue (<see cref="OutputQueue"/>), and one copy loop moves what has accumulated to the TLS
/// stream, so many small responses leave in few writes. HPACK encoding happens under the same lock, so the peer's decoder sees
/// header blocks in the order the encoder produced them. Connection and stream send windows are enforced
/// here (RFC 9113 §6.9).
/// <para>
/// A flush normally runs the copy loop inline, on the flushing thread. A flush from a stream's handler while other
/// handlers of the connection are still running (a proxy relaying many upstream answers one at a time, outside the
/// read loop's batch) hands the copy loop to the thread pool instead: the answers that come in meanwhile join the
/// same TLS record and send, as HAProxy's and h2o's event loops flush a connection once per round of events.
/// </para>
/// </summary>
internal sealed class Http2Output : IValueTaskSource, IThreadPoolWorkItem
{
    private readonly Lock _lock = new();
    private readonly OutputQueue _writer = new();
    // The copy loop waits here for bytes (set under _lock when it finds the queue empty; a flush that sees it wakes
    // the loop, inline or, when deferred, from the event loop's round or the thread pool through Execute).
    private ManualResetValueTaskSourceCore<bool> _wake;
    private bool _copyWaiting;
    private readonly Stream _transport;
    private readonly HpackEncoder _encoder = new();
    private readonly int _maxQueuedBytes;
    private readonly List<Http2Stream> _windowWaiters = [];
    private byte[] _headerBlock = new byte[4096];
    private Http2FlowWindow _connectionWindow = new(Http2Settings.DefaultInitialWindowSize);
    private int _peerMaxFrameSize = Http2Settings.DefaultMaxFrameSize;
    private long _queued;
    // Control frames answering the peer (SETTINGS/PING ACK, RST_STREAM, WINDOW_UPDATE) still waiting to be sent, as
    // (end offset in the output, length): a client that does not read them is cut off at MaxQueuedOutputBytes of
    // them, while response DATA, which waits for the client instead (backpressure), does not count against that cap.
    private readonly Queue<(long End, int Length)> _pendingControl = new();
    private long _pendingControlBytes;
    private long _written;
    private long _sent;
    private int _batchDepth;
    private bool _dirty;
    private bool _completed;
    private volatile bool _writeFailed;

    /// <summary>A write to the transport failed: the client is gone, unless we closed the transport ourselves.</summary>
    internal bool WriteFailed => _writeFailed;
    private TaskCompletionSource? _drained;
    private Task? _copyLoop;
    // Send-timeout bookkeeping (Environment.TickCount64, 0 = not waiting), read by the heartbeat: since when streams
    // wait for the peer to open the connection window, and since when the copy loop waits for a socket write.
    private long _connectionBlockedSince;
    private long _transportWriteSince;
    private long _dataFrames;
    // Handlers that did not finish synchronously (HandlerRunning/HandlerFinished): while others run, a flush defers
    // the copy loop (WakeCopyLoopLocked).
    private int _runningHandlers;

    public Http2Output(Stream transport, int maxQueuedBytes)
    {
        _transport = transport;
        _maxQueuedBytes = maxQueuedBytes;
    }

    /// <summary>A stream's handler goes on asynchronously (its answer comes later, from outside the read loop).</summary>
    public void HandlerRunning() => Interlocked.Increment(ref _runningHandlers);

    public void HandlerFinished() => Interlocked.Decrement(ref _runningHandlers);

    /// <summary>Set when the client stopped reading and control frames piled up past the limit.</summary>
    public bool Overflowed { get; private set; }

    public void Start() => _copyLoop = CopyLoopAsync();

    public Task Completion => _copyLoop ?? Task.CompletedTask;

    // ---- batching: the read loop processes all frames of one read, then flushes once ----

    public void BeginBatch()
    {
        lock (_lock)
        {
            _batchDepth++;
        }
    }

    public void EndBatch()
    {
        lock (_lock)
        {
            _batchDepth--;
            FlushIfNeededLocked();
        }
    }

    private void FlushIfNeededLocked()
    {
        if (_batchDepth == 0 && _dirty && !_completed)
        {
            _dirty = false;
            WakeCopyLoopLocked();
        }
    }

    /// <summary>
    /// Wakes a copy loop that waits for bytes: on this thread (it runs under _lock, which is reentrant, until its write
    /// waits or the queue is empty), or, while other handlers of the connection are still running and will answer
    /// soon, at the end of the socket event loop's round or on the thread pool, so their frames join the same write
    /// (see the class remarks). A copy loop that is writing takes the new bytes when its write is done.
    /// </summary>
    private void WakeCopyLoopLocked()
    {
        if (!_copyWaiting)
        {
            return;
        }

        _copyWaiting = false;
        if (!_completed && Volatile.Read(ref _runningHandlers) > 1)
        {
            if (!Transport.EventLoop.TryDefer(this))
            {
                System.Threading.ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            }
        }
        else
        {
            _wake.SetResult(true);
        }
    }

    void IThreadPoolWorkItem.Execute() => _wake.SetResult(true);

    private void Written(int bytes)
    {
        _queued += bytes;
        _written += bytes;
        _dirty = true;
    }

    private void ControlWritten(int bytes)
    {
        Written(bytes);
        _pendingControl.Enqueue((_written, bytes));
        _pendingControlBytes += bytes;
    }

    // ---- control frames ----

    public void WriteSettings(ReadOnlySpan<Http2Setting> settings, int connectionWindowIncrement)
    {
        lock (_lock)
        {
            if (_completed) return;
            Http2FrameWriter.WriteSettings(_writer, settings);
            Written(Http2FrameWriter.GetSettingsLength(settings.Length));
            if (connectionWindowIncrement > 0)
            {
                Http2FrameWriter.WriteWindowUpdate(_writer, 0, connectionWindowIncrement);
                Written(Http2FrameWriter.WindowUpdateLength);
            }

            FlushIfNeededLocked();
        }
    }

    /// <summary>
    /// Control frames answer the peer; if it does not read them, stop (queued-control-frame cap). Only control
    /// frames count: response data legitimately fills the queue up to the cap while the client reads at its pace
    /// (a PING ACK behind 1 MB of downloads is not a flood).
    /// </summary>
    private bool ControlFrameAllowedLocked()
    {
        if (_completed)
        {
            return false;
        }

        if (_pendingControlBytes > _maxQueuedBytes)
        {
            Overflowed = true;
            return false;
        }

        return true;
    }

    public bool WriteSettingsAck()
    {
        lock (_lock)
        {
            if (!ControlFrameAllowedLocked()) return false;
            Http2FrameWriter.WriteSettingsAck(_writer);
            ControlWritten(Http2FrameWriter.SettingsAckLength);
            FlushIfNeededLocked();
            return true;
        }
    }

    /// <summary>Our own PING (not an ACK): a round trip to the client, used by the graceful GOAWAY.</summary>
    public void WritePing(ulong opaqueData)
    {
        lock (_lock)
        {
            if (_completed) return;
            Http2FrameWriter.WritePing(_writer, opaqueData, ack: false);
            Written(Http2FrameWriter.PingLength);
            FlushIfNeededLocked();
        }
    }

    public bool WritePingAck(ulong opaqueData)
    {
        lock (_lock)
        {
            if (!ControlFrameAllowedLocked()) return false;
            Http2FrameWriter.WritePingAck(_writer, opaqueData);
            ControlWritten(Http2FrameWriter.PingLength);
            FlushIfNeededLocked();
            return true;
        }
    }

    /// <summary>RST_STREAM and WINDOW_UPDATE answer the peer's frames too (refused streams, padded DATA): capped.</summary>
    public void WriteRstStream(int streamId, Http2ErrorCode code)
    {
        lock (_lock)
        {
            if (!ControlFrameAllowedLocked()) return;
            Http2FrameWriter.WriteRstStream(_writer, streamId, code);
            ControlWritten(Http2FrameWriter.RstStreamLength);
            FlushIfNeededLocked();
        }
    }

    public void WriteWindowUpdate(int streamId, int increment)
    {
        lock (_lock)
        {
            if (!ControlFrameAllowedLocked()) return;
            Http2FrameWriter.WriteWindowUpdate(_writer, streamId, increment);
            ControlWritten(Http2FrameWriter.WindowUpdateLength);
            FlushIfNeededLocked();
        }
    }

    public void WriteGoAway(int lastStreamId, Http2ErrorCode code, string? debug = null)
    {
        lock (_lock)
        {
            if (_completed) return;
            byte[] debugBytes = debug is null ? [] : System.Text.Encoding.ASCII.GetBytes(debug);
            Http2FrameWriter.WriteGoAway(_writer, lastStreamId, code, debugBytes);
            Written(Http2FrameWriter.GetGoAwayLength(debugBytes.Length));
            FlushIfNeededLocked();
        }
    }

    // ---- peer settings ----

    public void SetPeerMaxFrameSize(int size)
    {
        lock (_lock)
        {
            _peerMaxFrameSize = size;
        }
    }

    public void SetPeerHeaderTableSize(uint size)
    {
        lock (_lock)
        {
            _encoder.SetPeerMaxTableSize((int)Math.Min(size, int.MaxValue));
        }
    }

    /// <summary>WINDOW_UPDATE on stream 0.</summary>
    public bool IncreaseConnectionWindow(int increment)
    {
        List<Http2Stream>? wake = null;
        lock (_lock)
        {
            if (!_connectionWindow.TryIncrease(increment))
            {
                return false;
            }

            if (_connectionWindow.Available > 0)
            {
                _connectionBlockedSince = 0; // progress: the waiters write again (or wait anew, from now)
            }

            if (_windowWaiters.Count > 0)
            {
                wake = [.. _windowWaiters];
                _windowWaiters.Clear();
            }
        }

        if (wake is not null)
        {
            foreach (Http2Stream s in wake)
            {
                s.SignalWindow();
            }
        }

        return true;
    }

    /// <summary>
    /// Since when (Environment.TickCount64) a response has been waiting for the peer to open the connection window;
    /// 0 when nothing waits for it.
    /// </summary>
    public long ConnectionWindowBlockedSince
    {
        get
        {
            lock (_lock)
            {
                return _windowWaiters.Count > 0 ? _connectionBlockedSince : 0;
            }
        }
    }

    /// <summary>DATA frames with a payload written so far: each lets the client answer with WINDOW_UPDATEs.</summary>
    public long DataFramesSent => Volatile.Read(ref _dataFrames);

    /// <summary>Since when the current socket write has been pending (the peer does not read); 0 when none is.</summary>
    public long TransportWriteSince => Volatile.Read(ref _transportWriteSince);

    /// <summary>Stream window changes (WINDOW_UPDATE, SETTINGS_INITIAL_WINDOW_SIZE) go through the lock too.</summary>
    public bool AdjustStreamWindow(Http2Stream stream, int delta, bool isIncrement)
    {
        lock (_lock)
        {
            if (!(isIncrement ? stream.SendWindow.TryIncrease(delta) : stream.SendWindow.TryAdjust(delta)))
            {
                return false;
            }

            if (stream.SendWindow.Available > 0)
            {
                // The peer opened the window: that is progress, even if the writer has not run yet to use it.
                stream.SendBlockedSince = 0;
            }

            return true;
        }
    }

    // ---- responses ----

    /// <summary>Encodes and writes the response HEADERS (and CONTINUATIONs) of a stream.</summary>
    /// <remarks><paramref name="flush"/> false: DATA follows at once, and its flush carries the HEADERS too.</remarks>
    public void WriteResponseHeaders(Http2Stream stream, RequestContext context, bool endStream, bool flush = true)
    {
        lock (_lock)
        {
            if (_completed || stream.ResetSent) return;
            if (endStream)
            {
                stream.MarkEndStreamSent(); // here, with the frame that carries it: never for a write that did not happen
            }

            int length = EncodeResponseHeadersLocked(context);
            Http2FrameWriter.WriteHeaders(_writer, stream.StreamId, _headerBlock.AsSpan(0, length), endStream, _peerMaxFrameSize);
            Written(Http2FrameWriter.GetHeadersLength(length, _peerMaxFrameSize));
            if (flush)
            {
                FlushIfNeededLocked();
            }
        }
    }

    /// <summary>
    /// A whole response in one go, when its body is non-empty and fits both send windows, one frame and the queue: the
    /// HEADERS, then one DATA with END_STREAM, under one lock (WriteResponseHeaders then WriteDataAsync took two, and
    /// an async frame). False, having written nothing, when any of that does not hold: the caller writes it in steps.
    /// </summary>
    public bool TryWriteWholeResponse(Http2Stream stream, RequestContext context, ReadOnlySpan<byte> body)
    {
        lock (_lock)
        {
            int n = body.Length;
            if (_completed || stream.ResetSent || n == 0 || _queued > _maxQueuedBytes
                || n > _peerMaxFrameSize || n > stream.SendWindow.Available || n > _connectionWindow.Available)
            {
                return false;
            }

            stream.MarkEndStreamSent(); // with the frames that carry it, as every write here
            int length = EncodeResponseHeadersLocked(context);
            Http2FrameWriter.WriteHeaders(_writer, stream.StreamId, _headerBlock.AsSpan(0, length), endStream: false, _peerMaxFrameSize);
            Written(Http2FrameWriter.GetHeadersLength(length, _peerMaxFrameSize));
            WriteDataFrameLocked(stream, body, last: true);
            FlushIfNeededLocked();
            return true;
        }
    }

    /// <summary>Encodes and writes trailers (HEADERS with END_STREAM, no pseudo-headers).</summary>
    [System.Runtime.CompilerServices.SkipLocalsInit] // the stack buffer is written before it is read
    public void WriteTrailers(Http2Stream stream, HeaderCollection trailers)
    {
        lock (_lock)
        {
            if (_completed || stream.ResetSent) return;
            stream.MarkEndStreamSent();
            int written = 0;
            _encoder.BeginBlock(_headerBlock, ref written);
            Span<byte> lower = stackalloc byte[256];
            for (int i = 0; i < trailers.Count; i++)
            {
                HeaderField f = trailers[i];
                EncodeFieldLocked(Lowercase(f.Name, lower), f.Value, ref written);
            }

            Http2FrameWriter.WriteHeaders(_writer, stream.StreamId, _headerBlock.AsSpan(0, written), true, _peerMaxFrameSize);
            Written(Http2FrameWriter.GetHeadersLength(written, _peerMaxFrameSize));
            FlushIfNeededLocked();
        }
    }

    private static ReadOnlySpan<byte> Lowercase(ReadOnlySpan<byte> name, Span<byte> buffer)
    {
        if (name.Length > buffer.Length)
        {
            buffer = new byte[name.Length];
        }

        System.Text.Ascii.ToLower(name, buffer, out int n);
        return buffer[..n];
    }

    [System.Runtime.CompilerServices.SkipLocalsInit] // the stack buffers are written before they are read
    private int EncodeResponseHeadersLocked(RequestContext c)
    {
        int written = 0;
        _encoder.BeginBlock(_headerBlock, ref written); // pending table size update (RFC 7541 §4.2); the buffer always has room
        while (!_encoder.EncodeStatus(c.StatusCode, _headerBlock.AsSpan(), ref written))
        {
            Grow();
        }

        Span<byte> lower = stackalloc byte[256];
        HeaderCollection headers = c.ResponseHeaders;
        for (int i = 0; i < headers.Count; i++)
        {
            HeaderField f = headers[i];
            if (f.Known is KnownHeader.ContentLength or KnownHeader.TransferEncoding or KnownHeader.Connection
                or KnownHeader.KeepAlive or KnownHeader.ProxyConnection or KnownHeader.Upgrade)
            {
                continue; // RFC 9113 §8.2.2: connection-specific fields must not appear
            }

            ReadOnlySpan<byte> name = f.Known != KnownHeader.None ? KnownHeaders.LowercaseName(f.Known) : Lowercase(f.Name, lower);
            if (c.StrictTransportSecurity is not null && name.SequenceEqual("strict-transport-security"u8))
            {
                continue; // the route's policy wins over the handler's (or upstream's) copy
            }

            EncodeFieldLocked(name, f.Value, ref written);
        }

        if (c.StrictTransportSecurity is { } hsts)
        {
            EncodeFieldLocked("strict-transport-security"u8, hsts, ref written);
        }

        if (c.ResponseContentLength >= 0 && c.StatusCode is not (204 or 304) && c.StatusCode >= 200)
        {
            while (!HpackEncoder.EncodeContentLength(c.ResponseContentLength, _headerBlock, ref written))
            {
                Grow();
            }
        }

        while (!HpackEncoder.WriteEncoded(DateHeader.Hpack, _headerBlock, ref written))
        {
            Grow();
        }
        ReadOnlySpan<byte> server = ServerHeader.Line;
        if (!server.IsEmpty)
        {
            EncodeFieldLocked("server"u8, server[8..^2], ref written);
        }

        return written;
    }

    private void EncodeFieldLocked(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, ref int written)
    {
        int before = written;
        while (!_encoder.Encode(name, value, _headerBlock.AsSpan(), ref written))
        {
            written = before;
            Grow();
        }
    }

    private void Grow() => Array.Resize(ref _headerBlock, _headerBlock.Length * 2);

    /// <summary>
    /// Writes DATA frames for <paramref name="data"/>, as much as the windows allow at a time, waiting for
    /// WINDOW_UPDATE when they are exhausted and for the copy loop when too much is queued.
    /// </summary>
    public async ValueTask WriteDataAsync(Http2Stream stream, ReadOnlyMemory<byte> data, bool endStream, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task? wait = null;
            lock (_lock)
            {
                if (_completed || stream.ResetSent)
                {
                    StopWaitingLocked(stream);
                    throw new IOException("the HTTP/2 stream was reset or the connection closed");
                }

                if (data.IsEmpty)
                {
                    stream.SendBlockedSince = 0;
                    if (endStream)
                    {
                        stream.MarkEndStreamSent();
                        Http2FrameWriter.WriteData(_writer, stream.StreamId, ReadOnlySpan<byte>.Empty, true);
                        Written(Http2FrameHeader.Size);
                        FlushIfNeededLocked();
                    }

                    return;
                }

                if (_queued > _maxQueuedBytes)
                {
                    // Too much is waiting for the socket: hand what we wrote to the copy loop, then wait for it. The
                    // waiter is taken before the flush: the copy loop may run inline and drain during the flush, and
                    // its signal must not be lost.
                    _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    wait = _drained.Task;
                    FlushIfNeededLocked();
                }
                else
                {
                    int n = Math.Min(data.Length, Math.Min(_peerMaxFrameSize, Math.Min(stream.SendWindow.Available, _connectionWindow.Available)));
                    if (n > 0)
                    {
                        bool last = n == data.Length && endStream;
                        if (last)
                        {
                            stream.MarkEndStreamSent(); // not before: a last write that waits for the window has not sent it
                        }

                        WriteDataFrameLocked(stream, data.Span[..n], last);
                        data = data[n..];
                        if (data.IsEmpty)
                        {
                            FlushIfNeededLocked();
                            return;
                        }

                        continue;
                    }

                    // A window is exhausted: flush what we have and wait for the peer's WINDOW_UPDATE. The wait is
                    // timed from its start (StreamSendTimeout, checked by the connection's heartbeat).
                    FlushIfNeededLocked();
                    if (_completed)
                    {
                        // The flush ran the copy loop, whose write failed: Complete() has woken the waiters already.
                        StopWaitingLocked(stream);
                        throw new IOException("the HTTP/2 stream was reset or the connection closed");
                    }

                    wait = stream.PrepareWindowWait();
                    long now = Environment.TickCount64;
                    if (_connectionWindow.Available <= 0)
                    {
                        if (_windowWaiters.Count == 0 && _connectionBlockedSince == 0)
                        {
                            _connectionBlockedSince = now;
                        }

                        if (!_windowWaiters.Contains(stream))
                        {
                            _windowWaiters.Add(stream);
                        }
                    }

                    if (stream.SendWindow.Available <= 0 && stream.SendBlockedSince == 0)
                    {
                        stream.SendBlockedSince = now;
                    }
                }
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>One DATA frame within both windows (the caller checked them), which it takes from them.</summary>
    private void WriteDataFrameLocked(Http2Stream stream, ReadOnlySpan<byte> data, bool last)
    {
        stream.SendBlockedSince = 0; // the client took data: the send timeout starts over
        Http2FrameWriter.WriteData(_writer, stream.StreamId, data, last);
        Written(Http2FrameHeader.Size + data.Length);
        stream.SendWindow.TryConsume(data.Length);
        _connectionWindow.TryConsume(data.Length);
        Volatile.Write(ref _dataFrames, _dataFrames + 1);
    }

    /// <summary>A stream that stops writing (reset, connection closed) no longer waits for the connection window.</summary>
    private void StopWaitingLocked(Http2Stream stream)
    {
        stream.SendBlockedSince = 0;
        if (_windowWaiters.Remove(stream) && _windowWaiters.Count == 0)
        {
            _connectionBlockedSince = 0;
        }
    }

    public void FlushNow()
    {
        lock (_lock)
        {
            FlushIfNeededLocked();
        }
    }

    /// <summary>Stops writing: pending frames are still sent, then the copy loop ends.</summary>
    public void Complete()
    {
        List<Http2Stream> wake;
        lock (_lock)
        {
            if (_completed) return;
            FlushIfNeededLocked();
            _completed = true;
            WakeCopyLoopLocked(); // it sends what is queued, then finds the output completed and ends
            wake = [.. _windowWaiters];
            _windowWaiters.Clear();
            _drained?.TrySetResult();
        }

        foreach (Http2Stream s in wake)
        {
            s.SignalWindow();
        }
    }

    private async Task CopyLoopAsync()
    {
        var batch = new ArraySegment<byte>[4];
        int count = 0;
        try
        {
            while (true)
            {
                lock (_lock)
                {
                    // Only flushed bytes leave: frames written but not flushed yet (a read loop's batch, HEADERS whose
                    // DATA follows) wait for the flush that ends them, so they go out together.
                    count = _dirty && !_completed ? 0 : _writer.TakeAll(ref batch);
                    if (count == 0)
                    {
                        if (_completed)
                        {
                            break;
                        }

                        _wake.Reset();
                        _copyWaiting = true;
                    }
                }

                if (count == 0)
                {
                    await new ValueTask(this, _wake.Version).ConfigureAwait(false);
                    continue;
                }

                // Each socket write is timed (StreamSendTimeout; like nginx send_timeout, the limit applies between two
                // successive writes, so a slow but reading client is not cut off).
                long sent = 0;
                for (int i = 0; i < count; i++)
                {
                    ArraySegment<byte> segment = batch[i];
                    Volatile.Write(ref _transportWriteSince, Transport.LoopClock.Milliseconds);
                    await _transport.WriteAsync(segment.AsMemory()).ConfigureAwait(false);
                    sent += segment.Count;
                    ArrayPool<byte>.Shared.Return(segment.Array!);
                    batch[i] = default;
                }

                count = 0;
                Volatile.Write(ref _transportWriteSince, 0);
                TaskCompletionSource? drained = null;
                lock (_lock)
                {
                    _queued -= sent;
                    _sent += sent;
                    while (_pendingControl.Count > 0 && _pendingControl.Peek().End <= _sent)
                    {
                        _pendingControlBytes -= _pendingControl.Dequeue().Length;
                    }

                    if (_queued <= _maxQueuedBytes / 2 && _drained is not null)
                    {
                        drained = _drained;
                        _drained = null;
                    }
                }

                drained?.TrySetResult();
            }
        }
        catch (Exception)
        {
            // The peer is gone (or the stream failed in another way): the read loop notices on its side.
            _writeFailed = true;
        }
        finally
        {
            Volatile.Write(ref _transportWriteSince, 0);
            for (int i = 0; i < batch.Length; i++)
            {
                if (batch[i].Array is { } unsent)
                {
                    ArrayPool<byte>.Shared.Return(unsent);
                    batch[i] = default;
                }
            }

            Complete();
            lock (_lock)
            {
                _writer.Release(); // completed: nothing writes any more
            }
        }
    }

    void IValueTaskSource.GetResult(short token) => _wake.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _wake.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _wake.OnCompleted(continuation, state, token, flags);
}

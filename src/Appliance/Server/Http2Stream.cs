using System.Buffers;
using System.IO.Pipelines;
using Appliance.Protocol.Http1;
using Appliance.Protocol.Http2;

namespace Appliance.Server;

/// <summary>
/// One HTTP/2 request/response exchange (RFC 9113 §5.1): its state, flow-control windows, request body
/// pipe, and the response sink that turns the gateway's writes into HEADERS and DATA frames. Pooled per
/// connection; the request context inside is reused.
/// </summary>
internal sealed class Http2Stream : ResponseSink
{
    private readonly Http2Connection _connection;
    private readonly Http2Output _output;
    private readonly Pipe _body = new(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false, minimumSegmentSize: 4096));
    private TaskCompletionSource? _windowWait;

    // Whether the body pipe was written, completed or read since its last reset. Most requests (a GET's HEADERS
    // carry END_STREAM) never touch it, and then recycling the stream skips the pipe's three locked resets.
    private bool _bodyPipeUsed;

    /// <summary>Our send window for this stream; changed under the output lock.</summary>
    public Http2FlowWindow SendWindow;

    public Http2Stream(Http2Connection connection, Http2Output output, ConnectionInfo info)
    {
        _connection = connection;
        _output = output;
        RunCompleted = () => _connection.OnRunCompleted(this);
        Context = new RequestContext(info) { Sink = this };
        Body = new Http2RequestBody(this, _body.Reader);
    }

    /// <summary>The handler's run while it goes on asynchronously; read once, by <see cref="RunCompleted"/>.</summary>
    public ValueTask PendingRun;

    /// <summary>Made once per stream object: registered on <see cref="PendingRun"/> without allocating per request.</summary>
    public Action RunCompleted { get; }

    public int StreamId { get; private set; }

    public RequestContext Context { get; }

    public Http2RequestBody Body { get; }

    public Http2StreamState State;

    /// <summary>Bytes of request body the peer may still send before we grant more (our receive window).</summary>
    public int ReceiveWindow;

    public long DeclaredContentLength { get; set; } = -1;

    public long ReceivedBodyBytes { get; set; }

    public bool EndStreamReceived { get; set; }

    public bool EndStreamSent { get; private set; }

    public bool ResetSent { get; set; }

    /// <summary>The client left before the answer was whole (its RST_STREAM, or its end of the connection): the access log's 499.</summary>
    public bool ClientLeft { get; set; }

    public bool HandlerDone { get; set; }

    public bool HandlerStarted { get; set; }

    /// <summary>Returned to the pool; guards against a double release.</summary>
    public bool Released { get; set; }

    /// <summary>Request body bytes read by the application since the last WINDOW_UPDATE we sent.</summary>
    public int UnacknowledgedConsumed;

    /// <summary>
    /// Since when (Environment.TickCount64) the response has been waiting for the client to open this stream's send
    /// window; 0 when it is not. Written under the output lock, read by the heartbeat.
    /// </summary>
    public long SendBlockedSince;

    /// <summary>Milliseconds the handler has spent waiting for request body data the client was free to send.</summary>
    public long BodyWaitMillis;

    /// <summary>The request body was abandoned for arriving too slowly; DATA still arriving for it is discarded.</summary>
    public bool BodyTimedOut;

    /// <summary>An accepted extended CONNECT (RFC 8441): DATA both ways is a tunnel's bytes, so no body rate applies.</summary>
    public bool Tunnel;

    /// <summary>The access log has this exchange's line.</summary>
    public bool Recorded;

    public bool IsHead => Context.Method == HttpMethod.Head;

    public void Initialize(int streamId, int initialSendWindow, int receiveWindow)
    {
        StreamId = streamId;
        State = Http2StreamState.Open;
        SendWindow = new Http2FlowWindow(initialSendWindow);
        ReceiveWindow = receiveWindow;
        DeclaredContentLength = -1;
        ReceivedBodyBytes = 0;
        UnacknowledgedConsumed = 0;
        SendBlockedSince = 0;
        BodyWaitMillis = 0;
        BodyTimedOut = false;
        Tunnel = false;
        Recorded = false;
        AppendedBytes = 0;
        _consumedBytes = 0;
        EndStreamReceived = EndStreamSent = ResetSent = ClientLeft = HandlerDone = HandlerStarted = Released = false;
        _windowWait = null;
        Context.Reset();
        Context.Version = HttpVersion.Http2;
        Context.StartTimestamp = Transport.LoopClock.Timestamp; // when the round that brought its HEADERS began
        Body.Reset();
    }

    /// <summary>Prepares a stream object for reuse after it closed.</summary>
    public void Recycle()
    {
        if (_bodyPipeUsed)
        {
            _bodyPipeUsed = false;
            _body.Reader.Complete();
            _body.Writer.Complete();
            _body.Reset();
        }
    }

    /// <summary>The request ended with its HEADERS (END_STREAM): the body reads as complete without the pipe.</summary>
    public void EndBodyWithHeaders() => Body.MarkComplete();

    /// <summary>The handler reads the body pipe (a request or tunnel with DATA to come).</summary>
    internal void OnBodyPipeRead() => _bodyPipeUsed = true;

    // ---- request body, fed by the read loop ----

    public void AppendBody(in System.Buffers.ReadOnlySequence<byte> data)
    {
        AppendedBytes += data.Length;
        _bodyPipeUsed = true;
        foreach (ReadOnlyMemory<byte> segment in data)
        {
            _body.Writer.Write(segment.Span);
        }

        _ = _body.Writer.FlushAsync(); // never waits: pauseWriterThreshold is 0, flow control bounds the size
    }

    public void CompleteBody(Exception? error = null)
    {
        _bodyPipeUsed = true;
        _body.Writer.Complete(error);
    }

    internal void OnBodyConsumed(int bytes)
    {
        Interlocked.Add(ref _consumedBytes, bytes);
        _connection.OnBodyConsumed(this, bytes);
    }

    private long _consumedBytes;

    /// <summary>Request body bytes copied into the pipe.</summary>
    public long AppendedBytes { get; private set; }

    /// <summary>Bytes buffered that the application never read; they still hold the connection window.</summary>
    public long UnreadBytes => AppendedBytes - Interlocked.Read(ref _consumedBytes);

    // ---- flow control waits ----

    public Task PrepareWindowWait()
    {
        _windowWait ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return _windowWait.Task;
    }

    public void SignalWindow()
    {
        TaskCompletionSource? wait = Interlocked.Exchange(ref _windowWait, null);
        wait?.TrySetResult();
    }

    // ---- ResponseSink ----

    private bool BodyAllowed => Context.StatusCode is >= 200 and not 204 and not 304 && !IsHead;

    public override ValueTask WriteAsync(RequestContext context, ReadOnlyMemory<byte> data, bool flush, CancellationToken cancellationToken)
    {
        if (ResetSent)
        {
            // Reset (by the client or by us) or its connection gone: nothing more goes out. Said here, before the
            // answer is counted as sent (END_STREAM marked), so that a client that left is logged 499.
            return ValueTask.FromException(new IOException("the HTTP/2 stream was reset or the connection closed"));
        }

        bool last = false;
        if (!context.ResponseStarted)
        {
            context.ResponseStarted = true;
            if (!BodyAllowed && !IsHead)
            {
                data = default;
            }

            // The whole declared body in one write: HEADERS + DATA(END_STREAM), two frames, no empty DATA after.
            last = context.ResponseContentLength >= 0 && context.ResponseContentLength == data.Length && BodyAllowed;
            if (last && _output.TryWriteWholeResponse(this, context, data.Span)) // (it marks END_STREAM sent)
            {
                context.ResponseBytesWritten += data.Length;
                return default;
            }

            bool headersOnly = !BodyAllowed && context.ResponseContentLength >= 0 && context.ResponseContentLength == data.Length;
            // DATA written by this same call flushes the HEADERS with it: one TLS record and send, not two.
            bool dataFollows = !headersOnly && BodyAllowed && (!data.IsEmpty || last);
            _output.WriteResponseHeaders(this, context, endStream: headersOnly, flush: !dataFollows); // (END_STREAM marked there)
            if (headersOnly)
            {
                return default;
            }
        }
        else if (context.ResponseContentLength >= 0 && context.ResponseBytesWritten + data.Length == context.ResponseContentLength)
        {
            last = true;
        }

        if (!BodyAllowed || (data.IsEmpty && !last))
        {
            return flush ? FlushAsync(context, cancellationToken) : default;
        }

        if (context.ResponseContentLength >= 0 && context.ResponseBytesWritten + data.Length > context.ResponseContentLength)
        {
            throw new InvalidOperationException("response body longer than its content-length");
        }

        context.ResponseBytesWritten += data.Length;
        return _output.WriteDataAsync(this, data, last, cancellationToken); // marks END_STREAM sent with its frame
    }

    public override ValueTask FlushAsync(RequestContext context, CancellationToken cancellationToken)
    {
        if (!context.ResponseStarted)
        {
            context.ResponseStarted = true;
            _output.WriteResponseHeaders(this, context, endStream: false);
        }

        _output.FlushNow();
        return default;
    }

    public override ValueTask CompleteAsync(RequestContext context)
    {
        if (EndStreamSent || ResetSent)
        {
            return default;
        }

        bool trailers = context.ResponseTrailers.Count > 0 && BodyAllowed;
        if (!context.ResponseStarted)
        {
            context.ResponseStarted = true;
            if (context.ResponseContentLength < 0 && BodyAllowed && !trailers)
            {
                context.ResponseContentLength = 0;
            }

            if (!trailers)
            {
                _output.WriteResponseHeaders(this, context, endStream: true);
                return default;
            }

            _output.WriteResponseHeaders(this, context, endStream: false);
        }

        if (context.ResponseContentLength >= 0 && context.ResponseBytesWritten < context.ResponseContentLength && BodyAllowed)
        {
            // The declared length was not delivered: the peer must not take a short body as complete (§8.1.1).
            _connection.ResetStream(this, Http2ErrorCode.InternalError, "response shorter than its content-length");
            return default;
        }

        if (trailers)
        {
            _output.WriteTrailers(this, context.ResponseTrailers); // HEADERS with END_STREAM (RFC 9113 §8.1)
            return default;
        }

        return _output.WriteDataAsync(this, default, endStream: true, CancellationToken.None);
    }

    public override ValueTask SendContinueAsync(RequestContext context) => default; // HTTP/2 flow control replaces 100-continue

    public override ValueTask<RequestBody> AcceptUpgradeAsync(RequestContext context)
    {
        if (context.Method != HttpMethod.Connect || context.UpgradeProtocol.IsEmpty || context.ResponseStarted)
        {
            throw new InvalidOperationException("no extended CONNECT, or the response has started");
        }

        // RFC 8441 §5: a 2xx opens the tunnel; RFC 9110 §9.3.6: no content-length on it. DATA frames carry the
        // tunnel's bytes from here on, under the usual flow control.
        Tunnel = true;
        context.StatusCode = 200;
        context.ResponseContentLength = -1;
        context.ResponseHeaders.Remove(Appliance.Protocol.Headers.KnownHeader.ContentLength);
        context.ResponseStarted = true;
        _output.WriteResponseHeaders(this, context, endStream: false);
        _output.FlushNow();
        return new ValueTask<RequestBody>(Body);
    }

    /// <summary>Http2Output, under its lock, as it queues the frame that carries END_STREAM.</summary>
    internal void MarkEndStreamSent()
    {
        EndStreamSent = true;
        State = State == Http2StreamState.HalfClosedRemote ? Http2StreamState.Closed : Http2StreamState.HalfClosedLocal;
    }
}

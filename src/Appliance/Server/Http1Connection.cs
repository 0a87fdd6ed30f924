using System.Buffers;
using System.Buffers.Text;
using System.IO.Pipelines;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using Appliance.Transport;
using Microsoft.Extensions.Logging;

namespace Appliance.Server;

/// <summary>
/// The HTTP/1.1 connection loop (RFC 9112): parse a request head, hand the request to the dispatcher, write the
/// response, repeat while keep-alive holds. It is also the response sink of its requests. One instance per
/// connection; the request context, parser and buffers are reused across requests.
/// </summary>
public sealed class Http1Connection : ResponseSink
{
    private const int FlushThreshold = 64 * 1024;

    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly TrackedConnection _owner;
    private readonly ListenerRuntime _listener;
    private readonly ILogger _logger;
    private readonly ConnectionInfo _info;
    private RequestContext _context; // from RequestContextPool; given back while the connection waits idle (null then)
    private Http1RequestBody? _body; // made at the first request with a body: most connections never have one
    private Http1RequestParser _parser;
    private Http1HeaderState _headerState;

    private volatile bool _timedOut;
    private volatile bool _draining;
    private volatile Phase _phase;
    private bool _needsFlush;
    private ValueTask<ReadResult>? _readAhead; // see StartReadAhead; under _readAheadLock while a handler runs
    // The loop and a handler asking for RequestAborted may both start the read ahead. The connection's own info object
    // is the monitor (nothing else locks it): a lock object of its own would cost every idle connection.
    private object _readAheadLock => _info;
    private bool _watchingAbort; // this request's read ahead tells its context when the client goes (WatchForAbort)
    private bool _chunkedResponse;
    private bool _responseHasBody;
    private bool _responseCompleted;
    private bool _expectContinue;
    private bool _keepAlive10;
    private bool _tunnel;
    private long _unflushed;
    private int _requests;

    private enum Phase
    {
        Idle,
        Head,
        Body,
        Handler,
    }

    public Http1Connection(PipeReader input, PipeWriter output, TrackedConnection owner, ListenerRuntime listener, ConnectionInfo info, ILogger logger)
    {
        _input = input;
        _output = output;
        _owner = owner;
        _listener = listener;
        _logger = logger;
        _info = info;
        _context = RequestContextPool.Rent(info, this);
        _parser = ParserFor(listener.Current.Limits.Http1);
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Http1ParserLimits, Http1RequestParser> s_parsers = new();

    /// <summary>The parser for these limits, one per limits object: it keeps no state but them, so connections share it.</summary>
    private static Http1RequestParser ParserFor(Http1ParserLimits limits) =>
        s_parsers.GetValue(limits, static l => new Http1RequestParser(l));

    internal ServerLimits Limits { get; private set; } = null!;

    internal bool ExpectContinuePending => _expectContinue;

    internal RequestContext Context => _context;

    /// <summary>Whether the connection holds a request context (not while it waits idle for a request).</summary>
    internal bool HoldsRequestState => _context is not null;

    /// <summary>
    /// The connection ends with request bytes the client may still be sending: after a rejection, or a response
    /// that left the request's body unread. Closing it at once would reset it (unread input) and could cost the
    /// client the answer; HttpConnection closes it lingering instead (RFC 9112 §9.6).
    /// </summary>
    internal bool ClosesWithInputLeft { get; private set; }

    public async Task ProcessAsync()
    {
        try
        {
            while (true)
            {
                ListenerRuntime.State state = _listener.Current;
                Limits = state.Limits;
                if (!ReferenceEquals(_parser.Limits, state.Limits.Http1))
                {
                    _parser = ParserFor(state.Limits.Http1);
                }

                _context.Reset(); // held here: from the constructor, the last request, or the rent after an idle wait
                _headerState.Reset();
                _phase = Phase.Idle;
                _chunkedResponse = _responseCompleted = _expectContinue = _keepAlive10 = _tunnel = _watchingAbort = false;
                _owner.SetDeadline(Limits.KeepAliveTimeout);
                if (_draining && _requests > 0)
                {
                    break; // idle keep-alive: close now (RFC 9112 §9.3.1: the client retries on a new connection)
                }

                // ---- request head ----
                RequestRejection rejection = RequestRejection.None;
                bool lineDone = false;
                var handler = new ParsingHandler(_context);
                while (true)
                {
                    // A read started while the handler ran (StartReadAhead) is taken instead of starting one.
                    ReadResult result = default;
                    ValueTask<ReadResult>? ahead = _readAhead;
                    _readAhead = null;
                    if (!(ahead?.IsCompleted ?? _input.TryRead(out result)))
                    {
                        // Waiting for the next request: the request state (reset above, untouched since) goes back to
                        // the pool meanwhile, before the last response is sent, so a client that has it finds the
                        // connection holding none.
                        if (_phase == Phase.Idle)
                        {
                            ReleaseContext();
                        }

                        // Nothing pipelined behind the last response: now is the time to send it.
                        if (_needsFlush)
                        {
                            _needsFlush = false;
                            _unflushed = 0;
                            FlushResult fr = await _output.FlushAsync().ConfigureAwait(false);
                            if (fr.IsCanceled || fr.IsCompleted)
                            {
                                _readAhead = ahead; // cancelled and awaited on the way out
                                return;
                            }
                        }

                        result = await (ahead ?? _input.ReadAsync()).ConfigureAwait(false);
                        if (_context is null)
                        {
                            _context = RequestContextPool.Rent(_info, this);
                            handler = new ParsingHandler(_context);
                        }
                    }
                    else if (ahead is { } done)
                    {
                        result = done.Result; // already completed
                    }

                    ReadOnlySequence<byte> buffer = result.Buffer;
                    if (result.IsCanceled)
                    {
                        if (_timedOut && _phase == Phase.Head)
                        {
                            _input.AdvanceTo(buffer.Start);
                            await RejectAsync(408, "request headers timeout").ConfigureAwait(false);
                        }

                        return;
                    }

                    if (_phase == Phase.Idle && !buffer.IsEmpty)
                    {
                        _context.StartTimestamp = Transport.LoopClock.Timestamp;
                        _phase = Phase.Head;
                        _owner.SetDeadline(Limits.RequestHeadersTimeout);
                    }

                    var reader = new SequenceReader<byte>(buffer);
                    bool headersDone = false;
                    if (!lineDone)
                    {
                        lineDone = _parser.TryParseRequestLine(ref handler, ref reader, out rejection);
                    }

                    if (lineDone && rejection == RequestRejection.None)
                    {
                        headersDone = _parser.TryParseHeaders(ref handler, ref reader, ref _headerState, out rejection);
                    }

                    if (rejection != RequestRejection.None)
                    {
                        _input.AdvanceTo(reader.Position, buffer.End);
                        await RejectAsync(rejection.StatusCode(), rejection.Reason()).ConfigureAwait(false);
                        return;
                    }

                    if (headersDone)
                    {
                        _input.AdvanceTo(reader.Position);
                        break;
                    }

                    if (result.IsCompleted)
                    {
                        _input.AdvanceTo(buffer.End);
                        if (_phase == Phase.Head)
                        {
                            // The peer closed in the middle of a request head: nobody is left to read a 400.
                            LogRejected(400, "connection closed during request head");
                        }

                        return;
                    }

                    _input.AdvanceTo(reader.Position, buffer.End);
                }

                // ---- request semantics ----
                _requests++;
                rejection = PrepareRequest(state);
                if (rejection != RequestRejection.None)
                {
                    await RejectAsync(rejection.StatusCode(), rejection.Reason()).ConfigureAwait(false);
                    return;
                }

                // ---- handler ----
                _phase = Phase.Handler;
                _owner.ClearDeadline();
                try
                {
                    ValueTask dispatch = state.Dispatcher.DispatchAsync(_context);
                    if (!dispatch.IsCompletedSuccessfully)
                    {
                        StartReadAhead();
                        await dispatch.ConfigureAwait(false);
                    }

                    if (!_responseCompleted)
                    {
                        await CompleteAsync(_context).ConfigureAwait(false);
                    }
                }
                catch (BadRequestException e)
                {
                    if (_context.ResponseStarted)
                    {
                        LogRejected(e.StatusCode, e.Message);
                        RecordAccess();
                        return;
                    }

                    await RejectAsync(e.StatusCode, e.Message).ConfigureAwait(false);
                    return;
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
                {
                    // The connection went away under the handler: nginx's 499 unless the response was complete.
                    if (!_responseCompleted)
                    {
                        _context.StatusCode = 499;
                    }

                    RecordAccess();
                    return;
                }
                catch (Exception e)
                {
                    _logger.LogError(e, "connection {Id}: handler failed for {Path}", _context.Connection.Id, _context.PathString);
                    if (_context.ResponseStarted)
                    {
                        RecordAccess();
                        return; // the response is broken mid-way; only closing tells the client
                    }

                    await RejectAsync(500, "handler failed").ConfigureAwait(false);
                    return;
                }

                // ---- after the response: consume what is left of the request body ----
                if (!BodyComplete && !_context.CloseConnection)
                {
                    if (_expectContinue || !await TryDrainBodyAsync().ConfigureAwait(false))
                    {
                        _context.CloseConnection = true;
                    }
                }

                RecordAccess(); // before the flush: the line is queued by the time the client has its response
                _needsFlush = true;
                if (_context.CloseConnection)
                {
                    ClosesWithInputLeft = !BodyComplete;
                    await _output.FlushAsync().ConfigureAwait(false);
                    return;
                }
            }

            if (_needsFlush)
            {
                await _output.FlushAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            try
            {
                await AbandonReadAheadAsync().ConfigureAwait(false);
                _context?.Reset();
                ReleaseContext(); // the handler is done with it: every path here awaited it
            }
            finally
            {
                try
                {
                    await _output.CompleteAsync().ConfigureAwait(false); // what is left unflushed goes, and the buffers back
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
                {
                }
            }
        }
    }

    /// <summary>Whether the request's body has been read to its end (a request without one has).</summary>
    private bool BodyComplete => _body?.IsComplete ?? true;

    /// <summary>Gives the context back to the pool; it must be reset (it is, from the top of the loop until a request arrives).</summary>
    private void ReleaseContext()
    {
        if (_context is { } context)
        {
            _context = null!;
            RequestContextPool.Return(context);
        }
    }

    /// <summary>
    /// A handler that goes asynchronous (a proxied request) on a request without a body: the read for the next request
    /// starts now rather than after the response. Nothing else reads the connection meanwhile (no body, no upgrade).
    /// The runtime keeps one pooled state object per thread for a TLS read; started here, the read takes the one the
    /// last read just gave back, instead of starting after dozens of other connections took and returned theirs, which
    /// made every proxied request allocate them anew.
    /// Never throws: a read that fails at once (the peer reset the connection) is kept as a failed read, taken after
    /// the handler finished, so the handler is always awaited before its context goes back to the pool.
    /// </summary>
    private void StartReadAhead()
    {
        lock (_readAheadLock)
        {
            StartReadAheadLocked();
        }
    }

    private void StartReadAheadLocked()
    {
        if (_readAhead is null && BodyComplete && !_expectContinue && _context.UpgradeProtocol.IsEmpty
            && _context.Method != HttpMethod.Connect && !_draining)
        {
            try
            {
                _readAhead = _input.ReadAsync();
            }
            catch (Exception e)
            {
                _readAhead = ValueTask.FromException<ReadResult>(e);
            }
        }
    }

    /// <summary>
    /// The handler asked for <see cref="RequestContext.RequestAborted"/>: the read ahead (started now if the body is read
    /// and nothing else will read the connection) tells the context when the connection ends. An end of stream with a
    /// further request already sent (a client that half-closes after pipelining) still wants its answers.
    /// </summary>
    internal override bool WatchForAbort(RequestContext context)
    {
        lock (_readAheadLock)
        {
            if (_phase != Phase.Handler || !ReferenceEquals(context, _context))
            {
                return true; // not this connection's request now: nothing to watch
            }

            if (_watchingAbort)
            {
                return true;
            }

            StartReadAheadLocked();
            if (_readAhead is not { } ahead)
            {
                // The body is still being read (its reads fail when the client goes), or nothing else may read the
                // connection (an upgrade, CONNECT, a pending 100-continue): the next ask tries again.
                return false;
            }

            _watchingAbort = true;
            _readAhead = WatchAsync(ahead, context, context.Generation);
            return true;
        }
    }

    private static async ValueTask<ReadResult> WatchAsync(ValueTask<ReadResult> ahead, RequestContext context, long generation)
    {
        ReadResult result;
        try
        {
            result = await ahead.ConfigureAwait(false);
        }
        catch (Exception)
        {
            context.Abort(generation); // reset, or the transport failed: the connection is gone
            throw;
        }

        if (!result.IsCanceled && result.IsCompleted && result.Buffer.IsEmpty)
        {
            context.Abort(generation);
        }

        return result;
    }

    /// <summary>A read started ahead and never taken (the connection closes): cancel it and let it finish.</summary>
    private async ValueTask AbandonReadAheadAsync()
    {
        if (_readAhead is not { } ahead)
        {
            return;
        }

        _readAhead = null;
        if (!ahead.IsCompleted)
        {
            _input.CancelPendingRead();
        }

        try
        {
            await ahead.ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
        }
    }

    /// <summary>Host, framing, target and connection semantics of a parsed head.</summary>
    private RequestRejection PrepareRequest(ListenerRuntime.State state)
    {
        HeaderCollection headers = _context.RequestHeaders;
        RequestRejection r = Http1RequestFraming.ValidateHost(headers, _context.RawTarget, _context.Version);
        if (r != RequestRejection.None)
        {
            return r;
        }

        r = Http1RequestFraming.Determine(headers, _context.Version, out BodyKind kind, out long length);
        if (r != RequestRejection.None)
        {
            return r;
        }

        RequestTarget.Result t = _context.ParseTarget(out RequestTargetForm form, out int authStart, out int authLength);
        if (t != RequestTarget.Result.Ok)
        {
            return RequestRejection.InvalidTarget;
        }

        if ((form == RequestTargetForm.Authority) != (_context.Method == HttpMethod.Connect)
            || (form == RequestTargetForm.Asterisk && _context.Method != HttpMethod.Options))
        {
            return RequestRejection.InvalidTarget;
        }

        bool hostOk = form == RequestTargetForm.Absolute
            ? _context.SetAuthority(_context.RawTarget.Slice(authStart, authLength)) // RFC 9112 §3.2.2: the target's authority wins
            : !headers.TryGetValue(KnownHeader.Host, out ReadOnlySpan<byte> host) || _context.SetAuthority(host);
        if (!hostOk)
        {
            return RequestRejection.InvalidHost;
        }

        if (kind == BodyKind.ContentLength && length > Limits.MaxRequestBodySize)
        {
            return RequestRejection.BodyTooLarge;
        }

        if (kind == BodyKind.None)
        {
            _body?.Reset(kind, length);
            _context.Body = EmptyRequestBody.Instance;
        }
        else
        {
            _body ??= new Http1RequestBody(this, _input);
            _body.Reset(kind, length);
            _context.Body = _body;
        }

        // Connection options (RFC 9112 §9.3): HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
        bool close = false, keepAlive = false, upgrade = false;
        if (headers.TryGetValue(KnownHeader.Connection, out ReadOnlySpan<byte> connection))
        {
            ScanConnectionTokens(headers, ref close, ref keepAlive, ref upgrade);
        }

        // RFC 9110 §7.8: an upgrade is offered by Upgrade plus the "upgrade" option (a bare Upgrade field was
        // added by someone else and is ignored). One with a body is served as a plain request, as nginx does.
        if (upgrade && _context.Version == HttpVersion.Http11 && kind == BodyKind.None
            && headers.TryGetValue(KnownHeader.Upgrade, out ReadOnlySpan<byte> protocol) && headers.CountOf(KnownHeader.Upgrade) == 1)
        {
            _context.SetUpgradeProtocol(protocol.Trim(" \t"u8));
        }

        if (_context.Version == HttpVersion.Http10)
        {
            _keepAlive10 = keepAlive && !close;
            close = !_keepAlive10;
        }

        if (headers.TryGetValue(KnownHeader.Expect, out ReadOnlySpan<byte> expect))
        {
            // RFC 9110 §10.1.1: the only expectation defined is 100-continue; HTTP/1.0 clients must be ignored.
            if (System.Text.Ascii.EqualsIgnoreCase(expect, "100-continue"u8))
            {
                _expectContinue = _context.Version == HttpVersion.Http11 && kind != BodyKind.None;
            }
            else
            {
                return RequestRejection.ExpectationFailed;
            }
        }

        if (_context.Method == HttpMethod.Connect)
        {
            return RequestRejection.MethodNotImplemented; // no tunnelling
        }

        _context.CloseConnection = close || _draining || _requests >= Limits.MaxRequestsPerConnection;
        return RequestRejection.None;
    }

    private static void ScanConnectionTokens(HeaderCollection headers, ref bool close, ref bool keepAlive, ref bool upgrade)
    {
        for (int i = 0; i < headers.Count; i++)
        {
            HeaderField f = headers[i];
            if (f.Known != KnownHeader.Connection)
            {
                continue;
            }

            foreach (ReadOnlySpan<byte> token in new HttpList(f.Value))
            {
                if (System.Text.Ascii.EqualsIgnoreCase(token, "close"u8))
                {
                    close = true;
                }
                else if (System.Text.Ascii.EqualsIgnoreCase(token, "keep-alive"u8))
                {
                    keepAlive = true;
                }
                else if (System.Text.Ascii.EqualsIgnoreCase(token, "upgrade"u8))
                {
                    upgrade = true;
                }
            }
        }
    }

    private async ValueTask<bool> TryDrainBodyAsync()
    {
        if (_body is not { } body)
        {
            return true; // no request on this connection had a body
        }

        if (body.Remaining > Limits.MaxDrainBytes)
        {
            return false;
        }

        try
        {
            _phase = Phase.Body;
            await body.DrainAsync().ConfigureAwait(false);
            return body.IsComplete;
        }
        catch (Exception e) when (e is BadRequestException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    // ---- rejections ----

    /// <summary>Answers a request the server will not process, then the caller closes the connection.</summary>
    private async ValueTask RejectAsync(int status, string reason)
    {
        ClosesWithInputLeft = true; // a body not read, the rest of a header too large, more requests behind it
        LogRejected(status, reason);
        if (_context.ResponseStarted)
        {
            RecordAccess();
            return;
        }

        // RFC 9457 problem details: status, title, and the reason as detail.
        _context.ResponseHeaders.Clear();
        _context.CloseConnection = true;
        _context.StatusCode = status;
        byte[] bytes = ProblemDetails.Json(status, reason);
        _context.ResponseHeaders.Add(KnownHeader.ContentType, "Content-Type"u8, "application/problem+json"u8);
        _context.ResponseContentLength = bytes.Length;
        try
        {
            WriteHead(endOfResponse: false);
            if (_context.Method != HttpMethod.Head)
            {
                _output.Write(bytes);
                _context.ResponseBytesWritten = bytes.Length;
            }

            RecordAccess();
            await _output.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // The client is gone; nothing more to tell it.
        }

    }

    /// <summary>The access log line of the request just answered (DESIGN.md: response writer → access log).</summary>
    private void RecordAccess() =>
        _listener.Current.AccessLog?.Record(_context, 0, _body is { } body && ReferenceEquals(_context.Body, body) ? body.BytesRead : 0);

    private void LogRejected(int status, string reason) =>
        _logger.LogInformation("connection {Id} from {Remote}: request rejected with {Status}: {Reason}",
            _info.Id, _info.RemoteEndPoint, status, reason);

    // ---- timeouts and shutdown (called from the heartbeat / registry) ----

    internal void OnTimeout()
    {
        if (_phase == Phase.Handler)
        {
            return;
        }

        _timedOut = true;
        if (_phase == Phase.Idle)
        {
            _logger.LogDebug("connection {Id}: keep-alive timeout", _info.Id);
        }
        else
        {
            LogRejected(408, _phase == Phase.Head ? "request headers timeout" : "request body timeout");
        }

        _input.CancelPendingRead();
    }

    internal void OnHeartbeat(long now)
    {
        if (_phase != Phase.Handler && _phase != Phase.Body)
        {
            return;
        }

        if (_body?.IsReadRateTooLow(now, Limits) == true)
        {
            LogRejected(408, "request body data rate below minimum");
            _timedOut = true;
            _input.CancelPendingRead();
        }
    }

    internal void RequestClose()
    {
        _draining = true;
        if (_phase == Phase.Idle && _requests > 0)
        {
            _input.CancelPendingRead(); // a new connection's first request is still awaited (and answered, then closed)
        }
    }

    internal bool TimedOut => _timedOut;

    // ---- ResponseSink ----

    public override ValueTask WriteAsync(RequestContext context, ReadOnlyMemory<byte> data, bool flush, CancellationToken cancellationToken)
    {
        if (_tunnel)
        {
            _output.Write(data.Span); // raw bytes of the switched protocol
            return flush ? FlushCoreAsync(cancellationToken) : default;
        }

        if (!context.ResponseStarted)
        {
            WriteHead(endOfResponse: false);
        }

        if (_responseHasBody && !data.IsEmpty)
        {
            if (_chunkedResponse)
            {
                WriteChunkHeader(data.Length);
                _output.Write(data.Span);
                _output.Write("\r\n"u8);
            }
            else
            {
                if (context.ResponseContentLength >= 0 && context.ResponseBytesWritten + data.Length > context.ResponseContentLength)
                {
                    throw new InvalidOperationException("response body longer than its Content-Length");
                }

                _output.Write(data.Span);
            }

            context.ResponseBytesWritten += data.Length;
            _unflushed += data.Length;
        }

        if (flush || _unflushed >= FlushThreshold)
        {
            return FlushCoreAsync(cancellationToken);
        }

        return default;
    }

    public override ValueTask FlushAsync(RequestContext context, CancellationToken cancellationToken)
    {
        if (!context.ResponseStarted)
        {
            WriteHead(endOfResponse: false);
        }

        return FlushCoreAsync(cancellationToken);
    }

    private ValueTask FlushCoreAsync(CancellationToken cancellationToken)
    {
        _unflushed = 0;
        ValueTask<FlushResult> f = _output.FlushAsync(cancellationToken);
        if (f.IsCompletedSuccessfully)
        {
            return default;
        }

        return AwaitFlush(f);

        static async ValueTask AwaitFlush(ValueTask<FlushResult> f) => await f.ConfigureAwait(false);
    }

    public override ValueTask CompleteAsync(RequestContext context)
    {
        if (_responseCompleted)
        {
            return default;
        }

        _responseCompleted = true;
        if (!context.ResponseStarted)
        {
            WriteHead(endOfResponse: true);
        }
        else if (_chunkedResponse)
        {
            HeaderCollection trailers = context.ResponseTrailers;
            if (trailers.Count == 0)
            {
                _output.Write("0\r\n\r\n"u8);
            }
            else
            {
                // RFC 9112 §7.1.2: the trailer section after the last chunk.
                _output.Write("0\r\n"u8);
                for (int i = 0; i < trailers.Count; i++)
                {
                    Http1FieldWriter.Write(_output, trailers[i].Name, trailers[i].Value);
                }

                _output.Write("\r\n"u8);
            }
        }
        else if (context.ResponseContentLength >= 0 && context.ResponseBytesWritten < context.ResponseContentLength && _responseHasBody)
        {
            // The declared length was not delivered: the client can only learn it from the connection closing.
            context.CloseConnection = true;
        }
        else if (context.ResponseContentLength < 0 && _responseHasBody)
        {
            context.CloseConnection = true; // close-delimited (HTTP/1.0 client)
        }

        return default;
    }

    public override ValueTask<RequestBody> AcceptUpgradeAsync(RequestContext context)
    {
        if (context.UpgradeProtocol.IsEmpty || context.ResponseStarted)
        {
            throw new InvalidOperationException("no upgrade was asked for, or the response has started");
        }

        // RFC 9110 §15.2.2: 101 with the Upgrade field naming the protocol switched to; the connection is the
        // tunnel's from the blank line on and closes when the handler returns.
        context.ResponseStarted = true;
        context.StatusCode = 101;
        context.CloseConnection = true;
        _responseCompleted = true;
        _tunnel = true;
        _phase = Phase.Handler;
        PipeWriter o = _output;
        o.Write(StatusLines.Get(101));
        o.Write(DateHeader.Line);
        o.Write(ServerHeader.Line);
        HeaderCollection headers = context.ResponseHeaders;
        for (int i = 0; i < headers.Count; i++)
        {
            HeaderField f = headers[i];
            if (f.Known is not (KnownHeader.ContentLength or KnownHeader.TransferEncoding or KnownHeader.Connection))
            {
                Http1FieldWriter.Write(o, f.Name, f.Value);
            }
        }

        o.Write("Connection: Upgrade\r\n\r\n"u8);
        ValueTask flush = FlushCoreAsync(CancellationToken.None);
        RequestBody body = new TunnelBody(_input);
        return flush.IsCompletedSuccessfully ? new ValueTask<RequestBody>(body) : AwaitFlush(flush, body);

        static async ValueTask<RequestBody> AwaitFlush(ValueTask flush, RequestBody body)
        {
            await flush.ConfigureAwait(false);
            return body;
        }
    }

    public override bool IsContinueExpected(RequestContext context) => _expectContinue && !context.ResponseStarted;

    public override ValueTask SendContinueAsync(RequestContext context)
    {
        if (!_expectContinue || context.ResponseStarted)
        {
            return default;
        }

        _expectContinue = false;
        _output.Write("HTTP/1.1 100 Continue\r\n\r\n"u8);
        return FlushCoreAsync(CancellationToken.None);
    }

    private void WriteHead(bool endOfResponse)
    {
        RequestContext c = _context;
        c.ResponseStarted = true;
        int status = c.StatusCode;
        bool bodyAllowed = status is >= 200 and not 204 and not 304;
        _responseHasBody = bodyAllowed && c.Method != HttpMethod.Head;
        if (_expectContinue)
        {
            // A final answer without asking for the body: the body may or may not follow, so close after it.
            _expectContinue = false;
            c.CloseConnection = true;
        }

        HeadBuffer o = HeadBuffer.Start(); // written whole, then into the pipe in one write
        o.Write(StatusLines.Get(status));
        o.Write(DateHeader.Line);
        o.Write(ServerHeader.Line);
        HeaderCollection headers = c.ResponseHeaders;
        byte[]? hsts = c.StrictTransportSecurity;
        for (int i = 0; i < headers.Count; i++)
        {
            HeaderField f = headers[i];
            if (f.Known is KnownHeader.ContentLength or KnownHeader.TransferEncoding or KnownHeader.Connection)
            {
                continue; // framing and connection management are this writer's job
            }

            if (hsts is not null && System.Text.Ascii.EqualsIgnoreCase(f.Name, "strict-transport-security"u8))
            {
                continue; // the route's policy wins over the handler's (or upstream's) copy
            }

            Http1FieldWriter.Write(o, f.Name, f.Value);
        }

        if (hsts is not null)
        {
            Http1FieldWriter.Write(o, "Strict-Transport-Security"u8, hsts);
        }

        if (bodyAllowed)
        {
            if (c.ResponseContentLength >= 0 || endOfResponse)
            {
                long length = c.ResponseContentLength >= 0 ? c.ResponseContentLength : 0;
                if (endOfResponse && c.ResponseContentLength < 0)
                {
                    c.ResponseContentLength = 0;
                }

                Span<byte> span = o.GetSpan(40);
                "Content-Length: "u8.CopyTo(span);
                Utf8Formatter.TryFormat(length, span[16..], out int digits);
                span[16 + digits] = (byte)'\r';
                span[17 + digits] = (byte)'\n';
                o.Advance(18 + digits);
            }
            else if (c.Version == HttpVersion.Http11)
            {
                o.Write("Transfer-Encoding: chunked\r\n"u8);
                _chunkedResponse = _responseHasBody;
            }
            else
            {
                c.CloseConnection = true; // HTTP/1.0: the body ends when the connection does
            }
        }

        if (c.CloseConnection || _draining)
        {
            c.CloseConnection = true;
            o.Write("Connection: close\r\n\r\n"u8);
        }
        else if (_keepAlive10)
        {
            o.Write("Connection: keep-alive\r\n\r\n"u8);
        }
        else
        {
            o.Write("\r\n"u8);
        }

        o.CopyTo(_output);
    }

    private void WriteChunkHeader(int length)
    {
        Span<byte> span = _output.GetSpan(12);
        Utf8Formatter.TryFormat(length, span, out int n, new StandardFormat('x'));
        span[n++] = (byte)'\r';
        span[n++] = (byte)'\n';
        _output.Advance(n);
    }

    /// <summary>Feeds parser callbacks into the request context (a struct, so the parser's generic calls devirtualize).</summary>
    private readonly struct ParsingHandler(RequestContext context) : IHttp1RequestHandler
    {
        public void OnRequestLine(HttpMethod method, ReadOnlySpan<byte> methodToken, ReadOnlySpan<byte> target, HttpVersion version)
        {
            context.SetMethod(method, methodToken);
            context.SetTarget(target);
            context.Version = version;
        }

        public void OnHeader(KnownHeader known, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) =>
            context.RequestHeaders.Add(known, name, value);
    }
}

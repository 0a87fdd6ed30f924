using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;

namespace Appliance.Server;

/// <summary>
/// One request and its response, the same type for HTTP/1.1 and HTTP/2 (DESIGN.md "How a request flows").
/// Reused across the requests of a connection (or pooled per stream), so the steady state allocates nothing:
/// the target and normalised path live in reusable byte buffers, headers in <see cref="HeaderCollection"/>s.
/// </summary>
public sealed class RequestContext
{
    private byte[] _target = new byte[256]; // grown (and kept) on a longer target: most are far shorter
    private int _targetLength;
    private byte[] _path = new byte[256];
    private int _pathLength;
    private int _queryStart;
    private int _queryLength;
    private byte[] _host = new byte[128];
    private int _hostLength;
    private byte[] _authority = new byte[128];
    private int _authorityLength;
    private byte[] _method = new byte[16];
    private int _methodLength;
    private byte[] _protocol = new byte[16];
    private int _protocolLength;
    private readonly byte[] _requestId = new byte[32];
    private int _requestIdLength;

    public RequestContext(ConnectionInfo connection)
    {
        Connection = connection;
    }

    public ConnectionInfo Connection { get; private set; }

    public HttpMethod Method { get; private set; }

    public HttpVersion Version { get; set; }

    public bool IsHttps => Connection.IsTls;

    public string Scheme => Connection.IsTls ? "https" : "http";

    public ReadOnlySpan<byte> MethodToken => _method.AsSpan(0, _methodLength);

    /// <summary>The request-target as received.</summary>
    public ReadOnlySpan<byte> RawTarget => _target.AsSpan(0, _targetLength);

    /// <summary>The normalised path (percent-decoded except %2F, dot segments removed); what routes match.</summary>
    public ReadOnlySpan<byte> Path => _path.AsSpan(0, _pathLength);

    /// <summary>The query including its leading '?', or empty.</summary>
    public ReadOnlySpan<byte> Query => _target.AsSpan(_queryStart, _queryLength);

    /// <summary>Host[:port] as the client sent it (Host or :authority); what a proxy forwards.</summary>
    public ReadOnlySpan<byte> Authority => _authority.AsSpan(0, _authorityLength);

    /// <summary>Host name from Host/:authority, lowercased, without port.</summary>
    public ReadOnlySpan<byte> HostName => _host.AsSpan(0, _hostLength);

    public HeaderCollection RequestHeaders { get; } = new();

    /// <summary>
    /// The protocol the client asks to switch to, empty when it asks for none: HTTP/1.1's Upgrade field (with the
    /// "upgrade" connection option and no body, RFC 9110 §7.8) or HTTP/2's :protocol (extended CONNECT, RFC 8441).
    /// A handler that wants it calls <see cref="ResponseSink.AcceptUpgradeAsync"/>; others answer as usual.
    /// </summary>
    public ReadOnlySpan<byte> UpgradeProtocol => _protocol.AsSpan(0, _protocolLength);

    public void SetUpgradeProtocol(ReadOnlySpan<byte> protocol) => Store(ref _protocol, protocol, out _protocolLength);

    public RequestBody Body { get; set; } = EmptyRequestBody.Instance;

    public RouteValues RouteValues { get; } = new();

    /// <summary>Whatever the dispatcher matched (the route model), for logging.</summary>
    public object? Route { get; set; }

    /// <summary>
    /// The client certificate's identity when it is trusted for the matched route (its CA set: the route's, its
    /// tenant's or the listener's); null otherwise. What policies and transforms read; set by the dispatcher.
    /// </summary>
    public ClientIdentity? ClientIdentity { get; set; }

    /// <summary>The consumer (state database id) whose API key the route's apiKey policy accepted; null otherwise.</summary>
    public string? ConsumerId { get; set; }

    /// <summary>The "sub" of the JSON Web Token the route's jwt policy accepted; null otherwise.</summary>
    public string? Subject { get; set; }

    // ---- for the access log (filled along the way, read when the response is complete) ----

    /// <summary>When the request's first bytes arrived (Stopwatch ticks); set by the protocol layer.</summary>
    public long StartTimestamp { get; set; }

    /// <summary>The matched route's id, or null when none matched.</summary>
    public string? RouteId { get; set; }

    /// <summary>An ai route's model that answered (after fallbacks), by its name in the config; null elsewhere.</summary>
    public string? AiModel { get; set; }

    /// <summary>The tokens the answer cost, as its provider counted them (0 when it did not say).</summary>
    public long InputTokens { get; set; }

    public long OutputTokens { get; set; }

    /// <summary>What the answer cost by the model's price (ai.models[].cost), in nano-units of the currency; -1 without a price.</summary>
    public long AiCostNanos { get; set; } = -1;

    /// <summary>The route asked for no access log line (routes[].accessLog false).</summary>
    public bool SkipAccessLog { get; set; }

    /// <summary>The cluster a proxied request went to, or null.</summary>
    public string? UpstreamCluster { get; set; }

    /// <summary>The destination (host:port as configured) that answered, or was tried last.</summary>
    public string? UpstreamAddress { get; set; }

    /// <summary>The upstream's status, 0 when no response head came.</summary>
    public int UpstreamStatus { get; set; }

    /// <summary>Stopwatch ticks from sending the request upstream to its response head; 0 when none came.</summary>
    public long UpstreamHeaderTicks { get; set; }

    /// <summary>The X-Request-Id this hop created and forwarded (the client sent none); empty otherwise.</summary>
    public ReadOnlySpan<byte> GeneratedRequestId => _requestId.AsSpan(0, _requestIdLength);

    public void SetGeneratedRequestId(ReadOnlySpan<byte> id)
    {
        _requestIdLength = Math.Min(id.Length, _requestId.Length);
        id[.._requestIdLength].CopyTo(_requestId);
    }

    // ---- response ----

    public int StatusCode { get; set; } = 200;

    public HeaderCollection ResponseHeaders { get; } = new();

    /// <summary>
    /// Fields sent after the body (gRPC's grpc-status): HEADERS with END_STREAM on HTTP/2, the chunked trailer section
    /// on HTTP/1.1 (RFC 9112 §7.1.2; dropped when the body is not chunked).
    /// </summary>
    public HeaderCollection ResponseTrailers { get; } = new();

    /// <summary>Set before the first write to send Content-Length; -1 streams (chunked on HTTP/1.1).</summary>
    public long ResponseContentLength { get; set; } = -1;

    public bool ResponseStarted { get; internal set; }

    /// <summary>
    /// A Strict-Transport-Security value the response head carries whatever the handler put in the headers (a
    /// proxied response's own copy is replaced); set by the route on HTTPS requests.
    /// </summary>
    public byte[]? StrictTransportSecurity { get; set; }

    /// <summary>Set when the connection must close after this response (Connection: close).</summary>
    public bool CloseConnection { get; set; }

    public long ResponseBytesWritten { get; internal set; }

    public ResponseSink Sink { get; set; } = null!;

    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        Sink.WriteAsync(this, data, flush: false, cancellationToken);

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => Sink.FlushAsync(this, cancellationToken);

    public ValueTask CompleteAsync() => Sink.CompleteAsync(this);

    // ---- the client going away ----

    private long _generation;            // one per request this context carries (Reset counts them)
    private long _abortedGeneration = -1; // the request whose client went away
    private AbortSource? _abortSource;   // made when a handler first asks; never another request's
    private bool _abortWatched;          // the protocol layer watches for this request's client going away

    /// <summary>
    /// Cancelled when the client goes away before its answer is complete: on HTTP/2 a RST_STREAM, or the connection
    /// closing; on HTTP/1.1 the connection ending (an end of stream with no further request, or an error) while the
    /// handler runs with the request body read, which is when nginx gives up a proxied request (499; its
    /// <c>proxy_ignore_client_abort off</c>). For work worth stopping (a model's answer, paid by the token): the
    /// first ask makes a token source and, on HTTP/1.1, starts watching the connection, so handlers that never ask
    /// cost nothing. On HTTP/1.1 ask once the request body is read: before that, the body's own reads tell (they
    /// fail), and the watch is armed at the first ask after it.
    /// </summary>
    public CancellationToken RequestAborted
    {
        get
        {
            AbortSource? source = Volatile.Read(ref _abortSource);
            if (source is null)
            {
                var made = new AbortSource(_generation);
                source = Interlocked.CompareExchange(ref _abortSource, made, null) ?? made; // a full fence: see Abort
                if (ClientAborted)
                {
                    source.CancelLater();
                }
            }

            if (!_abortWatched)
            {
                _abortWatched = Sink?.WatchForAbort(this) ?? true;
            }

            return source.Token;
        }
    }

    /// <summary>Whether the client went away under this request (see <see cref="RequestAborted"/>).</summary>
    public bool ClientAborted => Volatile.Read(ref _abortedGeneration) == _generation;

    /// <summary>Which request the context carries now: what <see cref="Abort(long)"/> is told, from another thread.</summary>
    internal long Generation => Volatile.Read(ref _generation);

    /// <summary>The client of the request the context carries now went away (the protocol layer knows it is current).</summary>
    internal void Abort() => Abort(_generation);

    /// <summary>
    /// The client of request <paramref name="generation"/> went away. Nothing happens if the context has moved on
    /// to another request meanwhile (it may be pooled and serving another connection). <see cref="RequestAborted"/>
    /// is cancelled on the thread pool, so the protocol layer may call this under its own locks without running a
    /// handler's callbacks there.
    /// </summary>
    internal void Abort(long generation)
    {
        // Only forward: a late abort of a request long gone (an idle HTTP/1.1 connection closing after its context went
        // back to the pool) must not erase that of the request the context carries now. The exchange is a full fence,
        // as the getter's, so an abort and a first ask racing each other cannot both miss the other.
        long seen = Volatile.Read(ref _abortedGeneration);
        while (seen < generation)
        {
            long was = Interlocked.CompareExchange(ref _abortedGeneration, generation, seen);
            if (was == seen)
            {
                break;
            }

            seen = was;
        }

        if (Volatile.Read(ref _abortSource) is { } source && source.Generation == generation)
        {
            source.CancelLater();
        }
    }

    /// <summary>A token source that belongs to one request.</summary>
    private sealed class AbortSource(long generation)
    {
        private readonly CancellationTokenSource _source = new();

        public long Generation { get; } = generation;

        public CancellationToken Token => _source.Token;

        public void CancelLater() => ThreadPool.UnsafeQueueUserWorkItem(static s => s.Cancel(), _source, preferLocal: false);
    }

    /// <summary>The client waits for 100 Continue before sending the body (HTTP/1.1 Expect: 100-continue).</summary>
    public bool ContinueExpected => Sink.IsContinueExpected(this);

    /// <summary>See <see cref="ResponseSink.AcceptUpgradeAsync"/>.</summary>
    public ValueTask<RequestBody> AcceptUpgradeAsync() => Sink.AcceptUpgradeAsync(this);

    /// <summary>Answers with a whole body known up front (sets Content-Length).</summary>
    public ValueTask RespondAsync(int status, ReadOnlySpan<byte> contentType, ReadOnlyMemory<byte> body)
    {
        StatusCode = status;
        if (!contentType.IsEmpty)
        {
            ResponseHeaders.Add(KnownHeader.ContentType, "Content-Type"u8, contentType);
        }

        ResponseContentLength = body.Length;
        if (body.IsEmpty)
        {
            return Sink.CompleteAsync(this);
        }

        ValueTask write = Sink.WriteAsync(this, body, flush: false, CancellationToken.None);
        return write.IsCompletedSuccessfully ? Sink.CompleteAsync(this) : AwaitThenComplete(write);
    }

    private async ValueTask AwaitThenComplete(ValueTask write)
    {
        await write.ConfigureAwait(false);
        await Sink.CompleteAsync(this).ConfigureAwait(false);
    }

    // ---- filled by the protocol layer ----

    /// <summary>Gives a pooled context to a connection's request (<see cref="RequestContextPool"/>).</summary>
    internal void Bind(ConnectionInfo connection, ResponseSink sink)
    {
        Connection = connection;
        Sink = sink;
    }

    /// <summary>Lets go of the connection a pooled context served, so the pool does not keep it alive.</summary>
    internal void Unbind()
    {
        Connection = null!;
        Sink = null!;
    }

    public void Reset()
    {
        _targetLength = _pathLength = _queryStart = _queryLength = _hostLength = _methodLength = _authorityLength = _protocolLength = _requestIdLength = 0;
        Method = HttpMethod.Custom;
        Version = HttpVersion.Http10; // as a new context: a request line rejected half-way leaves nothing of another request
        RequestHeaders.Clear();
        ResponseHeaders.Clear();
        ResponseTrailers.Clear();
        RouteValues.Clear();
        Body = EmptyRequestBody.Instance;
        Route = null;
        ClientIdentity = null;
        ConsumerId = null;
        Subject = null;
        AiModel = null;
        InputTokens = OutputTokens = 0;
        AiCostNanos = -1;
        StatusCode = 200;
        ResponseContentLength = -1;
        ResponseStarted = false;
        CloseConnection = false;
        ResponseBytesWritten = 0;
        StrictTransportSecurity = null;
        RouteId = UpstreamCluster = UpstreamAddress = null;
        SkipAccessLog = false;
        UpstreamStatus = 0;
        UpstreamHeaderTicks = 0;
        _generation++; // an abort meant for the request before can no longer reach this one
        Volatile.Write(ref _abortSource, null);
        _abortWatched = false;
    }

    public void SetMethod(HttpMethod method, ReadOnlySpan<byte> token)
    {
        Method = method;
        Store(ref _method, token, out _methodLength);
    }

    public void SetTarget(ReadOnlySpan<byte> target) => Store(ref _target, target, out _targetLength);

    /// <summary>Normalises the stored target's path into <see cref="Path"/> and locates the query.</summary>
    public RequestTarget.Result ParseTarget(out RequestTargetForm form, out int authorityStart, out int authorityLength)
    {
        ReadOnlySpan<byte> target = RawTarget;
        RequestTarget.Result r = RequestTarget.Split(target, out form, out authorityStart, out authorityLength,
            out int pathStart, out int pathLength, out int queryStart);
        if (r != RequestTarget.Result.Ok)
        {
            return r;
        }

        _queryStart = queryStart;
        _queryLength = target.Length - queryStart;
        if (form is RequestTargetForm.Asterisk or RequestTargetForm.Authority)
        {
            _pathLength = 0;
            return r;
        }

        if (_path.Length < pathLength + 1)
        {
            _path = new byte[Math.Max(pathLength + 1, _path.Length * 2)];
        }

        r = RequestTarget.NormalizePath(target.Slice(pathStart, pathLength), _path, out _pathLength);
        return r;
    }

    /// <summary>Stores the host part of an authority ("Example.COM:8443" → "example.com"); false when malformed.</summary>
    public bool SetAuthority(ReadOnlySpan<byte> authority)
    {
        Store(ref _authority, authority, out _authorityLength);
        ReadOnlySpan<byte> host = authority;
        if (!host.IsEmpty && host[0] == (byte)'[')
        {
            int close = host.IndexOf((byte)']');
            if (close < 0)
            {
                return false;
            }

            host = host[..(close + 1)];
        }
        else
        {
            int colon = host.IndexOf((byte)':');
            if (colon >= 0)
            {
                host = host[..colon];
            }
        }

        if (host.Length > 0 && host[^1] == (byte)'.')
        {
            host = host[..^1]; // "example.com." names the same host
        }

        Store(ref _host, host, out _hostLength);
        System.Text.Ascii.ToLowerInPlace(_host.AsSpan(0, _hostLength), out _);
        return true;
    }

    private static void Store(ref byte[] buffer, ReadOnlySpan<byte> value, out int length)
    {
        if (buffer.Length < value.Length)
        {
            buffer = new byte[Math.Max(value.Length, buffer.Length * 2)];
        }

        Appliance.Protocol.ShortCopy.To(value, buffer);
        length = value.Length;
    }

    public string PathString => System.Text.Encoding.UTF8.GetString(Path);

    public string HostString => System.Text.Encoding.ASCII.GetString(HostName);
}

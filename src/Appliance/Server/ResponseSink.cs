namespace Appliance.Server;

/// <summary>
/// Where a response goes: the HTTP/1.1 connection or an HTTP/2 stream. Writes the head lazily from the
/// context's status and headers on the first body write or on completion.
/// </summary>
public abstract class ResponseSink
{
    /// <summary>Buffers <paramref name="data"/> (writing the head first if needed); flushes when asked or when enough is buffered.</summary>
    public abstract ValueTask WriteAsync(RequestContext context, ReadOnlyMemory<byte> data, bool flush, CancellationToken cancellationToken);

    /// <summary>Sends what is buffered now (server-sent events, long poll).</summary>
    public abstract ValueTask FlushAsync(RequestContext context, CancellationToken cancellationToken);

    /// <summary>Ends the response: head if not yet written, final chunk, trailers. Does not necessarily flush (pipelining).</summary>
    public abstract ValueTask CompleteAsync(RequestContext context);

    /// <summary>The client sent Expect: 100-continue and is still waiting for the interim (or a final) response.</summary>
    public virtual bool IsContinueExpected(RequestContext context) => false;

    /// <summary>Sends an interim 100 Continue if the client asked for it and nothing was sent yet.</summary>
    public abstract ValueTask SendContinueAsync(RequestContext context);

    /// <summary>
    /// Accepts the switch the client asked for (<see cref="RequestContext.UpgradeProtocol"/>): sends the head now
    /// (HTTP/1.1: 101 Switching Protocols with the context's response headers, Upgrade among them; HTTP/2: 200 on
    /// the extended CONNECT stream) and turns the exchange into a tunnel. The returned body yields the client's
    /// bytes until it closes its side; <see cref="WriteAsync"/> sends raw bytes the other way and
    /// <see cref="CompleteAsync"/> closes our side. An HTTP/1.1 connection closes when the handler returns.
    /// </summary>
    public abstract ValueTask<RequestBody> AcceptUpgradeAsync(RequestContext context);

    /// <summary>
    /// A handler asked for <see cref="RequestContext.RequestAborted"/>: start noticing the client going away, if that
    /// takes anything (HTTP/1.1 reads the connection ahead; HTTP/2 sees RST_STREAM anyway). False when it cannot yet
    /// (the request body is still being read): the next ask tries again.
    /// </summary>
    internal virtual bool WatchForAbort(RequestContext context) => true;
}

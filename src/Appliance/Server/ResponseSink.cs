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

    /// <summary>Sends an interim 100 Continue if the client asked for it and nothing was sent yet.</summary>
    public abstract ValueTask SendContinueAsync(RequestContext context);
}

using System.IO.Pipelines;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http2;

namespace Appliance.Proxy;

/// <summary>
/// One request on a multiplexed upstream connection: the response head decoded straight into the client's
/// response headers, the body through a pipe bounded by our receive window, trailers, and the send window for
/// the request body. Written by the connection's read loop, read by the proxy handler.
/// </summary>
internal sealed class Http2UpstreamStream
{
    private readonly TaskCompletionSource _head = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource? _windowWait;

    public Http2UpstreamStream(HeaderCollection responseHeaders, HeaderCollection responseTrailers)
    {
        Headers = responseHeaders;
        Trailers = responseTrailers;
    }

    public int Id { get; set; }

    /// <summary>Response body bytes; never blocks the read loop (our receive window bounds what can arrive).</summary>
    public Pipe Body { get; } = new(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false, minimumSegmentSize: 4096));

    public HeaderCollection Headers { get; }

    public HeaderCollection Trailers { get; }

    public int Status { get; set; }

    /// <summary>The final (non-1xx) response head is complete.</summary>
    public bool HeadDone { get; set; }

    public long ExpectedLength { get; set; } = -1;

    public long ReceivedLength { get; set; }

    /// <summary>Body bytes received but not yet taken by the handler (they hold the connection window).</summary>
    public long Unconsumed { get; set; }

    /// <summary>Consumed since our last WINDOW_UPDATE for the stream.</summary>
    public int Unacknowledged { get; set; }

    /// <summary>What the upstream may still send before our next WINDOW_UPDATE.</summary>
    public int ReceiveWindow { get; set; }

    public Http2FlowWindow SendWindow;

    public bool RemoteEnded { get; set; }

    /// <summary>Some of the client's request body was taken (so the request can no longer be retried elsewhere).</summary>
    public bool RequestBodyStarted { get; set; }

    public bool LocalEnded { get; set; }

    public bool Closed { get; set; }

    /// <summary>Why the stream failed (reset, GOAWAY, connection lost, malformed response), or null.</summary>
    public Exception? Error { get; private set; }

    /// <summary>Completes when the response head arrived; faults with the stream's error.</summary>
    public Task Head => _head.Task;

    public void CompleteHead() => _head.TrySetResult();

    public void Fail(Exception error)
    {
        Error ??= error;
        _head.TrySetException(error);
        Body.Writer.Complete(error);
        SignalWindow();
    }

    public Task PrepareWindowWait()
    {
        _windowWait ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return _windowWait.Task;
    }

    public void SignalWindow() => Interlocked.Exchange(ref _windowWait, null)?.TrySetResult();
}

/// <summary>
/// The upstream refused the stream before processing it (REFUSED_STREAM, or above a GOAWAY's last stream id): RFC 9113
/// §8.7 says such a request may be retried, even a non-idempotent one.
/// </summary>
internal sealed class Http2StreamRefusedException(string message) : IOException(message);

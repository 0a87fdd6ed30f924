namespace Appliance.Protocol.Http2;

/// <summary>
/// What a received frame violated: the RFC 9113 error code and whether it ends the connection (§5.4.1: send GOAWAY
/// and close) or only the stream (§5.4.2: send RST_STREAM). A value, so hot paths return it instead of throwing;
/// <c>default</c> is "no error". <see cref="Reason"/> is a constant phrase for logs and GOAWAY debug data.
/// </summary>
public readonly struct Http2FrameError
{
    private const byte NoScope = 0;
    private const byte StreamScope = 1;
    private const byte ConnectionScope = 2;

    private readonly byte _scope;
    private readonly string? _reason;

    private Http2FrameError(byte scope, Http2ErrorCode errorCode, string reason)
    {
        _scope = scope;
        ErrorCode = errorCode;
        _reason = reason;
    }

    /// <summary>No error.</summary>
    public static Http2FrameError None => default;

    /// <summary>The code to send in GOAWAY or RST_STREAM.</summary>
    public Http2ErrorCode ErrorCode { get; }

    public bool IsError => _scope != NoScope;

    /// <summary>The whole connection is unusable (§5.4.1).</summary>
    public bool IsConnectionError => _scope == ConnectionScope;

    /// <summary>Only the frame's stream is reset (§5.4.2); the connection, and its HPACK state, carry on.</summary>
    public bool IsStreamError => _scope == StreamScope;

    /// <summary>A short constant phrase; "none" when there is no error.</summary>
    public string Reason => _reason ?? "none";

    public static Http2FrameError Connection(Http2ErrorCode errorCode, string reason) => new(ConnectionScope, errorCode, reason);

    public static Http2FrameError Stream(Http2ErrorCode errorCode, string reason) => new(StreamScope, errorCode, reason);

    public override string ToString() => _scope switch
    {
        NoScope => "none",
        StreamScope => $"stream error {ErrorCode}: {Reason}",
        _ => $"connection error {ErrorCode}: {Reason}",
    };
}

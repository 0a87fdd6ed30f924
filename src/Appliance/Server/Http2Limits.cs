namespace Appliance.Server;

/// <summary>
/// HTTP/2 settings we advertise and the flood defences of a connection. Each is a config setting with this
/// default; each defence has a log reason and a counter (<see cref="Telemetry.LimitCounters"/>).
/// </summary>
public sealed record Http2Limits
{
    /// <summary>SETTINGS_MAX_CONCURRENT_STREAMS; streams past it are refused with REFUSED_STREAM.</summary>
    public int MaxConcurrentStreams { get; init; } = 100;
    /// <summary>SETTINGS_INITIAL_WINDOW_SIZE: how much request body a stream may send before the app reads it.</summary>
    public int InitialStreamWindowSize { get; init; } = 768 * 1024;
    /// <summary>Connection receive window, raised from 65,535 with a WINDOW_UPDATE after the preface.</summary>
    public int InitialConnectionWindowSize { get; init; } = 1024 * 1024;
    /// <summary>SETTINGS_MAX_FRAME_SIZE we accept.</summary>
    public int MaxFrameSize { get; init; } = 16_384;
    /// <summary>SETTINGS_HEADER_TABLE_SIZE for the peer's HPACK encoder (our decoder's dynamic table).</summary>
    public int HeaderTableSize { get; init; } = 4096;
    /// <summary>CVE-2023-44487 (rapid reset): streams the client may reset per <see cref="FloodInterval"/>.</summary>
    public int MaxResetsPerInterval { get; init; } = 200;
    /// <summary>CVE-2024-27316: CONTINUATION frames per header block (zero-length ones included).</summary>
    public int MaxContinuationFrames { get; init; } = 32;
    /// <summary>SETTINGS, PING, PRIORITY, RST_STREAM and WINDOW_UPDATE frames (each kind) per interval.</summary>
    public int MaxControlFramesPerInterval { get; init; } = 1000;
    /// <summary>DATA frames with no payload and no END_STREAM per interval.</summary>
    public int MaxEmptyDataFramesPerInterval { get; init; } = 100;
    public TimeSpan FloodInterval { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Bytes of frames queued for a client that does not read; past it the connection is closed.</summary>
    public int MaxQueuedOutputBytes { get; init; } = 1024 * 1024;
    /// <summary>
    /// How long a response may wait for the client to take it (nginx send_timeout): blocked on its stream window, the
    /// stream is reset (CANCEL); on the connection window, GOAWAY; on a socket write, the connection is closed. The
    /// time restarts whenever data moves. Zero turns it off. Counter: h2_send_timeout.
    /// </summary>
    public TimeSpan StreamSendTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

namespace Appliance.Protocol.Http2;

/// <summary>
/// Server-side stream states of RFC 9113 §5.1. "reserved (local)" and "reserved (remote)" are missing on purpose: they
/// exist only for server push, which this server never uses and clients may not do (§8.4). "closed" is split in two
/// because the RFC treats frames differently after this endpoint has sent RST_STREAM.
/// </summary>
public enum Http2StreamState : byte
{
    /// <summary>Not yet opened by a HEADERS frame.</summary>
    Idle = 0,

    /// <summary>Both sides may send.</summary>
    Open,

    /// <summary>The client has ended its side (END_STREAM received); the server still sends.</summary>
    HalfClosedRemote,

    /// <summary>The server has ended its side (END_STREAM sent); the client still sends, typically a request body.</summary>
    HalfClosedLocal,

    /// <summary>Ended both ways by END_STREAM, or by a RST_STREAM the client sent.</summary>
    Closed,

    /// <summary>
    /// Closed because the server sent RST_STREAM. The client may have sent frames before it saw the reset; those are
    /// processed minimally and discarded, not answered (§5.1 "closed"): field blocks still go through HPACK (§4.3) and
    /// DATA still counts against the connection window (§6.9).
    /// </summary>
    ResetSent,
}

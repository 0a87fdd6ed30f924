namespace Appliance.Protocol.Http2;

/// <summary>
/// Frame types of RFC 9113 §6. The byte on the wire may hold any value: types not listed here are extension frames
/// that a receiver must ignore and discard (§4.1, §5.5), so code must never assume a value is one of these names
/// (<see cref="Http2FrameHeader.IsKnownType"/>).
/// </summary>
public enum Http2FrameType : byte
{
    Data = 0x0,
    Headers = 0x1,
    Priority = 0x2,
    RstStream = 0x3,
    Settings = 0x4,
    PushPromise = 0x5,
    Ping = 0x6,
    GoAway = 0x7,
    WindowUpdate = 0x8,
    Continuation = 0x9,
}

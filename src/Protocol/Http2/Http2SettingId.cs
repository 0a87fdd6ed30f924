namespace Appliance.Protocol.Http2;

/// <summary>
/// Setting identifiers defined by RFC 9113 §6.5.2. A SETTINGS frame may carry any 16-bit identifier; unknown ones
/// must be ignored (§6.5.2), so a value of this type is not necessarily one of these names.
/// </summary>
public enum Http2SettingId : ushort
{
    HeaderTableSize = 0x1,
    EnablePush = 0x2,
    MaxConcurrentStreams = 0x3,
    InitialWindowSize = 0x4,
    MaxFrameSize = 0x5,
    MaxHeaderListSize = 0x6,
    /// <summary>RFC 8441 §3: the sender accepts extended CONNECT (the :protocol pseudo-header).</summary>
    EnableConnectProtocol = 0x8,
}

namespace Appliance.Protocol.Http2;

/// <summary>
/// The six settings of RFC 9113 §6.5.2 for one side of a connection, starting at the RFC defaults. A connection keeps
/// two: the peer's (applied as SETTINGS frames arrive) and its own (sent, and in force once acknowledged, §6.5.3).
/// The properties are plain; only <see cref="Apply"/> validates, because only peer input needs it.
/// </summary>
public sealed class Http2Settings
{
    /// <summary>Stands for "no limit" in <see cref="MaxConcurrentStreams"/> and <see cref="MaxHeaderListSize"/>.</summary>
    public const uint Unlimited = uint.MaxValue;

    public const uint DefaultHeaderTableSize = 4096;

    public const int DefaultInitialWindowSize = 65_535;

    /// <summary>Default and smallest allowed SETTINGS_MAX_FRAME_SIZE.</summary>
    public const int DefaultMaxFrameSize = 16_384;

    /// <summary>Largest allowed SETTINGS_MAX_FRAME_SIZE (2^24-1).</summary>
    public const int MaxAllowedFrameSize = Http2FrameHeader.MaxLength;

    /// <summary>Largest flow-control window and SETTINGS_INITIAL_WINDOW_SIZE (2^31-1).</summary>
    public const int MaxWindowSize = int.MaxValue;

    public uint HeaderTableSize { get; set; } = DefaultHeaderTableSize;

    public bool EnablePush { get; set; } = true;

    public uint MaxConcurrentStreams { get; set; } = Unlimited;

    public int InitialWindowSize { get; set; } = DefaultInitialWindowSize;

    public int MaxFrameSize { get; set; } = DefaultMaxFrameSize;

    /// <summary>Advisory (§6.5.2): a limit on uncompressed field bytes, each field counting name + value + 32.</summary>
    public uint MaxHeaderListSize { get; set; } = Unlimited;

    /// <summary>Back to the RFC defaults, for a pooled connection.</summary>
    public void Reset()
    {
        HeaderTableSize = DefaultHeaderTableSize;
        EnablePush = true;
        MaxConcurrentStreams = Unlimited;
        InitialWindowSize = DefaultInitialWindowSize;
        MaxFrameSize = DefaultMaxFrameSize;
        MaxHeaderListSize = Unlimited;
    }

    /// <summary>
    /// Applies one received pair. An invalid value is a connection error and changes nothing; an unknown identifier is
    /// ignored (§6.5.2). The caller reads <see cref="InitialWindowSize"/> before applying a new one: every stream
    /// window moves by the difference (§6.9.2), see <see cref="Http2FlowWindow.TryAdjust"/>.
    /// </summary>
    public Http2FrameError Apply(Http2SettingId id, uint value)
    {
        Http2FrameError error = Validate(id, value);
        if (error.IsError)
        {
            return error;
        }

        switch (id)
        {
            case Http2SettingId.HeaderTableSize:
                HeaderTableSize = value;
                break;
            case Http2SettingId.EnablePush:
                EnablePush = value == 1;
                break;
            case Http2SettingId.MaxConcurrentStreams:
                MaxConcurrentStreams = value;
                break;
            case Http2SettingId.InitialWindowSize:
                InitialWindowSize = (int)value;
                break;
            case Http2SettingId.MaxFrameSize:
                MaxFrameSize = (int)value;
                break;
            case Http2SettingId.MaxHeaderListSize:
                MaxHeaderListSize = value;
                break;
        }

        return Http2FrameError.None;
    }

    /// <summary>Checks a value against the ranges of RFC 9113 §6.5.2; unknown identifiers are always valid.</summary>
    public static Http2FrameError Validate(Http2SettingId id, uint value) => id switch
    {
        Http2SettingId.EnablePush when value > 1 =>
            Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "SETTINGS_ENABLE_PUSH is not 0 or 1"),

        // §6.5.2: above 2^31-1 is a FLOW_CONTROL_ERROR, not a PROTOCOL_ERROR.
        Http2SettingId.InitialWindowSize when value > MaxWindowSize =>
            Http2FrameError.Connection(Http2ErrorCode.FlowControlError, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1"),

        Http2SettingId.MaxFrameSize when value < DefaultMaxFrameSize || value > MaxAllowedFrameSize =>
            Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "SETTINGS_MAX_FRAME_SIZE outside 16384..16777215"),

        _ => Http2FrameError.None,
    };

    /// <summary>
    /// Copies the settings that differ from the RFC defaults into <paramref name="destination"/> (room for 6 is always
    /// enough) and returns how many: the payload of the SETTINGS frame that announces these settings.
    /// </summary>
    public int CopyNonDefaultTo(Span<Http2Setting> destination)
    {
        int count = 0;
        if (HeaderTableSize != DefaultHeaderTableSize)
        {
            destination[count++] = new Http2Setting(Http2SettingId.HeaderTableSize, HeaderTableSize);
        }

        if (!EnablePush)
        {
            destination[count++] = new Http2Setting(Http2SettingId.EnablePush, 0);
        }

        if (MaxConcurrentStreams != Unlimited)
        {
            destination[count++] = new Http2Setting(Http2SettingId.MaxConcurrentStreams, MaxConcurrentStreams);
        }

        if (InitialWindowSize != DefaultInitialWindowSize)
        {
            destination[count++] = new Http2Setting(Http2SettingId.InitialWindowSize, (uint)InitialWindowSize);
        }

        if (MaxFrameSize != DefaultMaxFrameSize)
        {
            destination[count++] = new Http2Setting(Http2SettingId.MaxFrameSize, (uint)MaxFrameSize);
        }

        if (MaxHeaderListSize != Unlimited)
        {
            destination[count++] = new Http2Setting(Http2SettingId.MaxHeaderListSize, MaxHeaderListSize);
        }

        return count;
    }
}

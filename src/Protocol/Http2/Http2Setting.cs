namespace Appliance.Protocol.Http2;

/// <summary>One identifier/value pair of a SETTINGS frame (RFC 9113 §6.5.1).</summary>
public readonly struct Http2Setting
{
    /// <summary>Size of a pair on the wire.</summary>
    public const int Size = 6;

    public Http2Setting(Http2SettingId id, uint value)
    {
        Id = id;
        Value = value;
    }

    /// <summary>May be an identifier this server does not know; those are ignored (§6.5.2).</summary>
    public Http2SettingId Id { get; }

    public uint Value { get; }

    public override string ToString() => $"{Id}={Value}";
}

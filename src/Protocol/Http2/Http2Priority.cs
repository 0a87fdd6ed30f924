namespace Appliance.Protocol.Http2;

/// <summary>
/// The priority fields of a PRIORITY frame or a HEADERS frame with the PRIORITY flag (RFC 9113 §5.3.2, §6.3). RFC 9113
/// deprecates this scheme; the server parses it only to validate it (a stream cannot depend on itself, §5.3.1).
/// </summary>
public readonly struct Http2Priority
{
    /// <summary>Size of the fields on the wire: E bit + 31-bit dependency, then weight.</summary>
    public const int Size = 5;

    public Http2Priority(int streamDependency, bool isExclusive, byte weight)
    {
        StreamDependency = streamDependency;
        IsExclusive = isExclusive;
        Weight = weight;
    }

    public int StreamDependency { get; }

    public bool IsExclusive { get; }

    /// <summary>The octet as sent (0-255); the weight it stands for is one more (<see cref="EffectiveWeight"/>).</summary>
    public byte Weight { get; }

    public int EffectiveWeight => Weight + 1;
}

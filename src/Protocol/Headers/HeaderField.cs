namespace Appliance.Protocol.Headers;

/// <summary>One field line of a <see cref="HeaderCollection"/>; the spans point into the collection's arena and are
/// valid until the collection is next changed.</summary>
public readonly ref struct HeaderField
{
    public HeaderField(KnownHeader known, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        Known = known;
        Name = name;
        Value = value;
    }

    public KnownHeader Known { get; }

    /// <summary>The name as it was added (its letter case preserved).</summary>
    public ReadOnlySpan<byte> Name { get; }

    public ReadOnlySpan<byte> Value { get; }
}

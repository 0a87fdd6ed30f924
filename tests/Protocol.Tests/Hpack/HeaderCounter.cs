using Appliance.Protocol.Hpack;

namespace Appliance.Protocol.Tests.Hpack;

/// <summary>Counts fields and bytes without allocating, for allocation checks.</summary>
internal struct HeaderCounter : IHpackHeaderHandler
{
    public int Count;
    public long Bytes;

    public void OnIndexedHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, long entry) => OnHeader(name, value);

    public void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        Count++;
        Bytes += name.Length + value.Length;
    }
}

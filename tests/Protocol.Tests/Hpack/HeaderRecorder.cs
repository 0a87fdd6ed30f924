using System.Text;
using Appliance.Protocol.Hpack;

namespace Appliance.Protocol.Tests.Hpack;

/// <summary>
/// Collects decoded fields as Latin-1 strings, so every byte (obs-text included) survives the comparison, and for each
/// the table entry it was indexed from (0 for a literal).
/// </summary>
internal struct HeaderRecorder : IHpackHeaderHandler
{
    public HeaderRecorder()
    {
        Fields = [];
        Entries = [];
    }

    public List<(string Name, string Value)> Fields { get; }

    public List<long> Entries { get; }

    public readonly void OnIndexedHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, long entry)
    {
        Fields.Add((Encoding.Latin1.GetString(name), Encoding.Latin1.GetString(value)));
        Entries.Add(entry);
    }

    public readonly void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) => OnIndexedHeader(name, value, 0);
}

using System.Text;
using Appliance.Protocol.Hpack;

namespace Appliance.Protocol.Tests.Hpack;

/// <summary>Collects decoded fields as Latin-1 strings, so every byte (obs-text included) survives the comparison.</summary>
internal struct HeaderRecorder : IHpackHeaderHandler
{
    public HeaderRecorder()
    {
        Fields = [];
    }

    public List<(string Name, string Value)> Fields { get; }

    public readonly void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) =>
        Fields.Add((Encoding.Latin1.GetString(name), Encoding.Latin1.GetString(value)));
}

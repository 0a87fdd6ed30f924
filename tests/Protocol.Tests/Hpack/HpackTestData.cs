using System.Text;
using Appliance.Protocol.Hpack;

namespace Appliance.Protocol.Tests.Hpack;

/// <summary>Hex input, Latin-1 conversion and fragment-wise decoding shared by the HPACK tests.</summary>
internal static class HpackTestData
{
    public static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", string.Empty, StringComparison.Ordinal));

    public static byte[] Latin1(string s) => Encoding.Latin1.GetBytes(s);

    /// <summary>The dynamic table's entries, newest first, as Latin-1 strings.</summary>
    public static List<(string Name, string Value)> Entries(HpackDynamicTable table)
    {
        var entries = new List<(string, string)>();
        for (int i = 1; i <= table.Count; i++)
        {
            entries.Add((Encoding.Latin1.GetString(table.Name(i)), Encoding.Latin1.GetString(table.Value(i))));
        }

        return entries;
    }

    /// <summary>Decodes <paramref name="block"/> fed as the given fragments (cut points), the last with END_HEADERS.</summary>
    public static (HpackStatus Status, List<(string Name, string Value)> Fields) Decode(HpackDecoder decoder, byte[] block, params int[] cuts)
    {
        var recorder = new HeaderRecorder();
        int start = 0;
        HpackStatus status = HpackStatus.Ok;
        foreach (int cut in cuts)
        {
            status = decoder.Decode(block.AsSpan(start, cut - start), endHeaders: false, ref recorder);
            if (status == HpackStatus.CompressionError)
            {
                return (status, recorder.Fields);
            }

            start = cut;
        }

        status = decoder.Decode(block.AsSpan(start), endHeaders: true, ref recorder);
        return (status, recorder.Fields);
    }
}

using System.Buffers.Text;
using Appliance.Protocol.Hpack;

namespace Appliance.Server;

/// <summary>
/// The "Date: ...\r\n" line and its HTTP/2 field, formatted once per second by the heartbeat instead of per
/// response (RFC 9110 §6.6.1 allows this resolution).
/// </summary>
public static class DateHeader
{
    private sealed class Forms(byte[] line)
    {
        public readonly byte[] Line = line;

        // "date" is never indexed (it changes every second), so its field is the same in every connection's blocks.
        public readonly byte[] Hpack = HpackEncoder.EncodeWithoutIndexing("date"u8, line.AsSpan(6, line.Length - 8));
    }

    private static Forms s_forms = new(Format(DateTimeOffset.UtcNow));
    private static long s_second;

    /// <summary>The full header line including CRLF.</summary>
    public static ReadOnlySpan<byte> Line => Volatile.Read(ref s_forms).Line;

    /// <summary>The same date as an HPACK field (RFC 7541 §6.2.2), ready for <see cref="HpackEncoder.WriteEncoded"/>.</summary>
    public static ReadOnlySpan<byte> Hpack => Volatile.Read(ref s_forms).Hpack;

    public static void Update(DateTimeOffset now)
    {
        long second = now.ToUnixTimeSeconds();
        if (second != Interlocked.Read(ref s_second))
        {
            Interlocked.Exchange(ref s_second, second);
            Volatile.Write(ref s_forms, new Forms(Format(now)));
        }
    }

    private static byte[] Format(DateTimeOffset now)
    {
        Span<byte> buf = stackalloc byte[64];
        "Date: "u8.CopyTo(buf);
        Utf8Formatter.TryFormat(now, buf[6..], out int n, new System.Buffers.StandardFormat('R'));
        buf[6 + n] = (byte)'\r';
        buf[7 + n] = (byte)'\n';
        return buf[..(8 + n)].ToArray();
    }

}

using System.Buffers.Text;

namespace Appliance.Server;

/// <summary>
/// The "Date: ...\r\n" line, formatted once per second by the heartbeat instead of per response
/// (RFC 9110 §6.6.1 allows this resolution).
/// </summary>
public static class DateHeader
{
    private static byte[] s_line = Format(DateTimeOffset.UtcNow);
    private static long s_second;

    /// <summary>The full header line including CRLF.</summary>
    public static ReadOnlySpan<byte> Line => Volatile.Read(ref s_line);

    public static void Update(DateTimeOffset now)
    {
        long second = now.ToUnixTimeSeconds();
        if (second != Interlocked.Read(ref s_second))
        {
            Interlocked.Exchange(ref s_second, second);
            Volatile.Write(ref s_line, Format(now));
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

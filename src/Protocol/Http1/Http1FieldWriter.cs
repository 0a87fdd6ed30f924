using System.Buffers;

namespace Appliance.Protocol.Http1;

/// <summary>Writes one "name: value\r\n" field line (RFC 9112 §5) into a buffer writer, with one GetSpan/Advance.</summary>
public static class Http1FieldWriter
{
    public static void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        Span<byte> span = output.GetSpan(name.Length + value.Length + 4);
        name.CopyTo(span);
        int n = name.Length;
        span[n++] = (byte)':';
        span[n++] = (byte)' ';
        value.CopyTo(span[n..]);
        n += value.Length;
        span[n++] = (byte)'\r';
        span[n++] = (byte)'\n';
        output.Advance(n);
    }

    /// <summary>The same into a thread's head buffer, without the interface calls.</summary>
    public static void Write(HeadBuffer output, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) => output.WriteField(name, value);
}

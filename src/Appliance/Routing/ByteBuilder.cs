namespace Appliance.Routing;

/// <summary>Appends bytes into a fixed span and remembers overflow instead of throwing.</summary>
internal ref struct ByteBuilder(Span<byte> buffer)
{
    private readonly Span<byte> _buffer = buffer;
    private int _length;

    public bool Overflowed { get; private set; }

    public readonly ReadOnlySpan<byte> Written => _buffer[.._length];

    /// <summary>Appends a decoded path, percent-encoding what may not appear raw in a URI (RFC 3986 §3.3).</summary>
    public void AppendPathEncoded(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            if (b > 0x20 && b < 0x7F && b is not ((byte)'"' or (byte)'<' or (byte)'>' or (byte)'\\' or (byte)'^' or (byte)'`' or (byte)'{' or (byte)'|' or (byte)'}' or (byte)'#' or (byte)'?'))
            {
                Append([b]);
            }
            else
            {
                Append([(byte)'%', Hex(b >> 4), Hex(b & 0xF)]);
            }
        }

        static byte Hex(int v) => (byte)(v < 10 ? '0' + v : 'A' + v - 10);
    }

    public void Append(scoped ReadOnlySpan<byte> bytes)
    {
        if (_length + bytes.Length > _buffer.Length)
        {
            Overflowed = true;
            return;
        }

        bytes.CopyTo(_buffer[_length..]);
        _length += bytes.Length;
    }
}

using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Appliance.Protocol.Http1;

/// <summary>
/// The calling thread's scratch space for a message head: a head is a score of small writes (status or request line,
/// each field line, the framing), and each write into a connection's PipeWriter costs a GetSpan and an Advance with
/// its segment bookkeeping (about 80 instructions a pair on the proxied path). Here a write is a bounds check and a
/// copy; the finished head goes to the pipe in one write. Only for code that writes a whole head without awaiting in
/// between (the buffer is the thread's, reused by the next head written on it). Allocates only to grow.
/// </summary>
public sealed class HeadBuffer : IBufferWriter<byte>
{
    private const int InitialBytes = 2048;
    private const int KeptBytes = 64 * 1024; // a larger head's buffer is let go after use

    [ThreadStatic]
    private static HeadBuffer? t_current;

    private byte[] _buffer = new byte[InitialBytes];
    private int _used;

    private HeadBuffer()
    {
    }

    /// <summary>This thread's buffer, emptied.</summary>
    public static HeadBuffer Start()
    {
        HeadBuffer b = t_current ??= new HeadBuffer();
        b._used = 0;
        return b;
    }

    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _used);

    public void Write(ReadOnlySpan<byte> value)
    {
        if (_buffer.Length - _used < value.Length)
        {
            Grow(value.Length);
        }

        ShortCopy.Copy(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_buffer), _used), value);
        _used += value.Length;
    }

    /// <summary>One "name: value\r\n" field line (RFC 9112 §5): a bounds check and two copies.</summary>
    public void WriteField(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        long total = (long)name.Length + value.Length + 4;
        if (_buffer.Length - _used < total)
        {
            Grow((int)Math.Min(total, int.MaxValue));
        }

        int length = (int)total;

        // Room for the whole line was made above: the writes below stay inside it.
        ref byte line = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_buffer), _used);
        int n = name.Length;
        ShortCopy.Copy(ref line, name);
        Unsafe.Add(ref line, n) = (byte)':';
        Unsafe.Add(ref line, n + 1) = (byte)' ';
        ShortCopy.Copy(ref Unsafe.Add(ref line, n + 2), value);
        Unsafe.Add(ref line, length - 2) = (byte)'\r';
        Unsafe.Add(ref line, length - 1) = (byte)'\n';
        _used += length;
    }

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > _buffer.Length - _used)
        {
            throw new InvalidOperationException("advanced past the span given");
        }

        _used += count;
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        if (_buffer.Length - _used < Math.Max(sizeHint, 1))
        {
            Grow(sizeHint);
        }

        return _buffer.AsSpan(_used);
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        GetSpan(sizeHint);
        return _buffer.AsMemory(_used);
    }

    /// <summary>Writes the head into <paramref name="output"/> in one write and empties the buffer.</summary>
    public void CopyTo(IBufferWriter<byte> output) => CopyTo(output, 0);

    /// <summary>Writes the head from byte <paramref name="from"/> on (what was not sent some other way), then empties the buffer.</summary>
    public void CopyTo(IBufferWriter<byte> output, int from)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(from);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(from, _used);
        if (from < _used)
        {
            output.Write(_buffer.AsSpan(from, _used - from));
        }

        _used = 0;
        if (_buffer.Length > KeptBytes)
        {
            _buffer = new byte[InitialBytes];
        }
    }

    private void Grow(int needed)
    {
        long size = Math.Max((long)_buffer.Length * 2, (long)_used + Math.Max(needed, 1));
        if ((long)_used + needed > Array.MaxLength)
        {
            // The writes after a Grow are unchecked: a head past the largest array (or a length that overflowed)
            // must stop here rather than write past the end.
            throw new InvalidOperationException("the message head is larger than a buffer can hold");
        }

        Array.Resize(ref _buffer, (int)Math.Min(Array.MaxLength, size));
    }
}

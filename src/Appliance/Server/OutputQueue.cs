using System.Buffers;

namespace Appliance.Server;

/// <summary>
/// Bytes written by many producers under their owner's lock and taken, all at once, by one copy loop that sends them:
/// the queue between an HTTP/2 connection's frame writers and its socket. Not thread-safe itself; the owner's lock
/// guards every call.
/// </summary>
/// <remarks>
/// Segments are 16 KiB (a TLS record's payload) and filled to the end (DATA payloads and header blocks span segments;
/// only a frame header, or a small control frame, that does not fit a segment's last bytes starts the next one), so a
/// batch is a run of full segments and one partial one: each goes to the stream as one write, with no gathering copy. They are rented when bytes come and
/// given back by the copy loop once sent. It replaced a <c>Pipe</c>, whose every GetSpan, Advance and flush took a lock
/// of its own under the owner's (about 800 instructions per HTTP/2 response, perf/RESULTS.md).
/// </remarks>
internal sealed class OutputQueue : IBufferWriter<byte>
{
    public const int SegmentSize = 16 * 1024;

    private byte[]? _current;
    private int _written;
    private ArraySegment<byte>[] _full = new ArraySegment<byte>[4];
    private int _fullCount;

    /// <summary>Whether nothing waits to be taken.</summary>
    public bool IsEmpty => _written == 0 && _fullCount == 0;

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        EnsureSpace(sizeHint);
        return _current.AsSpan(_written);
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        EnsureSpace(sizeHint);
        return _current.AsMemory(_written);
    }

    public void Advance(int count)
    {
        if (_current is null || (uint)count > (uint)(_current.Length - _written))
        {
            throw new ArgumentOutOfRangeException(nameof(count), "Advanced past the memory the queue gave.");
        }

        _written += count;
    }

    /// <summary>
    /// Hands over everything written so far, in order: the segments go into <paramref name="batch"/> (whose first
    /// entries must be empty; it may be swapped for a larger array) and belong to the caller, who returns their arrays
    /// to <see cref="ArrayPool{T}.Shared"/>. Returns how many there are.
    /// </summary>
    public int TakeAll(ref ArraySegment<byte>[] batch)
    {
        if (_written > 0)
        {
            Push(new ArraySegment<byte>(_current!, 0, _written));
            _current = null;
            _written = 0;
        }

        int count = _fullCount;
        (batch, _full) = (_full, batch);
        _fullCount = 0;
        return count;
    }

    /// <summary>Gives every segment back to the pool, unsent (the connection is gone).</summary>
    public void Release()
    {
        for (int i = 0; i < _fullCount; i++)
        {
            ArrayPool<byte>.Shared.Return(_full[i].Array!);
            _full[i] = default;
        }

        _fullCount = 0;
        if (_current is { } current)
        {
            _current = null;
            _written = 0;
            ArrayPool<byte>.Shared.Return(current);
        }
    }

    private void EnsureSpace(int sizeHint)
    {
        int need = Math.Max(sizeHint, 1);
        if (_current is not null)
        {
            if (_current.Length - _written >= need)
            {
                return;
            }

            if (_written > 0)
            {
                Push(new ArraySegment<byte>(_current, 0, _written));
            }
            else
            {
                ArrayPool<byte>.Shared.Return(_current);
            }

            _current = null;
            _written = 0;
        }

        _current = ArrayPool<byte>.Shared.Rent(Math.Max(need, SegmentSize));
    }

    private void Push(ArraySegment<byte> segment)
    {
        if (_fullCount == _full.Length)
        {
            Array.Resize(ref _full, _full.Length * 2);
        }

        _full[_fullCount++] = segment;
    }
}

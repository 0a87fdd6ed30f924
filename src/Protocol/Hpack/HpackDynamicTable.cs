namespace Appliance.Protocol.Hpack;

/// <summary>
/// The HPACK dynamic table (RFC 7541 §2.3.2, §4): a FIFO of (name, value) entries, newest at index 1. Entry bytes live
/// in one arena used as a ring: an entry is always stored contiguously, and when it does not fit before the end of
/// the arena it starts again at offset 0. With an arena twice the largest size the table may ever have, that wrap
/// can never overwrite a live entry (live bytes never exceed the maximum size), so nothing is ever moved or allocated
/// after construction.
/// </summary>
public sealed class HpackDynamicTable
{
    /// <summary>RFC 7541 §4.1: an entry's size is its name and value lengths plus 32.</summary>
    public const int EntryOverhead = 32;

    private readonly byte[] _arena;
    private readonly Entry[] _entries;
    private int _newest = -1; // slot of index 1 in _entries
    private int _count;
    private int _end; // arena offset just past the newest entry's bytes

    /// <param name="sizeLimit">The largest maximum size the table will ever be given (e.g. the SETTINGS_HEADER_TABLE_SIZE
    /// a decoder advertises); it starts at this maximum size.</param>
    public HpackDynamicTable(int sizeLimit)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sizeLimit);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(sizeLimit, int.MaxValue / 2);
        SizeLimit = sizeLimit;
        MaxSize = sizeLimit;
        _arena = new byte[2 * sizeLimit];
        _entries = new Entry[(sizeLimit / EntryOverhead) + 1];
    }

    /// <summary>The bound on <see cref="MaxSize"/> fixed at construction.</summary>
    public int SizeLimit { get; }

    /// <summary>The current maximum size (§4.2), changed by <see cref="SetMaxSize"/>.</summary>
    public int MaxSize { get; private set; }

    /// <summary>The sum of the entries' sizes (§4.1).</summary>
    public int Size { get; private set; }

    public int Count => _count;

    /// <summary>How many entries were ever inserted: entry number <c>n</c> (1-based) is at index
    /// <see cref="IndexOfInsertion"/>(n) while it is in the table.</summary>
    public long Inserted { get; private set; }

    /// <summary>The current index of the <paramref name="insertion"/>th entry inserted, or 0 once it was evicted.</summary>
    public int IndexOfInsertion(long insertion)
    {
        long index = Inserted - insertion + 1;
        return index >= 1 && index <= _count ? (int)index : 0;
    }

    /// <summary>The name of entry <paramref name="index"/>, 1 being the newest. The span is valid until the next
    /// insertion or size change.</summary>
    public ReadOnlySpan<byte> Name(int index)
    {
        ref readonly Entry e = ref EntryAt(index);
        return _arena.AsSpan(e.Offset, e.NameLength);
    }

    /// <summary>The value of entry <paramref name="index"/>, 1 being the newest.</summary>
    public ReadOnlySpan<byte> Value(int index)
    {
        ref readonly Entry e = ref EntryAt(index);
        return _arena.AsSpan(e.Offset + e.NameLength, e.ValueLength);
    }

    /// <summary>Name and value of entry <paramref name="index"/> with one lookup.</summary>
    public void GetEntry(int index, out ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        ref readonly Entry e = ref EntryAt(index);
        name = _arena.AsSpan(e.Offset, e.NameLength);
        value = _arena.AsSpan(e.Offset + e.NameLength, e.ValueLength);
    }

    /// <summary>
    /// Adds an entry at index 1, first evicting the oldest entries until it fits (§4.4). An entry larger than the
    /// maximum size empties the table and is not added. <paramref name="name"/> may point into this table (a literal
    /// whose name is indexed, §4.4: the referenced entry may be the one evicted): it is copied before anything else
    /// is written.
    /// </summary>
    public void Insert(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        long entrySize = (long)name.Length + value.Length + EntryOverhead;
        if (entrySize > MaxSize)
        {
            Clear();
            return;
        }

        EvictUntil(MaxSize - (int)entrySize);

        int length = name.Length + value.Length;
        int offset;
        if (_count == 0)
        {
            offset = 0;
        }
        else
        {
            int oldest = _entries[OldestSlot].Offset;
            int newest = _entries[_newest].Offset;

            // Live bytes run from the oldest entry to _end, possibly wrapped past the end of the arena. Not wrapped:
            // append, or restart at 0 when the arena end is near; the oldest entry then starts past SizeLimit >= length.
            // Wrapped: append, which ends before the oldest entry since live bytes + length <= MaxSize < the wrap point.
            offset = oldest <= newest && _end + length > _arena.Length ? 0 : _end;
        }

        // CopyTo has memmove semantics, so a name read from an evicted entry at the same place is still copied right.
        name.CopyTo(_arena.AsSpan(offset));
        value.CopyTo(_arena.AsSpan(offset + name.Length));
        _end = offset + length;

        _newest = _newest + 1 == _entries.Length ? 0 : _newest + 1;
        _entries[_newest] = new Entry(offset, name.Length, value.Length);
        _count++;
        Inserted++;
        Size += (int)entrySize;
    }

    /// <summary>Changes the maximum size, evicting entries to fit (§4.3). It cannot exceed <see cref="SizeLimit"/>.</summary>
    public void SetMaxSize(int maxSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxSize, SizeLimit);
        MaxSize = maxSize;
        EvictUntil(maxSize);
    }

    /// <summary>Evicts every entry (what inserting an entry larger than the maximum size does, §4.4).</summary>
    public void Clear()
    {
        _count = 0;
        _newest = -1;
        _end = 0;
        Size = 0;
    }

    /// <summary>
    /// Searches for <paramref name="name"/>: <paramref name="value"/>, newest first. Returns the table index (1-based) of
    /// the full match (<paramref name="fullMatch"/> true), else of the newest entry with that name, else 0.
    /// </summary>
    public int Find(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, out bool fullMatch)
    {
        fullMatch = false;
        int nameMatch = 0;
        int slot = _newest;
        for (int index = 1; index <= _count; index++)
        {
            ref readonly Entry e = ref _entries[slot];
            if (e.NameLength == name.Length && _arena.AsSpan(e.Offset, e.NameLength).SequenceEqual(name))
            {
                if (e.ValueLength == value.Length && _arena.AsSpan(e.Offset + e.NameLength, e.ValueLength).SequenceEqual(value))
                {
                    fullMatch = true;
                    return index;
                }

                if (nameMatch == 0)
                {
                    nameMatch = index;
                }
            }

            slot = slot == 0 ? _entries.Length - 1 : slot - 1;
        }

        return nameMatch;
    }

    private int OldestSlot
    {
        get
        {
            int slot = _newest - _count + 1;
            return slot < 0 ? slot + _entries.Length : slot;
        }
    }

    private ref readonly Entry EntryAt(int index)
    {
        if ((uint)(index - 1) >= (uint)_count)
        {
            throw new ArgumentOutOfRangeException(nameof(index));
        }

        int slot = _newest - index + 1;
        return ref _entries[slot < 0 ? slot + _entries.Length : slot];
    }

    private void EvictUntil(int size)
    {
        while (Size > size)
        {
            ref readonly Entry oldest = ref _entries[OldestSlot];
            Size -= oldest.NameLength + oldest.ValueLength + EntryOverhead;
            _count--;
        }

        if (_count == 0)
        {
            Clear();
        }
    }

    private readonly struct Entry(int offset, int nameLength, int valueLength)
    {
        public readonly int Offset = offset;
        public readonly int NameLength = nameLength;
        public readonly int ValueLength = valueLength;
    }
}

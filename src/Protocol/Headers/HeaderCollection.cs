using System.Buffers;
using System.Text;

namespace Appliance.Protocol.Headers;

/// <summary>
/// The field lines of one request or response, in arrival order, stored without per-field allocations: names and
/// values are copied into one byte arena and described by an entry array, both rented from
/// <see cref="ArrayPool{T}"/>. Meant to be pooled: <see cref="Clear"/> keeps the buffers, <see cref="Dispose"/>
/// returns them.
/// </summary>
/// <remarks>
/// Spans handed out (indexer, <see cref="TryGetValue(KnownHeader, out ReadOnlySpan{byte})"/>, enumeration) point into
/// the arena and are valid only until the next <see cref="Add(KnownHeader, ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>,
/// <see cref="Clear"/> or <see cref="Dispose"/>: growing the arena returns the old one to the pool. Not thread-safe.
/// </remarks>
public sealed class HeaderCollection : IDisposable
{
    private const int DefaultArenaBytes = 2048;
    private const int DefaultCapacity = 16;

    private readonly int _initialArenaBytes;
    private readonly int _initialCapacity;
    private byte[] _arena = [];
    private int _arenaUsed;
    private Entry[] _entries = [];
    private int _count;

    // Bit n set when at least one field with KnownHeader n is present: absent lookups cost one test.
    private ulong _present;

    public HeaderCollection()
        : this(DefaultArenaBytes, DefaultCapacity)
    {
    }

    public HeaderCollection(int initialArenaBytes, int initialCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(initialArenaBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(initialCapacity);
        _initialArenaBytes = initialArenaBytes;
        _initialCapacity = initialCapacity;
    }

    public int Count => _count;

    /// <summary>Bytes of names and values currently stored (the arena's used part).</summary>
    public int ByteCount => _arenaUsed;

    /// <summary>Whether rented buffers are held (false after <see cref="Dispose"/>, until the next field is added).</summary>
    public bool HoldsBuffers => _arena.Length > 0 || _entries.Length > 0;

    public HeaderField this[int index]
    {
        get
        {
            if ((uint)index >= (uint)_count)
            {
                throw new ArgumentOutOfRangeException(nameof(index));
            }

            ref readonly Entry e = ref _entries[index];
            return new HeaderField(e.Known, _arena.AsSpan(e.NameOffset, e.NameLength), _arena.AsSpan(e.ValueOffset, e.ValueLength));
        }
    }

    /// <summary>Appends a field line. <paramref name="known"/> must be the lookup of <paramref name="name"/> (the parser
    /// already has it); the name is stored as given.</summary>
    public void Add(KnownHeader known, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        if (_count == _entries.Length)
        {
            GrowEntries();
        }

        int needed = name.Length + value.Length;
        if (_arena.Length - _arenaUsed < needed)
        {
            GrowArena(needed);
        }

        int nameOffset = _arenaUsed;
        ShortCopy.To(name, _arena.AsSpan(nameOffset));
        int valueOffset = nameOffset + name.Length;
        ShortCopy.To(value, _arena.AsSpan(valueOffset));
        _arenaUsed = valueOffset + value.Length;

        _entries[_count++] = new Entry(known, nameOffset, name.Length, valueOffset, value.Length);
        _present |= Bit(known);
    }

    /// <summary>Appends a known field under its canonical name (for headers the engine writes itself).</summary>
    public void Add(KnownHeader known, ReadOnlySpan<byte> value)
    {
        if (known == KnownHeader.None)
        {
            throw new ArgumentException("A known header is required when no name is given.", nameof(known));
        }

        Add(known, KnownHeaders.Name(known), value);
    }

    /// <summary>Appends a field line, looking its name up.</summary>
    public void Add(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) => Add(KnownHeaders.Lookup(name), name, value);

    public bool Contains(KnownHeader known) => known != KnownHeader.None && (_present & Bit(known)) != 0;

    /// <summary>The value of the first field line of <paramref name="known"/>.</summary>
    public bool TryGetValue(KnownHeader known, out ReadOnlySpan<byte> value)
    {
        if (Contains(known))
        {
            Entry[] entries = _entries;
            for (int i = 0; i < _count; i++)
            {
                if (entries[i].Known == known)
                {
                    value = _arena.AsSpan(entries[i].ValueOffset, entries[i].ValueLength);
                    return true;
                }
            }
        }

        value = default;
        return false;
    }

    /// <summary>The value of the first field line named <paramref name="name"/>, compared case-insensitively.</summary>
    public bool TryGetValue(ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        KnownHeader known = KnownHeaders.Lookup(name);
        if (known != KnownHeader.None)
        {
            return TryGetValue(known, out value);
        }

        int index = IndexOfUnknown(name, 0);
        if (index >= 0)
        {
            value = _arena.AsSpan(_entries[index].ValueOffset, _entries[index].ValueLength);
            return true;
        }

        value = default;
        return false;
    }

    /// <summary>How many field lines carry <paramref name="known"/>; for <see cref="KnownHeader.None"/>, how many
    /// have a name that is not known.</summary>
    public int CountOf(KnownHeader known)
    {
        if (known != KnownHeader.None && (_present & Bit(known)) == 0)
        {
            return 0;
        }

        int n = 0;
        Entry[] entries = _entries;
        for (int i = 0; i < _count; i++)
        {
            if (entries[i].Known == known) n++;
        }

        return n;
    }

    /// <summary>Removes every field line of <paramref name="known"/>; returns how many were removed.</summary>
    public int Remove(KnownHeader known)
    {
        if (known != KnownHeader.None && (_present & Bit(known)) == 0)
        {
            return 0;
        }

        int removed = RemoveWhere(known, default, byName: false);
        _present &= ~Bit(known);
        return removed;
    }

    /// <summary>
    /// Removes every field line of any of these known fields in one pass over the lines (a proxy's hop-by-hop set);
    /// returns how many.
    /// </summary>
    public int Remove(params ReadOnlySpan<KnownHeader> known)
    {
        ulong mask = 0;
        foreach (KnownHeader k in known)
        {
            mask |= Bit(k);
        }

        mask &= _present;
        if (mask == 0)
        {
            return 0;
        }

        Entry[] entries = _entries;
        int write = 0;
        for (int read = 0; read < _count; read++)
        {
            if ((Bit(entries[read].Known) & mask) == 0)
            {
                if (write != read)
                {
                    entries[write] = entries[read];
                }

                write++;
            }
        }

        int removed = _count - write;
        _count = write;
        _present &= ~mask;
        return removed;
    }

    /// <summary>Removes every field line named <paramref name="name"/> (case-insensitive); returns how many.</summary>
    public int Remove(ReadOnlySpan<byte> name)
    {
        KnownHeader known = KnownHeaders.Lookup(name);
        return known != KnownHeader.None ? Remove(known) : RemoveWhere(KnownHeader.None, name, byName: true);
    }

    /// <summary>Removes the field line at <paramref name="index"/>, keeping the order of the others.</summary>
    public void RemoveAt(int index)
    {
        if ((uint)index >= (uint)_count)
        {
            throw new ArgumentOutOfRangeException(nameof(index));
        }

        KnownHeader known = _entries[index].Known;
        Array.Copy(_entries, index + 1, _entries, index, _count - index - 1);
        _count--;
        if (known != KnownHeader.None && CountOf(known) == 0)
        {
            _present &= ~Bit(known);
        }
    }

    /// <summary>Forgets all fields and keeps the rented buffers for the next message.</summary>
    public void Clear()
    {
        _count = 0;
        _arenaUsed = 0;
        _present = 0;
    }

    /// <summary>Returns the buffers to the pool. The collection may be used again afterwards (it rents anew).</summary>
    public void Dispose()
    {
        Clear();
        if (_arena.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_arena);
            _arena = [];
        }

        if (_entries.Length > 0)
        {
            ArrayPool<Entry>.Shared.Return(_entries);
            _entries = [];
        }
    }

    public Enumerator GetEnumerator() => new(this);

    /// <summary>"Name: value" for logs and diagnostics (allocates; bytes are decoded as Latin-1, so obs-text survives).</summary>
    public string GetString(int index)
    {
        HeaderField field = this[index];
        return string.Concat(Encoding.Latin1.GetString(field.Name), ": ", Encoding.Latin1.GetString(field.Value));
    }

    /// <summary>The first value of <paramref name="known"/> as a string, or null; for non-hot paths (allocates).</summary>
    public string? GetValueString(KnownHeader known) => TryGetValue(known, out ReadOnlySpan<byte> value) ? Encoding.Latin1.GetString(value) : null;

    /// <summary>The value at <paramref name="index"/> as a string; for non-hot paths (allocates).</summary>
    public string GetValueString(int index) => Encoding.Latin1.GetString(this[index].Value);

    public override string ToString()
    {
        var sb = new StringBuilder();
        for (int i = 0; i < _count; i++)
        {
            sb.Append(GetString(i)).Append('\n');
        }

        return sb.ToString();
    }

    private static ulong Bit(KnownHeader known) => known == KnownHeader.None ? 0 : 1UL << (int)known;

    private int IndexOfUnknown(ReadOnlySpan<byte> name, int start)
    {
        Entry[] entries = _entries;
        for (int i = start; i < _count; i++)
        {
            ref readonly Entry e = ref entries[i];
            if (e.Known == KnownHeader.None && e.NameLength == name.Length
                && Ascii.EqualsIgnoreCase(_arena.AsSpan(e.NameOffset, e.NameLength), name))
            {
                return i;
            }
        }

        return -1;
    }

    private int RemoveWhere(KnownHeader known, ReadOnlySpan<byte> name, bool byName)
    {
        // Compacts entries in place; the arena bytes of removed fields stay until Clear.
        Entry[] entries = _entries;
        int write = 0;
        for (int read = 0; read < _count; read++)
        {
            ref readonly Entry e = ref entries[read];
            bool remove = byName
                ? e.Known == KnownHeader.None && e.NameLength == name.Length && Ascii.EqualsIgnoreCase(_arena.AsSpan(e.NameOffset, e.NameLength), name)
                : e.Known == known;
            if (!remove)
            {
                if (write != read)
                {
                    entries[write] = e;
                }

                write++;
            }
        }

        int removed = _count - write;
        _count = write;
        return removed;
    }

    private void GrowEntries()
    {
        int size = _entries.Length == 0 ? _initialCapacity : _entries.Length * 2;
        Entry[] next = ArrayPool<Entry>.Shared.Rent(size);
        Array.Copy(_entries, next, _count);
        if (_entries.Length > 0)
        {
            ArrayPool<Entry>.Shared.Return(_entries);
        }

        _entries = next;
    }

    private void GrowArena(int needed)
    {
        long size = Math.Max(_arena.Length == 0 ? _initialArenaBytes : (long)_arena.Length * 2, (long)_arenaUsed + needed);
        if (size > Array.MaxLength)
        {
            throw new InvalidOperationException("Header arena would exceed the maximum array length.");
        }

        byte[] next = ArrayPool<byte>.Shared.Rent((int)size);
        _arena.AsSpan(0, _arenaUsed).CopyTo(next);
        if (_arena.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_arena);
        }

        _arena = next;
    }

    private readonly struct Entry(KnownHeader known, int nameOffset, int nameLength, int valueOffset, int valueLength)
    {
        public readonly KnownHeader Known = known;
        public readonly int NameOffset = nameOffset;
        public readonly int NameLength = nameLength;
        public readonly int ValueOffset = valueOffset;
        public readonly int ValueLength = valueLength;
    }

    /// <summary>Allocation-free enumerator over the field lines in order.</summary>
    public ref struct Enumerator
    {
        private readonly HeaderCollection _headers;
        private int _index;

        internal Enumerator(HeaderCollection headers)
        {
            _headers = headers;
            _index = -1;
        }

        public readonly HeaderField Current => _headers[_index];

        public bool MoveNext() => ++_index < _headers._count;
    }
}

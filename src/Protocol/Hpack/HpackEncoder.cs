namespace Appliance.Protocol.Hpack;

/// <summary>
/// Encodes header blocks (RFC 7541) for one HTTP/2 connection direction, keeping its dynamic table.
/// </summary>
/// <remarks>
/// <para>Per block: <see cref="BeginBlock"/> first (it emits a pending table size update, §4.2), then
/// <see cref="EncodeStatus"/> and <see cref="Encode"/> for each field. Each method writes at
/// <c>destination[written..]</c> and advances <c>written</c>; when the rest of the destination is too small it returns
/// false having written nothing and changed nothing, so the caller can grow the buffer (keeping what is written) or
/// send what it has as a HEADERS/CONTINUATION fragment, and call again with the same field. Never restart a block
/// whose fields were already encoded: the encoder's table has recorded them.</para>
/// <para>Strategy: a field in the static or dynamic table is one index. Otherwise the name is indexed when possible
/// and the value written as a literal, Huffman-coded when shorter; fields whose values tend to repeat (content-type,
/// server, cache-control, vary…) are added to the dynamic table, those that change with every message
/// (content-length, date, etag, last-modified…) are not, and credentials (authorization, proxy-authorization, cookie,
/// set-cookie, or any field passed as sensitive) use the never-indexed form (§6.2.3, §7.1.3) so that no intermediary
/// indexes them either. A repeated response therefore costs a few bytes per cached field.</para>
/// <para>Not thread-safe: use it (including <see cref="SetPeerMaxTableSize"/>) from the single frame writer, between
/// blocks.</para>
/// </remarks>
public sealed class HpackEncoder
{
    private const int RecentSlots = 16;

    private readonly HpackDynamicTable _table;

    // For each of a few name hashes, the insertion number of the dynamic-table entry last written for a field with such
    // a name: a response's repeating fields (content-type, server, vary…) are then found without the static and
    // dynamic table searches. Only a hint: the entry is compared with the field before its index is used.
    private readonly long[] _recent = new long[RecentSlots];
    private bool _updatePending;
    private int _smallestPendingSize;

    /// <param name="maxDynamicTableSize">The largest dynamic table this encoder will use, whatever the peer allows.</param>
    public HpackEncoder(int maxDynamicTableSize = HpackDecoder.DefaultMaxDynamicTableSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxDynamicTableSize);
        _table = new HpackDynamicTable(maxDynamicTableSize);

        // The peer's decoder starts at the protocol default (RFC 9113 §6.5.2); say so if we will use less.
        int initial = Math.Min(maxDynamicTableSize, HpackDecoder.DefaultMaxDynamicTableSize);
        _table.SetMaxSize(initial);
        if (initial != HpackDecoder.DefaultMaxDynamicTableSize)
        {
            _updatePending = true;
            _smallestPendingSize = initial;
        }
    }

    private enum FieldKind : byte
    {
        Normal,
        Volatile,
        Sensitive,
    }

    /// <summary>The dynamic table, for tests and diagnostics.</summary>
    internal HpackDynamicTable Table => _table;

    /// <summary>
    /// Applies the peer's SETTINGS_HEADER_TABLE_SIZE. The table shrinks now; the next <see cref="BeginBlock"/> signals
    /// the change (§4.2: the smallest size since the last block, then the final one).
    /// </summary>
    public void SetPeerMaxTableSize(int peerMaxTableSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(peerMaxTableSize);
        int size = Math.Min(peerMaxTableSize, _table.SizeLimit);
        if (size == _table.MaxSize && !_updatePending)
        {
            return;
        }

        _table.SetMaxSize(size);
        _smallestPendingSize = _updatePending ? Math.Min(_smallestPendingSize, size) : size;
        _updatePending = true;
    }

    /// <summary>Starts a header block: writes the pending dynamic table size updates, if any (§6.3).</summary>
    public bool BeginBlock(Span<byte> destination, ref int written)
    {
        if (!_updatePending)
        {
            return true;
        }

        int final = _table.MaxSize;
        bool twoUpdates = _smallestPendingSize < final;
        int length = HpackIntegers.EncodedLength(final, 5) + (twoUpdates ? HpackIntegers.EncodedLength(_smallestPendingSize, 5) : 0);
        Span<byte> dest = destination[written..];
        if (dest.Length < length)
        {
            return false;
        }

        int n = 0;
        if (twoUpdates)
        {
            HpackIntegers.TryEncode(_smallestPendingSize, 5, 0x20, dest, out n);
        }

        HpackIntegers.TryEncode(final, 5, 0x20, dest[n..], out _);
        written += length;
        _updatePending = false;
        return true;
    }

    /// <summary>
    /// Writes :status: one byte for the statuses of the static table (200, 204, 206, 304, 400, 404, 500), otherwise a
    /// five-byte literal with the indexed name (not added to the table).
    /// </summary>
    public bool EncodeStatus(int status, Span<byte> destination, ref int written)
    {
        int index = status switch
        {
            200 => HpackStaticTable.Status200,
            204 => HpackStaticTable.Status204,
            206 => HpackStaticTable.Status206,
            304 => HpackStaticTable.Status304,
            400 => HpackStaticTable.Status400,
            404 => HpackStaticTable.Status404,
            500 => HpackStaticTable.Status500,
            _ => 0,
        };

        Span<byte> dest = destination[written..];
        if (index != 0)
        {
            if (dest.IsEmpty)
            {
                return false;
            }

            dest[0] = (byte)(0x80 | index);
            written++;
            return true;
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(status, 100);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(status, 999);
        if (dest.Length < 5)
        {
            return false;
        }

        // §6.2.2 literal without indexing (0000 + 4-bit name index) naming entry 8, ":status", then a raw 3-byte
        // string: Huffman saves nothing on three digits.
        dest[0] = HpackStaticTable.Status200;
        dest[1] = 3;
        dest[2] = (byte)('0' + (status / 100));
        dest[3] = (byte)('0' + (status / 10 % 10));
        dest[4] = (byte)('0' + (status % 10));
        written += 5;
        return true;
    }

    /// <summary>
    /// Writes one field. <paramref name="lowercaseName"/> must already be lowercase (RFC 9113 §8.2.1) and the value
    /// valid; nothing is checked here. <paramref name="sensitive"/> forces the never-indexed form (§6.2.3).
    /// </summary>
    public bool Encode(ReadOnlySpan<byte> lowercaseName, ReadOnlySpan<byte> value, Span<byte> destination, ref int written, bool sensitive = false)
    {
        ReadOnlySpan<byte> name = lowercaseName;
        if (!sensitive && !name.IsEmpty)
        {
            int recent = _table.IndexOfInsertion(_recent[RecentSlot(name)]);
            if (recent != 0)
            {
                _table.GetEntry(recent, out ReadOnlySpan<byte> entryName, out ReadOnlySpan<byte> entryValue);
                if (entryValue.SequenceEqual(value) && entryName.SequenceEqual(name))
                {
                    return WriteIndexed(HpackStaticTable.Count + recent, destination, ref written);
                }
            }
        }

        FieldKind kind = sensitive ? FieldKind.Sensitive : Classify(name);
        int nameIndex = HpackStaticTable.Find(name, value, out bool fullMatch);
        if (kind == FieldKind.Sensitive)
        {
            // Only the name may come from a table; the value is never matched against (or added to) one.
            if (nameIndex == 0 && _table.Count != 0)
            {
                int dynamicIndex = _table.Find(name, default, out _);
                nameIndex = dynamicIndex == 0 ? 0 : HpackStaticTable.Count + dynamicIndex;
            }
        }
        else if (fullMatch)
        {
            return WriteIndexed(nameIndex, destination, ref written);
        }
        else if (kind == FieldKind.Normal && _table.Count != 0)
        {
            // Volatile fields are never added, so the dynamic table has nothing for them.
            int dynamicIndex = _table.Find(name, value, out fullMatch);
            if (fullMatch)
            {
                _recent[RecentSlot(name)] = _table.Inserted - dynamicIndex + 1;
                return WriteIndexed(HpackStaticTable.Count + dynamicIndex, destination, ref written);
            }

            if (nameIndex == 0 && dynamicIndex != 0)
            {
                nameIndex = HpackStaticTable.Count + dynamicIndex;
            }
        }

        bool insert = kind == FieldKind.Normal && ShouldIndex(name, value);

        // §6.2.1 with incremental indexing: 01 + 6-bit index; §6.2.2 without: 0000 + 4 bits; §6.2.3 never: 0001 + 4 bits.
        byte flags = insert ? (byte)0x40 : kind == FieldKind.Sensitive ? (byte)0x10 : (byte)0x00;
        int prefixBits = insert ? 6 : 4;

        if (!TryWriteLiteral(nameIndex, prefixBits, flags, name, value, destination[written..], out int length))
        {
            return false;
        }

        written += length;
        if (insert)
        {
            _table.Insert(name, value);
            _recent[RecentSlot(name)] = _table.Inserted; // (if it did not fit, that entry is gone and the hint misses)
        }

        return true;
    }

    /// <summary>
    /// Writes content-length as <see cref="Encode"/> would (a literal without indexing naming static entry 28, the
    /// digits Huffman-coded when shorter), without the table searches that find out what it already knows: every
    /// response with a length has one, and its value changes from response to response.
    /// </summary>
    [System.Runtime.CompilerServices.SkipLocalsInit] // the digits are written before they are read
    public static bool EncodeContentLength(long length, Span<byte> destination, ref int written)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length < 10_000_000_000)
        {
            return EncodeShortContentLength((ulong)length, destination, ref written);
        }

        Span<byte> digits = stackalloc byte[20];
        System.Buffers.Text.Utf8Formatter.TryFormat(length, digits, out int n);
        if (!TryWriteLiteral(HpackStaticTable.ContentLength, 4, 0x00, default, digits[..n], destination[written..], out int fieldLength))
        {
            return false;
        }

        written += fieldLength;
        return true;
    }

    /// <summary>
    /// <see cref="EncodeContentLength"/> for up to ten digits, without the general literal path: the digits' Huffman
    /// codes (RFC 7541 Appendix B: '0'-'2' five bits, '3'-'9' six) fit one 64-bit word, and the string is
    /// Huffman-coded exactly when that is shorter, as <see cref="StringLength"/> decides. Same bytes, a fifth the work.
    /// </summary>
    [System.Runtime.CompilerServices.SkipLocalsInit] // the digits are written before they are read
    private static bool EncodeShortContentLength(ulong length, Span<byte> destination, ref int written)
    {
        // The digits from the last, right-aligned; the Huffman codes built up from the last at the same time.
        Span<byte> digits = stackalloc byte[10];
        int start = digits.Length;
        ulong bits = 0;
        int bitCount = 0;
        do
        {
            (length, ulong digit) = Math.DivRem(length, 10);
            digits[--start] = (byte)('0' + digit);
            bits |= (digit <= 2 ? digit : 0x16 + digit) << bitCount;
            bitCount += digit <= 2 ? 5 : 6;
        }
        while (length != 0);

        int count = digits.Length - start;
        int huffmanLength = (bitCount + 7) >> 3;
        bool huffman = huffmanLength < count;
        int valueLength = huffman ? huffmanLength : count;
        Span<byte> dest = destination[written..];
        if (dest.Length < 3 + valueLength)
        {
            return false;
        }

        // §6.2.2 literal without indexing, name index 28 (content-length) on a 4-bit prefix: 15, then 28 - 15.
        dest[0] = 0x0F;
        dest[1] = HpackStaticTable.ContentLength - 15;
        dest[2] = (byte)((huffman ? 0x80 : 0) | valueLength); // under 127: one byte (§5.1)
        if (huffman)
        {
            int pad = (huffmanLength << 3) - bitCount; // §5.2: the last byte is filled with the EOS code's leading 1s
            bits = (bits << pad) | ((1UL << pad) - 1);
            for (int i = huffmanLength - 1; i >= 0; i--)
            {
                dest[3 + i] = (byte)bits;
                bits >>= 8;
            }
        }
        else
        {
            ShortCopy.To(digits[start..], dest[3..]);
        }

        written += 3 + valueLength;
        return true;
    }

    private static int RecentSlot(ReadOnlySpan<byte> name) => name.IsEmpty ? 0 : (name.Length + name[0] + (3 * name[^1])) & (RecentSlots - 1);

    /// <summary>
    /// The representation <see cref="Encode"/> gives a field whose name marks it as changing with every message
    /// (date, etag, age…): a literal without indexing (§6.2.2), its name indexed from the static table when there,
    /// its value Huffman-coded when shorter. It depends on no table, so it can be made once and written into any
    /// connection's blocks with <see cref="WriteEncoded"/>: the server's date line, say, once a second.
    /// </summary>
    public static byte[] EncodeWithoutIndexing(ReadOnlySpan<byte> lowercaseName, ReadOnlySpan<byte> value)
    {
        int nameIndex = HpackStaticTable.Find(lowercaseName, value, out _);
        byte[] field = new byte[HpackIntegers.EncodedLength(nameIndex, 4) + StringLength(lowercaseName, out _, out _) + StringLength(value, out _, out _)];
        TryWriteLiteral(nameIndex, 4, 0x00, lowercaseName, value, field, out int length);
        return field[..length];
    }

    /// <summary>
    /// A literal field (§6.2): the name's index (0: the name follows as a string) with the representation's flags and
    /// prefix, then the value, each string Huffman-coded when shorter. False, having written nothing, without room.
    /// </summary>
    private static bool TryWriteLiteral(int nameIndex, int prefixBits, byte flags, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value,
        Span<byte> dest, out int length)
    {
        length = HpackIntegers.EncodedLength(nameIndex, prefixBits);
        bool nameHuffman = false;
        int nameLength = 0;
        if (nameIndex == 0)
        {
            length += StringLength(name, out nameHuffman, out nameLength);
        }

        length += StringLength(value, out bool valueHuffman, out int valueLength);
        if (dest.Length < length)
        {
            return false;
        }

        HpackIntegers.TryEncode(nameIndex, prefixBits, flags, dest, out int n);
        if (nameIndex == 0)
        {
            n += WriteString(name, nameHuffman, nameLength, dest[n..]);
        }

        WriteString(value, valueHuffman, valueLength, dest[n..]);
        return true;
    }

    /// <summary>
    /// Writes a field made by <see cref="EncodeWithoutIndexing"/>; false, having written nothing, when the rest of the
    /// destination is too small. The dynamic table is not touched, as the peer's decoder will not touch its own.
    /// </summary>
    public static bool WriteEncoded(ReadOnlySpan<byte> field, Span<byte> destination, ref int written)
    {
        if (!field.TryCopyTo(destination[written..]))
        {
            return false;
        }

        written += field.Length;
        return true;
    }

    private static bool WriteIndexed(int index, Span<byte> destination, ref int written)
    {
        // §6.1: 1 + 7-bit index; one byte for the static table and the newest 65 dynamic entries.
        if (index < 0x7F && (uint)written < (uint)destination.Length)
        {
            destination[written++] = (byte)(0x80 | index);
            return true;
        }

        if (!HpackIntegers.TryEncode(index, 7, 0x80, destination[written..], out int n))
        {
            return false;
        }

        written += n;
        return true;
    }

    /// <summary>Bytes for a §5.2 string literal, Huffman-coded when that is shorter.</summary>
    private static int StringLength(ReadOnlySpan<byte> s, out bool huffman, out int encodedLength)
    {
        int huffmanLength = HuffmanCodec.EncodedLength(s);
        huffman = huffmanLength < s.Length;
        encodedLength = huffman ? huffmanLength : s.Length;
        return HpackIntegers.EncodedLength(encodedLength, 7) + encodedLength;
    }

    private static int WriteString(ReadOnlySpan<byte> s, bool huffman, int encodedLength, Span<byte> dest)
    {
        HpackIntegers.TryEncode(encodedLength, 7, huffman ? (byte)0x80 : (byte)0, dest, out int n);
        if (huffman)
        {
            HuffmanCodec.TryEncode(s, dest[n..], out _);
        }
        else
        {
            s.CopyTo(dest[n..]);
        }

        return n + encodedLength;
    }

    private bool ShouldIndex(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        // An entry taking more than half the table would flush the entries that pay off; such values rarely repeat.
        long size = (long)name.Length + value.Length + HpackDynamicTable.EntryOverhead;
        return size <= _table.MaxSize / 2;
    }

    /// <summary>Fields whose values change with every message are not worth a table entry; credentials must never
    /// be in one (§7.1.3).</summary>
    private static FieldKind Classify(ReadOnlySpan<byte> name)
    {
        switch (name.Length)
        {
            case 3:
                return name.SequenceEqual("age"u8) ? FieldKind.Volatile : FieldKind.Normal;
            case 4:
                return name.SequenceEqual("date"u8) || name.SequenceEqual("etag"u8) ? FieldKind.Volatile : FieldKind.Normal;
            case 5:
                return name.SequenceEqual(":path"u8) ? FieldKind.Volatile : FieldKind.Normal;
            case 6:
                return name.SequenceEqual("cookie"u8) ? FieldKind.Sensitive : FieldKind.Normal;
            case 7:
                return name.SequenceEqual("expires"u8) ? FieldKind.Volatile : FieldKind.Normal;
            case 8:
                return name.SequenceEqual("location"u8) ? FieldKind.Volatile : FieldKind.Normal;
            case 10:
                if (name.SequenceEqual("set-cookie"u8)) return FieldKind.Sensitive;
                return name.SequenceEqual("tracestate"u8) ? FieldKind.Volatile : FieldKind.Normal;
            case 11:
                return name.SequenceEqual("traceparent"u8) || name.SequenceEqual("retry-after"u8) ? FieldKind.Volatile : FieldKind.Normal;
            case 12:
                return name.SequenceEqual("x-request-id"u8) ? FieldKind.Volatile : FieldKind.Normal;
            case 13:
                if (name.SequenceEqual("authorization"u8)) return FieldKind.Sensitive;
                return name.SequenceEqual("last-modified"u8) || name.SequenceEqual("content-range"u8) || name.SequenceEqual("server-timing"u8)
                    ? FieldKind.Volatile
                    : FieldKind.Normal;
            case 14:
                return name.SequenceEqual("content-length"u8) ? FieldKind.Volatile : FieldKind.Normal;
            case 15:
                return name.SequenceEqual("ratelimit-reset"u8) ? FieldKind.Volatile : FieldKind.Normal;
            case 17:
                return name.SequenceEqual("x-ratelimit-reset"u8) ? FieldKind.Volatile : FieldKind.Normal;
            case 19:
                if (name.SequenceEqual("proxy-authorization"u8)) return FieldKind.Sensitive;
                return name.SequenceEqual("ratelimit-remaining"u8) ? FieldKind.Volatile : FieldKind.Normal;
            case 21:
                return name.SequenceEqual("x-ratelimit-remaining"u8) ? FieldKind.Volatile : FieldKind.Normal;
            default:
                return FieldKind.Normal;
        }
    }
}

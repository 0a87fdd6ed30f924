using System.Buffers;

namespace Appliance.Protocol.Hpack;

/// <summary>
/// Decodes HPACK header blocks (RFC 7541) for one HTTP/2 connection direction, keeping its dynamic table.
/// </summary>
/// <remarks>
/// <para>A header block may arrive split across a HEADERS (or PUSH_PROMISE) frame and CONTINUATION frames: call
/// <see cref="Decode{THandler}"/> once per fragment, in order, with <c>endHeaders</c> on the last one. A field
/// representation cut by a fragment boundary is kept in an internal buffer (holding only that representation's bytes)
/// and finished with the next fragment; everything else is decoded in place.</para>
/// <para>Defences: an integer above <see cref="int.MaxValue"/>, any index 0 or past the tables, a bad Huffman string,
/// a table size update after a field or above the advertised size, and a block ending mid-representation are all
/// <see cref="HpackStatus.CompressionError"/>. A header list growing past the limit (each field counted as name +
/// value + 32, RFC 9113 §6.5.2, including fields copied from the tables) turns the block into
/// <see cref="HpackStatus.HeaderListTooLarge"/>: the handler is not called any more, but the rest of the block is still
/// decoded so the dynamic table stays in sync with the peer's (RFC 9113 §4.3). A string literal that could only decode
/// past the limit is skipped as it streams in rather than buffered, so memory stays bounded whatever the peer sends.</para>
/// <para>Not thread-safe; one instance per connection, used by the frame reader.</para>
/// </remarks>
public sealed class HpackDecoder : IDisposable
{
    /// <summary>The protocol default of SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2).</summary>
    public const int DefaultMaxDynamicTableSize = 4096;

    /// <summary>The largest table size and header list size accepted (16 MiB, the largest HTTP/2 frame payload).</summary>
    public const int MaxLimit = 1 << 24;

    // Buffers that grew past this for one large block are handed back to the pool when the block ends.
    private const int RetainedBufferBytes = 8192;

    private readonly HpackDynamicTable _table;
    private readonly int _maxHeaderListSize;

    // The longest string we decode into memory. A string decoding to more cannot fit the header list nor the table
    // (it is at least as large as both limits), so it is only validated and skipped.
    private readonly int _maxStringLength;

    private byte[] _pending = [];
    private int _pendingLength;
    private byte[] _strings = [];

    // Per-block state.
    private bool _fieldSeen;
    private long _headerListSize;
    private bool _tooLarge;
    private bool _failed;

    // An oversized string literal being skipped.
    private SkipPhase _skip;
    private int _skipRemaining;
    private bool _skipHuffman;
    private int _skipHuffmanState;
    private bool _skipInsert;

    /// <param name="maxDynamicTableSize">The SETTINGS_HEADER_TABLE_SIZE we advertise: the peer may not use a larger table.
    /// The table starts at this size, so advertising less than the protocol default of 4096 is only safe once the peer
    /// has acknowledged our SETTINGS and sent a table size update.</param>
    /// <param name="maxHeaderListSize">The SETTINGS_MAX_HEADER_LIST_SIZE we enforce (name + value + 32 per field); at
    /// most <see cref="MaxLimit"/>.</param>
    public HpackDecoder(int maxDynamicTableSize, int maxHeaderListSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxDynamicTableSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxDynamicTableSize, MaxLimit);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxHeaderListSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxHeaderListSize, MaxLimit);
        _table = new HpackDynamicTable(maxDynamicTableSize);
        _maxHeaderListSize = maxHeaderListSize;
        _maxStringLength = Math.Max(maxHeaderListSize, maxDynamicTableSize);
    }

    private enum SkipPhase : byte
    {
        None,
        Name,
        ValueHeader,
        Value,
    }

    private enum Kind : byte
    {
        Indexed,
        SizeUpdate,
        Literal,
        SkippedValueHeader,
    }

    private enum ScanResult : byte
    {
        Complete,
        NeedMore,
        Invalid,

        // A string literal too long to store starts at Layout.Length: skip it.
        Oversize,
    }

    /// <summary>The maximum table size the peer may set (what we advertise).</summary>
    public int MaxDynamicTableSize => _table.SizeLimit;

    public int MaxHeaderListSize => _maxHeaderListSize;

    /// <summary>The dynamic table, for tests and diagnostics.</summary>
    internal HpackDynamicTable Table => _table;

    /// <summary>
    /// Decodes the next fragment of a header block, calling <paramref name="handler"/> for each complete field.
    /// </summary>
    /// <param name="fragment">The header block fragment of a HEADERS, PUSH_PROMISE or CONTINUATION frame (padding and
    /// priority fields already removed).</param>
    /// <param name="endHeaders">True for the fragment of the frame carrying END_HEADERS: the block must then end on a
    /// representation boundary.</param>
    /// <returns><see cref="HpackStatus.Ok"/>; <see cref="HpackStatus.CompressionError"/>, after which the decoder refuses
    /// everything (close the connection); or <see cref="HpackStatus.HeaderListTooLarge"/>, returned for this and every
    /// later fragment of the block: keep feeding the block's remaining fragments (the table must stay in sync), then
    /// reject the stream.</returns>
    public HpackStatus Decode<THandler>(ReadOnlySpan<byte> fragment, bool endHeaders, ref THandler handler)
        where THandler : struct, IHpackHeaderHandler
    {
        if (_failed || !DecodeFragment(fragment, ref handler))
        {
            return Fail();
        }

        HpackStatus status = _tooLarge ? HpackStatus.HeaderListTooLarge : HpackStatus.Ok;
        if (endHeaders)
        {
            // RFC 7541 §2: a header block is a sequence of whole representations.
            if (_pendingLength != 0 || _skip != SkipPhase.None)
            {
                return Fail();
            }

            EndBlock();
        }

        return status;
    }

    public void Dispose()
    {
        ReturnBuffer(ref _pending);
        ReturnBuffer(ref _strings);
        _pendingLength = 0;
    }

    private bool DecodeFragment<THandler>(ReadOnlySpan<byte> src, ref THandler handler)
        where THandler : struct, IHpackHeaderHandler
    {
        while (true)
        {
            if (_skip is SkipPhase.Name or SkipPhase.Value)
            {
                if (!Skip(ref src))
                {
                    return false;
                }

                if (_skip is SkipPhase.Name or SkipPhase.Value)
                {
                    return true; // the string goes on in the next fragment
                }

                continue;
            }

            if (_pendingLength != 0)
            {
                // Finish the split representation, appending only bytes it certainly needs, so the buffer never takes
                // the start of the next one.
                while (true)
                {
                    ReadOnlySpan<byte> pending = _pending.AsSpan(0, _pendingLength);
                    ScanResult scan = Scan(pending, out Layout layout, out int needed);
                    if (scan == ScanResult.NeedMore)
                    {
                        if (src.IsEmpty)
                        {
                            return true;
                        }

                        int take = Math.Min(needed, src.Length);
                        AppendPending(src[..take]);
                        src = src[take..];
                        continue;
                    }

                    if (scan == ScanResult.Invalid || !Apply(scan, layout, pending, ref handler))
                    {
                        return false;
                    }

                    _pendingLength = 0;
                    break;
                }

                continue;
            }

            if (src.IsEmpty)
            {
                return true;
            }

            // Fast path for the commonest representation, an indexed field with a one-byte index (§6.1).
            uint first = src[0];
            if (first - 0x81 < 0x7E && _skip == SkipPhase.None)
            {
                int index = (int)(first & 0x7F);
                if (index > HpackStaticTable.Count + _table.Count)
                {
                    return false;
                }

                EmitIndexed(index, ref handler);
                src = src[1..];
                continue;
            }

            ScanResult result = Scan(src, out Layout field, out _);
            if (result == ScanResult.NeedMore)
            {
                AppendPending(src);
                return true;
            }

            if (result == ScanResult.Invalid || !Apply(result, field, src, ref handler))
            {
                return false;
            }

            src = src[field.Length..];
        }
    }

    /// <summary>
    /// Parses the structure of the representation at the start of <paramref name="src"/> without side effects, so a
    /// split representation can be scanned again as bytes arrive. On NeedMore, <paramref name="needed"/> is a number of
    /// further bytes that certainly belong to it.
    /// </summary>
    private ScanResult Scan(ReadOnlySpan<byte> src, out Layout layout, out int needed)
    {
        layout = default;
        needed = 1;
        OperationStatus status;
        int consumed;

        if (_skip == SkipPhase.ValueHeader)
        {
            // The name was skipped; only the value's length is needed to skip the value too.
            layout.Kind = Kind.SkippedValueHeader;
            layout.ValueHuffman = (src[0] & 0x80) != 0;
            status = HpackIntegers.Decode(src, 7, out layout.ValueLength, out consumed);
            layout.Length = consumed;
            return ToScanResult(status);
        }

        byte first = src[0];
        if ((first & 0x80) != 0)
        {
            // §6.1: indexed header field.
            status = HpackIntegers.Decode(src, 7, out layout.Index, out consumed);
            if (status != OperationStatus.Done)
            {
                return ToScanResult(status);
            }

            // §6.1: index 0 is an error; §2.3.3: so is an index past both tables.
            if (layout.Index == 0 || layout.Index > HpackStaticTable.Count + _table.Count)
            {
                return ScanResult.Invalid;
            }

            layout.Kind = Kind.Indexed;
            layout.Length = consumed;
            return ScanResult.Complete;
        }

        if ((first & 0xE0) == 0x20)
        {
            // §6.3: dynamic table size update. §4.2: only at the start of a block, and within the advertised maximum.
            status = HpackIntegers.Decode(src, 5, out layout.Index, out consumed);
            if (status != OperationStatus.Done)
            {
                return ToScanResult(status);
            }

            if (_fieldSeen || layout.Index > _table.SizeLimit)
            {
                return ScanResult.Invalid;
            }

            layout.Kind = Kind.SizeUpdate;
            layout.Length = consumed;
            return ScanResult.Complete;
        }

        // §6.2.1 with incremental indexing (01, 6-bit index); §6.2.2 without (0000) and §6.2.3 never indexed (0001),
        // both 4-bit. The decoder treats the last two alike; re-encoding never-indexed fields is the proxy's concern.
        layout.Kind = Kind.Literal;
        layout.Insert = (first & 0x40) != 0;
        status = HpackIntegers.Decode(src, layout.Insert ? 6 : 4, out layout.Index, out consumed);
        if (status != OperationStatus.Done)
        {
            return ToScanResult(status);
        }

        if (layout.Index > HpackStaticTable.Count + _table.Count)
        {
            return ScanResult.Invalid;
        }

        int pos = consumed;
        ScanResult result;
        if (layout.Index == 0)
        {
            result = ScanString(src, ref pos, out layout.NameStart, out layout.NameLength, out layout.NameHuffman, out needed);
            if (result != ScanResult.Complete)
            {
                layout.Length = pos;
                layout.OversizeName = result == ScanResult.Oversize;
                return result;
            }
        }

        result = ScanString(src, ref pos, out layout.ValueStart, out layout.ValueLength, out layout.ValueHuffman, out needed);
        layout.Length = pos;
        return result;
    }

    private ScanResult ScanString(ReadOnlySpan<byte> src, ref int pos, out int start, out int length, out bool huffman, out int needed)
    {
        start = 0;
        length = 0;
        huffman = false;
        needed = 1;
        if (pos >= src.Length)
        {
            return ScanResult.NeedMore;
        }

        // §5.2: H flag, then a 7-bit prefix length.
        huffman = (src[pos] & 0x80) != 0;
        OperationStatus status = HpackIntegers.Decode(src[pos..], 7, out length, out int consumed);
        if (status != OperationStatus.Done)
        {
            return ToScanResult(status);
        }

        pos += consumed;
        start = pos;
        if (IsOversize(length, huffman))
        {
            return ScanResult.Oversize;
        }

        int available = src.Length - pos;
        if (available < length)
        {
            needed = length - available;
            return ScanResult.NeedMore;
        }

        pos += length;
        return ScanResult.Complete;
    }

    /// <summary>True when a string of <paramref name="length"/> bytes surely decodes to more than we store.</summary>
    private bool IsOversize(int length, bool huffman)
    {
        // A Huffman code is at most 30 bits and padding at most 7: n symbols take at most 30n + 7 bits, so 8 * length
        // bits beyond 30 * max + 7 hold more than max symbols. Shorter Huffman strings are decoded with a bounded
        // output instead.
        return huffman
            ? (8L * length) > (30L * _maxStringLength) + 7
            : length > _maxStringLength;
    }

    /// <summary>Performs a scanned representation: table changes and the handler call.</summary>
    private bool Apply<THandler>(ScanResult scan, in Layout layout, ReadOnlySpan<byte> src, ref THandler handler)
        where THandler : struct, IHpackHeaderHandler
    {
        if (scan == ScanResult.Oversize)
        {
            BeginSkip(layout);
            return true;
        }

        switch (layout.Kind)
        {
            case Kind.Indexed:
                EmitIndexed(layout.Index, ref handler);
                return true;

            case Kind.SizeUpdate:
                _table.SetMaxSize(layout.Index);
                return true;

            case Kind.SkippedValueHeader:
                _skip = SkipPhase.Value;
                _skipRemaining = layout.ValueLength;
                _skipHuffman = layout.ValueHuffman;
                _skipHuffmanState = HuffmanCodec.StartState;
                return true;

            default:
                return ApplyLiteral(layout, src, ref handler);
        }
    }

    private bool ApplyLiteral<THandler>(in Layout layout, ReadOnlySpan<byte> src, ref THandler handler)
        where THandler : struct, IHpackHeaderHandler
    {
        _fieldSeen = true;
        ReadOnlySpan<byte> rawName = src.Slice(layout.NameStart, layout.NameLength);
        ReadOnlySpan<byte> rawValue = src.Slice(layout.ValueStart, layout.ValueLength);

        // Both decoded strings must be alive for the handler, so size the buffer for both before decoding either.
        int nameRoom = layout.Index == 0 && layout.NameHuffman ? DecodedRoom(layout.NameLength) : 0;
        int valueRoom = layout.ValueHuffman ? DecodedRoom(layout.ValueLength) : 0;
        if (nameRoom + valueRoom > _strings.Length)
        {
            GrowStrings(nameRoom + valueRoom);
        }

        bool oversize = false;
        ReadOnlySpan<byte> name;
        if (layout.Index != 0)
        {
            name = layout.Index <= HpackStaticTable.Count
                ? HpackStaticTable.Name(layout.Index)
                : _table.Name(layout.Index - HpackStaticTable.Count);
        }
        else if (!layout.NameHuffman)
        {
            name = rawName;
        }
        else
        {
            OperationStatus status = DecodeHuffman(rawName, _strings.AsSpan(0, nameRoom), out int written);
            if (status == OperationStatus.InvalidData)
            {
                return false;
            }

            oversize = status == OperationStatus.DestinationTooSmall;
            name = _strings.AsSpan(0, written);
        }

        ReadOnlySpan<byte> value = rawValue;
        if (layout.ValueHuffman)
        {
            OperationStatus status = DecodeHuffman(rawValue, _strings.AsSpan(nameRoom, valueRoom), out int written);
            if (status == OperationStatus.InvalidData)
            {
                return false;
            }

            oversize |= status == OperationStatus.DestinationTooSmall;
            value = _strings.AsSpan(nameRoom, written);
        }

        if (oversize)
        {
            // Larger than both limits: the list is too large, and inserting it would empty the table (§4.4).
            _tooLarge = true;
            if (layout.Insert)
            {
                _table.Clear();
            }

            return true;
        }

        // The handler sees the field before the insertion can evict an entry the name points into.
        Emit(name, value, ref handler);
        if (layout.Insert)
        {
            _table.Insert(name, value);
        }

        return true;
    }

    private int DecodedRoom(int encodedLength) => Math.Min(HuffmanCodec.MaxDecodedLength(encodedLength), _maxStringLength);

    /// <summary>Done; DestinationTooSmall for a valid string that decodes past the stored maximum; InvalidData.</summary>
    private static OperationStatus DecodeHuffman(ReadOnlySpan<byte> encoded, Span<byte> destination, out int written)
    {
        OperationStatus status = HuffmanCodec.Decode(encoded, destination, out written);
        if (status == OperationStatus.DestinationTooSmall)
        {
            // Too long to keep, but an invalid encoding is still a decoding error (§5.2).
            int state = HuffmanCodec.StartState;
            return HuffmanCodec.TryAdvance(encoded, ref state) && HuffmanCodec.IsComplete(state)
                ? OperationStatus.DestinationTooSmall
                : OperationStatus.InvalidData;
        }

        return status;
    }

    private void EmitIndexed<THandler>(int index, ref THandler handler)
        where THandler : struct, IHpackHeaderHandler
    {
        _fieldSeen = true;
        if (index <= HpackStaticTable.Count)
        {
            Emit(HpackStaticTable.Name(index), HpackStaticTable.Value(index), ref handler, -index);
        }
        else
        {
            int dynamicIndex = index - HpackStaticTable.Count;
            _table.GetEntry(dynamicIndex, out ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value);
            Emit(name, value, ref handler, _table.Inserted - dynamicIndex + 1);
        }
    }

    /// <param name="entry">For an indexed field, its table entry (see <see cref="IHpackHeaderHandler.OnIndexedHeader"/>); else 0.</param>
    private void Emit<THandler>(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, ref THandler handler, long entry = 0)
        where THandler : struct, IHpackHeaderHandler
    {
        if (_tooLarge)
        {
            return;
        }

        // RFC 9113 §6.5.2: uncompressed size of each field plus 32.
        _headerListSize += name.Length + value.Length + HpackDynamicTable.EntryOverhead;
        if (_headerListSize > _maxHeaderListSize)
        {
            _tooLarge = true;
            return;
        }

        if (entry != 0)
        {
            handler.OnIndexedHeader(name, value, entry);
        }
        else
        {
            handler.OnHeader(name, value);
        }
    }

    private void BeginSkip(in Layout layout)
    {
        _fieldSeen = true;
        _tooLarge = true;
        _skipInsert = layout.Insert;
        _skip = layout.OversizeName ? SkipPhase.Name : SkipPhase.Value;
        _skipRemaining = layout.OversizeName ? layout.NameLength : layout.ValueLength;
        _skipHuffman = layout.OversizeName ? layout.NameHuffman : layout.ValueHuffman;
        _skipHuffmanState = HuffmanCodec.StartState;
    }

    /// <summary>Consumes bytes of the string being skipped, validating Huffman data as it goes.</summary>
    private bool Skip(ref ReadOnlySpan<byte> src)
    {
        int take = Math.Min(_skipRemaining, src.Length);
        if (_skipHuffman && !HuffmanCodec.TryAdvance(src[..take], ref _skipHuffmanState))
        {
            return false;
        }

        _skipRemaining -= take;
        src = src[take..];
        if (_skipRemaining != 0)
        {
            return true;
        }

        if (_skipHuffman && !HuffmanCodec.IsComplete(_skipHuffmanState))
        {
            return false;
        }

        if (_skip == SkipPhase.Name)
        {
            _skip = SkipPhase.ValueHeader;
            return true;
        }

        // The entry is larger than the table can ever be: adding it empties the table (§4.4).
        _skip = SkipPhase.None;
        if (_skipInsert)
        {
            _table.Clear();
        }

        return true;
    }

    private void AppendPending(ReadOnlySpan<byte> bytes)
    {
        int needed = _pendingLength + bytes.Length;
        if (needed > _pending.Length)
        {
            byte[] next = ArrayPool<byte>.Shared.Rent(Math.Max(needed, 256));
            _pending.AsSpan(0, _pendingLength).CopyTo(next);
            ReturnBuffer(ref _pending);
            _pending = next;
        }

        bytes.CopyTo(_pending.AsSpan(_pendingLength));
        _pendingLength = needed;
    }

    private void GrowStrings(int size)
    {
        ReturnBuffer(ref _strings);
        _strings = ArrayPool<byte>.Shared.Rent(Math.Max(size, 256));
    }

    private void EndBlock()
    {
        _fieldSeen = false;
        _headerListSize = 0;
        _tooLarge = false;
        if (_pending.Length > RetainedBufferBytes)
        {
            ReturnBuffer(ref _pending);
        }

        if (_strings.Length > RetainedBufferBytes)
        {
            ReturnBuffer(ref _strings);
        }
    }

    private HpackStatus Fail()
    {
        _failed = true;
        return HpackStatus.CompressionError;
    }

    private static ScanResult ToScanResult(OperationStatus status) => status switch
    {
        OperationStatus.Done => ScanResult.Complete,
        OperationStatus.NeedMoreData => ScanResult.NeedMore,
        _ => ScanResult.Invalid,
    };

    private static void ReturnBuffer(ref byte[] buffer)
    {
        if (buffer.Length != 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = [];
        }
    }

    /// <summary>Where the parts of one field representation lie in the scanned bytes.</summary>
    private struct Layout
    {
        public Kind Kind;
        public bool Insert;
        public bool OversizeName;
        public bool NameHuffman;
        public bool ValueHuffman;

        // Indexed: the field index; Literal: the name index (0 for a literal name); SizeUpdate: the new size.
        public int Index;
        public int NameStart;
        public int NameLength;
        public int ValueStart;
        public int ValueLength;

        // Bytes taken by the representation, or, when a string is oversized, up to the start of that string's data.
        public int Length;
    }
}

using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Appliance.Protocol.Hpack;

/// <summary>
/// The static Huffman code of HPACK (RFC 7541 §5.2, Appendix B). Encoding packs codes MSB-first into a 64-bit
/// accumulator; decoding walks a 4-bit-at-a-time state machine over the code tree (a nibble can complete at most one
/// symbol, because the shortest code is 5 bits), built once from the code table at type initialisation.
/// </summary>
public static class HuffmanCodec
{
    // Appendix B: code (aligned to the least significant bit) and bit length of symbols 0..255 and EOS (256).
    private static ReadOnlySpan<uint> Codes =>
    [
        0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3,
        0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7,
        0xfffffe8, 0xffffea, 0x3ffffffc, 0xfffffe9,
        0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec,
        0xfffffed, 0xfffffee, 0xfffffef, 0xffffff0,
        0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3,
        0xffffff4, 0xffffff5, 0xffffff6, 0xffffff7,
        0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb,
        0x14, 0x3f8, 0x3f9, 0xffa,
        0x1ff9, 0x15, 0xf8, 0x7fa,
        0x3fa, 0x3fb, 0xf9, 0x7fb,
        0xfa, 0x16, 0x17, 0x18,
        0x0, 0x1, 0x2, 0x19,
        0x1a, 0x1b, 0x1c, 0x1d,
        0x1e, 0x1f, 0x5c, 0xfb,
        0x7ffc, 0x20, 0xffb, 0x3fc,
        0x1ffa, 0x21, 0x5d, 0x5e,
        0x5f, 0x60, 0x61, 0x62,
        0x63, 0x64, 0x65, 0x66,
        0x67, 0x68, 0x69, 0x6a,
        0x6b, 0x6c, 0x6d, 0x6e,
        0x6f, 0x70, 0x71, 0x72,
        0xfc, 0x73, 0xfd, 0x1ffb,
        0x7fff0, 0x1ffc, 0x3ffc, 0x22,
        0x7ffd, 0x3, 0x23, 0x4,
        0x24, 0x5, 0x25, 0x26,
        0x27, 0x6, 0x74, 0x75,
        0x28, 0x29, 0x2a, 0x7,
        0x2b, 0x76, 0x2c, 0x8,
        0x9, 0x2d, 0x77, 0x78,
        0x79, 0x7a, 0x7b, 0x7ffe,
        0x7fc, 0x3ffd, 0x1ffd, 0xffffffc,
        0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8,
        0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9,
        0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc,
        0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf,
        0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0,
        0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3,
        0x7fffe4, 0x1fffdc, 0x3fffd8, 0x7fffe5,
        0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef,
        0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb,
        0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde,
        0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0,
        0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec,
        0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2,
        0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef,
        0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4,
        0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1,
        0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1,
        0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec,
        0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde,
        0x7ffffdf, 0x3ffffe5, 0xfffff1, 0x1ffffed,
        0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0,
        0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2,
        0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9,
        0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5,
        0xfffec, 0xfffff3, 0xfffed, 0x1fffe6,
        0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3,
        0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef,
        0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4,
        0x3ffffeb, 0x7ffffe6, 0x3ffffec, 0x3ffffed,
        0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea,
        0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed,
        0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee,
        0x3fffffff,
    ];

    private static ReadOnlySpan<byte> Lengths =>
    [
        13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
        28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
        6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
        5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
        13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
        15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
        6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
        20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
        24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
        22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
        21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
        26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
        19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
        20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
        26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
        30,
    ];

    // Decoder table entry: bits 0-7 next state, bits 8-15 emitted symbol, then the flags below.
    private const uint EmitFlag = 1u << 16;
    private const uint FailFlag = 1u << 17;
    private const uint AcceptFlag = 1u << 18;

    // 256 states (the internal nodes of the code tree; the root is state 0) x 16 nibbles.
    private static readonly uint[] s_decodeTable = BuildDecodeTable();

    /// <summary>The state of <see cref="TryAdvance"/> before any input: the root, which is accepting.</summary>
    internal const int StartState = 1 << 8;

    /// <summary>An upper bound of the decoded length of <paramref name="encodedLength"/> bytes (5-bit shortest code).</summary>
    public static int MaxDecodedLength(int encodedLength) => (int)Math.Min(int.MaxValue, (long)encodedLength * 8 / 5);

    /// <summary>The number of bytes <see cref="TryEncode"/> writes for <paramref name="source"/>.</summary>
    public static int EncodedLength(ReadOnlySpan<byte> source)
    {
        ReadOnlySpan<byte> lengths = Lengths;
        long bits = 0;
        foreach (byte b in source)
        {
            bits += lengths[b];
        }

        return (int)Math.Min(int.MaxValue, (bits + 7) >> 3);
    }

    /// <summary>
    /// Huffman-encodes <paramref name="source"/>; the last byte is padded with the high bits of EOS (ones, §5.2).
    /// Returns false when <paramref name="destination"/> is too small (size it with <see cref="EncodedLength"/>).
    /// </summary>
    public static bool TryEncode(ReadOnlySpan<byte> source, Span<byte> destination, out int written)
    {
        ReadOnlySpan<uint> codes = Codes;
        ReadOnlySpan<byte> lengths = Lengths;
        ulong bits = 0;
        int count = 0;
        int w = 0;
        foreach (byte b in source)
        {
            int length = lengths[b];
            bits = (bits << length) | codes[b];
            count += length;
            while (count >= 8)
            {
                count -= 8;
                if ((uint)w >= (uint)destination.Length)
                {
                    written = 0;
                    return false;
                }

                destination[w++] = (byte)(bits >> count);
            }
        }

        if (count > 0)
        {
            if ((uint)w >= (uint)destination.Length)
            {
                written = 0;
                return false;
            }

            destination[w++] = (byte)((bits << (8 - count)) | (0xFFu >> count));
        }

        written = w;
        return true;
    }

    /// <summary>
    /// Decodes a Huffman-encoded string literal. <see cref="OperationStatus.InvalidData"/> for an EOS symbol in the
    /// string or padding that is longer than 7 bits or not all ones (RFC 7541 §5.2: a decoding error);
    /// <see cref="OperationStatus.DestinationTooSmall"/> when the output does not fit (<see cref="MaxDecodedLength"/>
    /// always does).
    /// </summary>
    public static OperationStatus Decode(ReadOnlySpan<byte> source, Span<byte> destination, out int written)
    {
        ref uint table = ref MemoryMarshal.GetArrayDataReference(s_decodeTable);
        uint state = 0;
        uint entry = AcceptFlag;
        int w = 0;
        foreach (byte b in source)
        {
            // state < 256 and a nibble < 16, so the index is always inside the 4096-entry table.
            entry = Unsafe.Add(ref table, (int)((state << 4) | ((uint)b >> 4)));
            if ((entry & (EmitFlag | FailFlag)) != 0)
            {
                if ((entry & FailFlag) != 0)
                {
                    written = w;
                    return OperationStatus.InvalidData;
                }

                if ((uint)w >= (uint)destination.Length)
                {
                    written = w;
                    return OperationStatus.DestinationTooSmall;
                }

                destination[w++] = (byte)(entry >> 8);
            }

            state = entry & 0xFF;
            entry = Unsafe.Add(ref table, (int)((state << 4) | (b & 0xFu)));
            if ((entry & (EmitFlag | FailFlag)) != 0)
            {
                if ((entry & FailFlag) != 0)
                {
                    written = w;
                    return OperationStatus.InvalidData;
                }

                if ((uint)w >= (uint)destination.Length)
                {
                    written = w;
                    return OperationStatus.DestinationTooSmall;
                }

                destination[w++] = (byte)(entry >> 8);
            }

            state = entry & 0xFF;
        }

        written = w;
        return (entry & AcceptFlag) != 0 ? OperationStatus.Done : OperationStatus.InvalidData;
    }

    /// <summary>
    /// Validates encoded bytes without producing output, a piece at a time (for strings the decoder skips rather than
    /// stores). <paramref name="state"/> starts at <see cref="StartState"/>; false on an EOS symbol.
    /// </summary>
    internal static bool TryAdvance(ReadOnlySpan<byte> source, ref int state)
    {
        uint[] table = s_decodeTable;
        uint node = (uint)state & 0xFF;
        uint entry = (uint)state >> 8 != 0 ? AcceptFlag : 0;
        foreach (byte b in source)
        {
            entry = table[(node << 4) | ((uint)b >> 4)];
            if ((entry & FailFlag) != 0)
            {
                return false;
            }

            entry = table[((entry & 0xFF) << 4) | (b & 0xFu)];
            if ((entry & FailFlag) != 0)
            {
                return false;
            }

            node = entry & 0xFF;
        }

        state = (int)node | ((entry & AcceptFlag) != 0 ? StartState : 0);
        return true;
    }

    /// <summary>True when a string validated with <see cref="TryAdvance"/> ended on valid padding (§5.2).</summary>
    internal static bool IsComplete(int state) => (state & StartState) != 0;

    private static uint[] BuildDecodeTable()
    {
        const int Leaf = 1 << 16;

        // children[node * 2 + bit]: an internal node id, or Leaf | symbol; 0 means "not yet built" (the root is
        // nobody's child).
        var children = new int[512];
        int nodes = 1;
        ReadOnlySpan<uint> codes = Codes;
        ReadOnlySpan<byte> lengths = Lengths;
        for (int symbol = 0; symbol <= 256; symbol++)
        {
            uint code = codes[symbol];
            int node = 0;
            for (int i = lengths[symbol] - 1; i > 0; i--)
            {
                int slot = (node * 2) + (int)((code >> i) & 1);
                if (children[slot] == 0)
                {
                    children[slot] = nodes++;
                }

                node = children[slot];
            }

            children[(node * 2) + (int)(code & 1)] = Leaf | symbol;
        }

        // The code is complete (Kraft sum 1): 257 leaves, 256 internal nodes, so a state fits in a byte.
        if (nodes != 256)
        {
            throw new InvalidOperationException("The HPACK Huffman table is malformed.");
        }

        // §5.2: valid padding is a prefix of EOS (all ones) of at most 7 bits, so the accepting states are the
        // nodes on the all-ones path at depth 0..7 (EOS is 30 ones, so they are all internal).
        var accepting = new bool[256];
        for (int depth = 0, node = 0; depth <= 7; depth++)
        {
            accepting[node] = true;
            node = children[(node * 2) + 1];
        }

        var table = new uint[256 * 16];
        for (int state = 0; state < 256; state++)
        {
            for (int nibble = 0; nibble < 16; nibble++)
            {
                int node = state;
                uint flags = 0;
                uint symbol = 0;
                for (int bit = 3; bit >= 0; bit--)
                {
                    int child = children[(node * 2) + ((nibble >> bit) & 1)];
                    if ((child & Leaf) == 0)
                    {
                        node = child;
                        continue;
                    }

                    if ((child & 0x1FF) == 256)
                    {
                        // §5.2: an EOS symbol inside the string is a decoding error.
                        flags = FailFlag;
                        break;
                    }

                    // At most one symbol ends inside a nibble: the shortest code is 5 bits.
                    flags = EmitFlag;
                    symbol = (uint)(child & 0xFF);
                    node = 0;
                }

                table[(state * 16) + nibble] = flags == FailFlag
                    ? FailFlag
                    : (uint)node | (symbol << 8) | flags | (accepting[node] ? AcceptFlag : 0);
            }
        }

        return table;
    }
}

using Appliance.Protocol.Hpack;
using static Appliance.Protocol.Tests.Hpack.HpackTestData;

namespace Appliance.Protocol.Tests.Hpack;

/// <summary>
/// Hostile header blocks, each with the status it must get, whole and cut at every byte boundary. A decoding error
/// is a COMPRESSION_ERROR (RFC 9113 §4.3) and leaves the decoder refusing everything after.
/// </summary>
public class MalformedHeaderBlockTests
{
    private static readonly Dictionary<string, (string Hex, HpackStatus Expected)> s_cases = new()
    {
        // integers (§5.1)
        ["truncated index"] = ("ff", HpackStatus.CompressionError),
        ["truncated index continuation"] = ("ff 80", HpackStatus.CompressionError),
        ["index overflow"] = ("ff ff ff ff ff ff 0f", HpackStatus.CompressionError),
        ["name index overflow (never indexed)"] = ("1f ff ff ff ff ff 0f", HpackStatus.CompressionError),
        ["name index overflow (with indexing)"] = ("7f ff ff ff ff ff 0f", HpackStatus.CompressionError),
        ["over-long index, six continuation bytes"] = ("ff 80 80 80 80 80 00", HpackStatus.CompressionError),
        ["string length overflow"] = ("40 7f ff ff ff ff 0f", HpackStatus.CompressionError),
        ["table size update overflow"] = ("3f ff ff ff ff ff 0f", HpackStatus.CompressionError),
        ["truncated table size update"] = ("3f", HpackStatus.CompressionError),

        // indexes (§2.3.3, §6.1)
        ["index 0"] = ("80", HpackStatus.CompressionError),
        ["index 62 with an empty dynamic table"] = ("be", HpackStatus.CompressionError),
        ["index 255"] = ("ff 80 01", HpackStatus.CompressionError),
        ["index one past a dynamic entry"] = ("40 01 61 01 62 bf", HpackStatus.CompressionError),
        ["literal name index past the table (with indexing)"] = ("7e 01 61", HpackStatus.CompressionError),
        ["literal name index past the table (without indexing)"] = ("0f 2f 01 61", HpackStatus.CompressionError),
        ["literal name index past the table (never indexed)"] = ("1f 2f 01 61", HpackStatus.CompressionError),
        ["reference to an entry evicted by a size update"] = ("20 be", HpackStatus.CompressionError),

        // string literals (§5.2)
        ["name length past the block"] = ("40 05 61 62", HpackStatus.CompressionError),
        ["value length past the block"] = ("40 01 61 05 62", HpackStatus.CompressionError),
        ["Huffman padding of 11 bits"] = ("40 01 61 82 1f ff", HpackStatus.CompressionError),
        ["Huffman padding of 8 bits"] = ("40 01 61 81 ff", HpackStatus.CompressionError),
        ["Huffman padding not all ones"] = ("40 01 61 81 18", HpackStatus.CompressionError),
        ["EOS in a Huffman value"] = ("40 01 61 84 ff ff ff ff", HpackStatus.CompressionError),
        ["EOS then padding"] = ("00 01 61 84 ff ff ff fc", HpackStatus.CompressionError),
        ["bad Huffman name"] = ("40 81 18 01 61", HpackStatus.CompressionError),
        ["bad Huffman in a never-indexed field"] = ("10 81 1d 01 61", HpackStatus.CompressionError),

        // table size updates (§4.2, §6.3)
        ["table size update above the advertised 4096"] = ("3f e2 1f", HpackStatus.CompressionError),
        ["table size update after a field"] = ("82 20", HpackStatus.CompressionError),
        ["table size update after a literal"] = ("00 01 61 01 62 3f e1 1f", HpackStatus.CompressionError),

        // block boundaries (RFC 7541 §2, RFC 9113 §4.3)
        ["block ending in a representation's first byte"] = ("82 40", HpackStatus.CompressionError),
        ["block ending after the name"] = ("40 01 61", HpackStatus.CompressionError),
        ["block ending inside a Huffman value"] = ("40 01 61 8c f1 e3 c2", HpackStatus.CompressionError),

        // header list size (RFC 9113 §6.5.2), with a 4 KiB limit here
        ["one value past the list limit"] = ("00 01 61" + RawString(4070), HpackStatus.HeaderListTooLarge),
        ["one value past the string limit"] = ("00 01 61" + RawString(4100), HpackStatus.HeaderListTooLarge),
        ["indexed references past the list limit"] = ("40 01 61" + RawString(1000) + Repeat("be", 5), HpackStatus.HeaderListTooLarge),

        // accepted edge cases
        ["table size update at the start"] = ("20 82", HpackStatus.Ok),
        ["table size update to exactly 4096"] = ("3f e1 1f 82", HpackStatus.Ok),
        ["two table size updates at the start"] = ("20 3f e1 1f 82", HpackStatus.Ok),
        ["non-minimal integer"] = ("3f 80 80 00 82", HpackStatus.Ok),
        ["empty block"] = ("", HpackStatus.Ok),
        ["empty name and value"] = ("00 00 00", HpackStatus.Ok),
        ["seven bits of Huffman padding"] = ("00 01 61 82 00 3f", HpackStatus.Ok),
    };

    public static TheoryData<string> Cases => new(s_cases.Keys);

    [Fact]
    public void Has_at_least_25_hostile_blocks() =>
        Assert.True(s_cases.Count(c => c.Value.Expected != HpackStatus.Ok) >= 25);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Gets_the_expected_status_whole_and_cut_anywhere(string name)
    {
        (string hex, HpackStatus expected) = s_cases[name];
        byte[] block = Hex(hex);
        for (int cut = 0; cut <= block.Length; cut += block.Length > 64 ? 37 : 1)
        {
            using var decoder = new HpackDecoder(4096, 4096);
            (HpackStatus status, _) = Decode(decoder, block, cut);
            Assert.Equal(expected, status);

            // After a compression error the decoder refuses everything; otherwise it goes on.
            HpackStatus next = Decode(decoder, [0x82]).Status;
            Assert.Equal(expected == HpackStatus.CompressionError ? HpackStatus.CompressionError : HpackStatus.Ok, next);
        }
    }

    [Fact]
    public void Never_throws_on_random_or_mutated_blocks()
    {
        var random = new Random(1337);
        byte[][] seeds =
        [
            Hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
            Hex("4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3"),
            Hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572 be bf 3f e1 1f"),
        ];
        int[] statuses = new int[3];
        for (int i = 0; i < 30_000; i++)
        {
            byte[] block;
            if (i % 2 == 0)
            {
                block = new byte[random.Next(0, 48)];
                random.NextBytes(block);
            }
            else
            {
                block = [.. seeds[random.Next(seeds.Length)]];
                for (int flips = random.Next(1, 4); flips > 0; flips--)
                {
                    block[random.Next(block.Length)] ^= (byte)(1 << random.Next(8));
                }
            }

            using var decoder = new HpackDecoder(256, 200);
            int cut = random.Next(0, block.Length + 1);
            HpackStatus status = Decode(decoder, block, cut).Status;
            statuses[(int)status]++;
        }

        // Each outcome happens; none is an exception.
        Assert.All(statuses, count => Assert.True(count > 0));
    }

    [Fact]
    public void Rejects_a_table_size_update_after_a_field_sent_in_an_earlier_fragment()
    {
        using var decoder = new HpackDecoder(4096, 4096);
        var recorder = new HeaderRecorder();
        Assert.Equal(HpackStatus.Ok, decoder.Decode([0x82], endHeaders: false, ref recorder));
        Assert.Equal(HpackStatus.CompressionError, decoder.Decode([0x20], endHeaders: true, ref recorder));
    }

    [Fact]
    public void Allows_a_table_size_update_at_the_start_of_every_block()
    {
        using var decoder = new HpackDecoder(4096, 4096);
        Assert.Equal(HpackStatus.Ok, Decode(decoder, Hex("82 40 01 61 01 62")).Status);
        Assert.Equal(1, decoder.Table.Count);
        Assert.Equal(HpackStatus.Ok, Decode(decoder, Hex("20 82")).Status);
        Assert.Equal(0, decoder.Table.Count);
        Assert.Equal(HpackStatus.Ok, Decode(decoder, Hex("3f e1 1f 82")).Status);
        Assert.Equal(4096, decoder.Table.MaxSize);
    }

    [Fact]
    public void Respects_a_smaller_advertised_table_size()
    {
        using var decoder = new HpackDecoder(256, 4096);
        Assert.Equal(HpackStatus.Ok, Decode(decoder, Hex("3f e1 01")).Status); // 256
        using var other = new HpackDecoder(256, 4096);
        Assert.Equal(HpackStatus.CompressionError, Decode(other, Hex("3f e2 01")).Status); // 257
    }

    [Fact]
    public void Keeps_reporting_a_too_large_list_for_the_rest_of_the_block_then_recovers()
    {
        using var decoder = new HpackDecoder(4096, 100);
        var recorder = new HeaderRecorder();

        // Each ":method: GET" counts 7 + 3 + 32 = 42: the third passes 100.
        Assert.Equal(HpackStatus.Ok, decoder.Decode(Hex("82 82"), endHeaders: false, ref recorder));
        Assert.Equal(HpackStatus.HeaderListTooLarge, decoder.Decode(Hex("82"), endHeaders: false, ref recorder));
        Assert.Equal(HpackStatus.HeaderListTooLarge, decoder.Decode(Hex("40 01 61 01 62"), endHeaders: true, ref recorder));
        Assert.Equal(2, recorder.Fields.Count);

        // The literal after the limit was still added to the table, so the next block can reference it.
        var next = new HeaderRecorder();
        Assert.Equal(HpackStatus.Ok, decoder.Decode(Hex("be"), endHeaders: true, ref next));
        Assert.Equal([("a", "b")], next.Fields);
    }

    [Fact]
    public void Survives_an_HPACK_bomb_with_bounded_memory_and_a_synced_table()
    {
        // One 4000-byte entry, then 100 000 one-byte references to it: 400 MB of headers if anyone kept them.
        const int MaxList = 16 * 1024;
        using var decoder = new HpackDecoder(4096, MaxList);
        byte[] insert = BuildLiteralWithIndexing("x", new string('a', 3990));
        byte[] bomb = [.. Enumerable.Repeat((byte)0xbe, 100_000)];

        Assert.Equal(HpackStatus.Ok, Decode(decoder, insert).Status);

        var counter = new HeaderCounter();
        Assert.Equal(HpackStatus.HeaderListTooLarge, decoder.Decode(bomb, endHeaders: true, ref counter)); // warm-up

        // Steady state: the runtime's tiering may allocate on this thread during the first passes of a loop this long
        // (7 KB once in CI); a decoder that allocates per block allocates on every pass.
        HpackStatus status = HpackStatus.Ok;
        long allocated = -1;
        for (int pass = 0; pass < 5 && allocated != 0; pass++)
        {
            counter = default;
            long before = GC.GetAllocatedBytesForCurrentThread();
            status = decoder.Decode(bomb, endHeaders: true, ref counter);
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        Assert.Equal(HpackStatus.HeaderListTooLarge, status);
        Assert.Equal(MaxList / (1 + 3990 + 32), counter.Count);
        Assert.Equal(0, allocated);
        Assert.Equal(1, decoder.Table.Count);

        // Same bomb, fed a byte per CONTINUATION frame.
        counter = default;
        for (int i = 0; i < 2000; i++)
        {
            Assert.Equal(i < 4 ? HpackStatus.Ok : HpackStatus.HeaderListTooLarge, decoder.Decode(bomb.AsSpan(i, 1), endHeaders: i == 1999, ref counter));
        }

        Assert.Equal(4, counter.Count);
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(false, 1000)]
    [InlineData(false, 1 << 20)]
    [InlineData(true, 7)]
    [InlineData(true, 1 << 20)]
    public void Skips_a_huge_literal_without_buffering_it_and_empties_the_table(bool huffman, int fragmentSize)
    {
        const int MaxList = 8 * 1024;
        using var decoder = new HpackDecoder(4096, MaxList);
        Assert.Equal(HpackStatus.Ok, Decode(decoder, BuildLiteralWithIndexing("keep", "me")).Status);

        // A 1 MiB value with incremental indexing, then a normal field that must still reach the table.
        byte[] value = [.. Enumerable.Repeat((byte)'z', 1 << 20)];
        byte[] block = [.. BuildLiteral(0x40, "huge", value, huffman), .. BuildLiteralWithIndexing("after", "ok")];

        var recorder = new HeaderRecorder();
        HpackStatus status = HpackStatus.Ok;
        for (int offset = 0; offset < block.Length; offset += fragmentSize)
        {
            int length = Math.Min(fragmentSize, block.Length - offset);
            status = decoder.Decode(block.AsSpan(offset, length), offset + length == block.Length, ref recorder);
        }

        Assert.Equal(HpackStatus.HeaderListTooLarge, status);
        Assert.Empty(recorder.Fields);

        // §4.4: the oversized entry emptied the table ("keep" is gone); the field after it was added.
        Assert.Equal([("after", "ok")], Entries(decoder.Table));
    }

    [Fact]
    public void Skips_a_huge_name_then_its_value_across_fragments()
    {
        byte[] block = [.. BuildLiteral(0x00, new string('n', 10_000), Latin1("v"), huffman: false), 0x82];
        for (int cut = 9_990; cut < block.Length; cut++)
        {
            using var d = new HpackDecoder(4096, 4096);
            Assert.Equal(HpackStatus.HeaderListTooLarge, Decode(d, block, 3, cut).Status);
        }
    }

    [Fact]
    public void Rejects_bad_Huffman_padding_in_a_skipped_string()
    {
        // 20 001 zero bytes take 13 bits each: 3 bits of padding in the last byte, made 110.
        byte[] encoded = new byte[HuffmanCodec.EncodedLength(new byte[20_001])];
        HuffmanCodec.TryEncode(new byte[20_001], encoded, out _);
        encoded[^1] &= 0xFE;
        byte[] block = [0x00, 0x01, (byte)'a', .. EncodeLength(encoded.Length, huffman: true), .. encoded];

        using var decoder = new HpackDecoder(4096, 1024);
        Assert.Equal(HpackStatus.CompressionError, Decode(decoder, block, 100, 5000).Status);
    }

    [Fact]
    public void Decodes_a_Huffman_string_that_could_fit_though_its_encoding_is_longer_than_the_limit()
    {
        // 1200 bytes of 0x00 (13-bit code) encode to 1950 bytes: longer than the 1500-byte list limit, yet the
        // field (1 + 1200 + 32) fits, so it must be decoded, not skipped. (A zero-size table keeps the string limit
        // at the list limit.)
        byte[] value = new byte[1200];
        using var decoder = new HpackDecoder(0, 1500);
        (HpackStatus status, List<(string Name, string Value)> fields) = Decode(decoder, BuildLiteral(0x40, "a", value, huffman: true));

        Assert.Equal(HpackStatus.Ok, status);
        Assert.Equal(1200, Assert.Single(fields).Value.Length);
        Assert.Equal(0, decoder.Table.Count);
    }

    [Fact]
    public void Steady_state_decoding_does_not_allocate()
    {
        byte[] block = Hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff 5886 a8eb 1064 9cbf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf");
        using var decoder = new HpackDecoder(4096, 16 * 1024);
        var counter = new HeaderCounter();
        decoder.Decode(block, endHeaders: true, ref counter);
        decoder.Decode(block.AsSpan(0, 20), endHeaders: false, ref counter);
        decoder.Decode(block.AsSpan(20), endHeaders: true, ref counter);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            decoder.Decode(block.AsSpan(0, 20), endHeaders: false, ref counter);
            decoder.Decode(block.AsSpan(20), endHeaders: true, ref counter);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    /// <summary>Hex of a raw string literal of <paramref name="length"/> 'v's, its length prefix included.</summary>
    private static string RawString(int length) =>
        " " + Convert.ToHexString(EncodeLength(length, huffman: false)) + Repeat("76", length);

    private static string Repeat(string hex, int count) => " " + string.Concat(Enumerable.Repeat(hex, count));

    private static byte[] BuildLiteralWithIndexing(string name, string value) => BuildLiteral(0x40, name, Latin1(value), huffman: false);

    /// <summary>A literal with a literal name: <paramref name="kind"/> is 0x40 (with indexing), 0x00 or 0x10.</summary>
    private static byte[] BuildLiteral(byte kind, string name, byte[] value, bool huffman)
    {
        byte[] nameBytes = Latin1(name);
        byte[] valueBytes = value;
        if (huffman)
        {
            valueBytes = new byte[HuffmanCodec.EncodedLength(value)];
            HuffmanCodec.TryEncode(value, valueBytes, out _);
        }

        return [kind, .. EncodeLength(nameBytes.Length, false), .. nameBytes, .. EncodeLength(valueBytes.Length, huffman), .. valueBytes];
    }

    private static byte[] EncodeLength(int length, bool huffman)
    {
        var buffer = new byte[8];
        HpackIntegers.TryEncode(length, 7, huffman ? (byte)0x80 : (byte)0, buffer, out int written);
        return buffer[..written];
    }
}

using Appliance.Protocol.Hpack;
using static Appliance.Protocol.Tests.Hpack.HpackTestData;

namespace Appliance.Protocol.Tests.Hpack;

/// <summary>
/// Every example of RFC 7541 Appendix C (C.2 to C.6): the decoded fields and the dynamic table (entries, newest first,
/// and size) after each block; then the same blocks cut at every byte boundary.
/// </summary>
public class AppendixCTests
{
    private const string Date21 = "Mon, 21 Oct 2013 20:13:21 GMT";
    private const string Date22 = "Mon, 21 Oct 2013 20:13:22 GMT";
    private const string Cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";

    private static readonly (string Name, string Value)[] s_request1 =
        [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")];

    private static readonly (string Name, string Value)[] s_request2 = [.. s_request1, ("cache-control", "no-cache")];

    private static readonly (string Name, string Value)[] s_request3 =
        [(":method", "GET"), (":scheme", "https"), (":path", "/index.html"), (":authority", "www.example.com"), ("custom-key", "custom-value")];

    private static readonly (string Name, string Value)[] s_response1 =
        [(":status", "302"), ("cache-control", "private"), ("date", Date21), ("location", "https://www.example.com")];

    private static readonly (string Name, string Value)[] s_response2 =
        [(":status", "307"), ("cache-control", "private"), ("date", Date21), ("location", "https://www.example.com")];

    private static readonly (string Name, string Value)[] s_response3 =
    [
        (":status", "200"), ("cache-control", "private"), ("date", Date22), ("location", "https://www.example.com"),
        ("content-encoding", "gzip"), ("set-cookie", Cookie),
    ];

    private static readonly (string Name, string Value)[] s_requestTable1 = [(":authority", "www.example.com")];
    private static readonly (string Name, string Value)[] s_requestTable2 = [("cache-control", "no-cache"), (":authority", "www.example.com")];
    private static readonly (string Name, string Value)[] s_requestTable3 = [("custom-key", "custom-value"), .. s_requestTable2];

    private static readonly (string Name, string Value)[] s_responseTable1 =
        [("location", "https://www.example.com"), ("date", Date21), ("cache-control", "private"), (":status", "302")];

    private static readonly (string Name, string Value)[] s_responseTable2 =
        [(":status", "307"), ("location", "https://www.example.com"), ("date", Date21), ("cache-control", "private")];

    private static readonly (string Name, string Value)[] s_responseTable3 =
        [("set-cookie", Cookie), ("content-encoding", "gzip"), ("date", Date22)];

    /// <summary>One example: table size, then per block its bytes, fields, table entries and table size.</summary>
    private static readonly Dictionary<string, (int TableSize, Block[] Blocks)> s_examples = new()
    {
        ["C.2.1 literal with indexing"] = (4096,
        [
            new("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
                [("custom-key", "custom-header")], [("custom-key", "custom-header")], 55),
        ]),
        ["C.2.2 literal without indexing"] = (4096, [new("040c 2f73 616d 706c 652f 7061 7468", [(":path", "/sample/path")], [], 0)]),
        ["C.2.3 literal never indexed"] = (4096, [new("1008 7061 7373 776f 7264 0673 6563 7265 74", [("password", "secret")], [], 0)]),
        ["C.2.4 indexed"] = (4096, [new("82", [(":method", "GET")], [], 0)]),
        ["C.3 requests without Huffman"] = (4096,
        [
            new("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", s_request1, s_requestTable1, 57),
            new("8286 84be 5808 6e6f 2d63 6163 6865", s_request2, s_requestTable2, 110),
            new("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65", s_request3, s_requestTable3, 164),
        ]),
        ["C.4 requests with Huffman"] = (4096,
        [
            new("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", s_request1, s_requestTable1, 57),
            new("8286 84be 5886 a8eb 1064 9cbf", s_request2, s_requestTable2, 110),
            new("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", s_request3, s_requestTable3, 164),
        ]),
        ["C.5 responses without Huffman"] = (256,
        [
            new("4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                s_response1, s_responseTable1, 222),
            new("4803 3330 37c1 c0bf", s_response2, s_responseTable2, 222),
            new("88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
                s_response3, s_responseTable3, 215),
        ]),
        ["C.6 responses with Huffman"] = (256,
        [
            new("4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                s_response1, s_responseTable1, 222),
            new("4883 640e ffc1 c0bf", s_response2, s_responseTable2, 222),
            new("88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
                s_response3, s_responseTable3, 215),
        ]),
    };

    public static TheoryData<string> Examples => new(s_examples.Keys);

    [Fact]
    public void Indexed_fields_name_their_table_entry_for_the_decoders_life()
    {
        // C.3: static entries are -index; the dynamic :authority is entry 1 (the first inserted) whether it sits at
        // dynamic index 1 (C.3.2) or 2 (C.3.3, after cache-control was inserted); literals are 0.
        using var decoder = new HpackDecoder(4096, 64 * 1024);
        long[][] expected = [[-2, -6, -4, 0], [-2, -6, -4, 1, 0], [-2, -7, -5, 1, 0]];
        string[] blocks =
        [
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ];
        for (int i = 0; i < blocks.Length; i++)
        {
            var recorder = new HeaderRecorder();
            Assert.Equal(HpackStatus.Ok, decoder.Decode(Hex(blocks[i]), endHeaders: true, ref recorder));
            Assert.Equal(expected[i], recorder.Entries);
        }

        // After the table is emptied (a size update to 0) and refilled, a new entry gets a new number, never a reused one.
        var again = new HeaderRecorder();
        Assert.Equal(HpackStatus.Ok, decoder.Decode(Hex("20 3fe1 1f 418c f1e3 c2e5 f23a 6ba0 ab90 f4ff be"), endHeaders: true, ref again));
        Assert.Equal([0, 4], again.Entries);
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void Decodes_each_block_and_leaves_the_table_of_the_RFC(string example)
    {
        (int tableSize, Block[] blocks) = s_examples[example];
        using var decoder = new HpackDecoder(tableSize, 64 * 1024);
        foreach (Block block in blocks)
        {
            (HpackStatus status, List<(string, string)> fields) = Decode(decoder, Hex(block.Hex));

            Assert.Equal(HpackStatus.Ok, status);
            Assert.Equal(block.Fields, fields);
            Assert.Equal(block.Table, Entries(decoder.Table));
            Assert.Equal(block.TableSize, decoder.Table.Size);
        }
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void Decodes_the_same_when_a_block_is_cut_at_any_byte_boundary(string example)
    {
        (int tableSize, Block[] blocks) = s_examples[example];
        for (int b = 0; b < blocks.Length; b++)
        {
            byte[] bytes = Hex(blocks[b].Hex);
            for (int cut = 0; cut <= bytes.Length; cut++)
            {
                using HpackDecoder decoder = Replay(tableSize, blocks, b);
                (HpackStatus status, List<(string, string)> fields) = Decode(decoder, bytes, cut);

                Assert.Equal(HpackStatus.Ok, status);
                Assert.Equal(blocks[b].Fields, fields);
                Assert.Equal(blocks[b].Table, Entries(decoder.Table));
            }

            // Every byte its own CONTINUATION frame.
            using HpackDecoder byteWise = Replay(tableSize, blocks, b);
            (HpackStatus byteStatus, List<(string, string)> byteFields) = Decode(byteWise, bytes, [.. Enumerable.Range(1, bytes.Length - 1)]);
            Assert.Equal(HpackStatus.Ok, byteStatus);
            Assert.Equal(blocks[b].Fields, byteFields);
        }
    }

    [Fact]
    public void Decodes_the_same_when_a_block_is_cut_at_any_two_byte_boundaries()
    {
        (int tableSize, Block[] blocks) = s_examples["C.6 responses with Huffman"];
        byte[] bytes = Hex(blocks[2].Hex);
        for (int first = 0; first <= bytes.Length; first++)
        {
            for (int second = first; second <= bytes.Length; second++)
            {
                using HpackDecoder decoder = Replay(tableSize, blocks, 2);
                (HpackStatus status, List<(string, string)> fields) = Decode(decoder, bytes, first, second);

                Assert.Equal(HpackStatus.Ok, status);
                Assert.Equal(blocks[2].Fields, fields);
                Assert.Equal(blocks[2].TableSize, decoder.Table.Size);
            }
        }
    }

    private static HpackDecoder Replay(int tableSize, Block[] blocks, int count)
    {
        var decoder = new HpackDecoder(tableSize, 64 * 1024);
        for (int i = 0; i < count; i++)
        {
            Assert.Equal(HpackStatus.Ok, Decode(decoder, Hex(blocks[i].Hex)).Status);
        }

        return decoder;
    }

    private sealed record Block(string Hex, (string Name, string Value)[] Fields, (string Name, string Value)[] Table, int TableSize);
}

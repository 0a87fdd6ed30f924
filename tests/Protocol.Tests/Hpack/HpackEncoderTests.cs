using System.Text;
using Appliance.Protocol.Hpack;
using static Appliance.Protocol.Tests.Hpack.HpackTestData;

namespace Appliance.Protocol.Tests.Hpack;

public class HpackEncoderTests
{
    private static readonly string[] s_names =
    [
        ":authority", ":method", ":path", ":scheme", "accept", "accept-encoding", "accept-language", "authorization",
        "cache-control", "content-length", "content-type", "cookie", "date", "etag", "last-modified", "location",
        "proxy-authorization", "server", "set-cookie", "user-agent", "vary", "x-request-id", "x-custom", "x-forwarded-for",
        "strict-transport-security", "traceparent", "content-range",
    ];

    [Theory]
    [InlineData(200, "88")]
    [InlineData(204, "89")]
    [InlineData(206, "8a")]
    [InlineData(304, "8b")]
    [InlineData(400, "8c")]
    [InlineData(404, "8d")]
    [InlineData(500, "8e")]
    [InlineData(302, "08 03 33 30 32")]
    [InlineData(101, "08 03 31 30 31")]
    [InlineData(999, "08 03 39 39 39")]
    public void Encodes_status_as_an_index_or_a_literal_with_the_indexed_name(int status, string hex)
    {
        var encoder = new HpackEncoder();
        var buffer = new byte[16];
        int written = 0;

        Assert.True(encoder.EncodeStatus(status, buffer, ref written));
        Assert.Equal(Hex(hex), buffer[..written]);
        Assert.Equal(0, encoder.Table.Count);

        using var decoder = new HpackDecoder(4096, 4096);
        Assert.Equal([(":status", status.ToString(System.Globalization.CultureInfo.InvariantCulture))], Decode(decoder, buffer[..written]).Fields);
    }

    [Fact]
    public void Rejects_a_status_outside_three_digits()
    {
        var encoder = new HpackEncoder();
        int written = 0;
        Assert.Throws<ArgumentOutOfRangeException>(() => encoder.EncodeStatus(99, new byte[8], ref written));
        Assert.Throws<ArgumentOutOfRangeException>(() => encoder.EncodeStatus(1000, new byte[8], ref written));
    }

    [Fact]
    public void A_repeated_response_is_mostly_indexed()
    {
        var encoder = new HpackEncoder();
        using var decoder = new HpackDecoder(4096, 16 * 1024);
        byte[] first = EncodeResponse(encoder, "Tue, 15 Nov 1994 08:12:31 GMT", "1234");
        byte[] second = EncodeResponse(encoder, "Tue, 15 Nov 1994 08:12:32 GMT", "98765");

        // :status, content-type and server are one byte each; content-length and date are literals whose static name
        // index (28, 33) takes two bytes with a 4-bit prefix, then a length byte and the Huffman-coded value.
        Assert.Equal(0x88, second[0]);
        Assert.True(second.Length <= 3 + (3 + 4) + (3 + 22), $"second response took {second.Length} bytes");
        Assert.True(first.Length - second.Length >= 30, $"{first.Length} then {second.Length} bytes"); // content-type and server values

        Assert.Equal(
            [(":status", "200"), ("content-type", "application/json; charset=utf-8"), ("content-length", "1234"), ("date", "Tue, 15 Nov 1994 08:12:31 GMT"), ("server", "appliance")],
            Decode(decoder, first).Fields);
        Assert.Equal("98765", Decode(decoder, second).Fields[2].Value);

        // Only the repeating fields went into the table.
        Assert.Equal([("server", "appliance"), ("content-type", "application/json; charset=utf-8")], Entries(encoder.Table));
        Assert.Equal(Entries(encoder.Table), Entries(decoder.Table));
    }

    [Theory]
    [InlineData("date", "Tue, 15 Nov 1994 08:12:31 GMT")] // static name, Huffman value
    [InlineData("etag", "\"33a64df551425fcc55e4d42a148795d9f25f89d4\"")]
    [InlineData("x-volatile", "1")] // a literal name, raw value (Huffman would not be shorter)
    [InlineData("x-unknown", "")]
    public void A_pre_encoded_field_is_what_encode_writes_for_it_and_leaves_both_tables_alone(string name, string value)
    {
        byte[] field = HpackEncoder.EncodeWithoutIndexing(Latin1(name), Latin1(value));
        using var decoder = new HpackDecoder(4096, 4096);

        // Two blocks that carry it, each after an indexed field, decode to the field every time.
        var encoder = new HpackEncoder();
        for (int i = 0; i < 2; i++)
        {
            var buffer = new byte[256];
            int written = 0;
            Assert.True(encoder.BeginBlock(buffer, ref written));
            Assert.True(encoder.Encode("server"u8, "appliance"u8, buffer, ref written));
            Assert.True(HpackEncoder.WriteEncoded(field, buffer, ref written));
            Assert.Equal([("server", "appliance"), (name, value)], Decode(decoder, buffer[..written]).Fields);
        }

        Assert.Equal([("server", "appliance")], Entries(decoder.Table));
        Assert.Equal(Entries(encoder.Table), Entries(decoder.Table));

        // For a field the encoder treats as changing per message, the bytes are the ones Encode writes.
        if (name is "date" or "etag")
        {
            var direct = new byte[256];
            int n = 0;
            Assert.True(new HpackEncoder().Encode(Latin1(name), Latin1(value), direct, ref n));
            Assert.Equal(direct[..n], field);
        }
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(13L)] // two digits: raw (Huffman would not be shorter)
    [InlineData(16384L)] // five digits: Huffman-coded
    [InlineData(1L)]
    [InlineData(9L)]
    [InlineData(10L)]
    [InlineData(222L)]
    [InlineData(333L)]
    [InlineData(1000L)]
    [InlineData(3999L)]
    [InlineData(12345678L)]
    [InlineData(999_999_999L)]
    [InlineData(9_999_999_999L)] // the longest the ten-digit path takes
    [InlineData(10_000_000_000L)] // the general path from here
    [InlineData(long.MaxValue)]
    public void Content_length_is_written_as_encode_writes_it(long length)
    {
        string digits = length.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var expected = new byte[64];
        int n = 0;
        Assert.True(new HpackEncoder().Encode("content-length"u8, Latin1(digits), expected, ref n));

        var buffer = new byte[64];
        int written = 2;
        Assert.True(HpackEncoder.EncodeContentLength(length, buffer, ref written));
        Assert.Equal(expected[..n], buffer[2..written]);
        using var decoder = new HpackDecoder(4096, 4096);
        Assert.Equal([("content-length", digits)], Decode(decoder, buffer[2..written]).Fields);
        Assert.Equal(0, decoder.Table.Count);

        // Too little room: nothing written, false (the caller grows its buffer and calls again).
        var small = new byte[n - 1];
        int none = 0;
        Assert.False(HpackEncoder.EncodeContentLength(length, small, ref none));
        Assert.Equal(0, none);
        Assert.All(small, b => Assert.Equal(0, b));
        Assert.Throws<ArgumentOutOfRangeException>(() => HpackEncoder.EncodeContentLength(-1, buffer, ref none));
    }

    [Fact]
    public void Writing_a_pre_encoded_field_into_too_little_room_writes_nothing()
    {
        byte[] field = HpackEncoder.EncodeWithoutIndexing("date"u8, "Tue, 15 Nov 1994 08:12:31 GMT"u8);
        var buffer = new byte[field.Length + 2];
        int written = 3;
        Assert.False(HpackEncoder.WriteEncoded(field, buffer, ref written));
        Assert.Equal(3, written);
        Assert.All(buffer, b => Assert.Equal(0, b));
        written = 2;
        Assert.True(HpackEncoder.WriteEncoded(field, buffer, ref written));
        Assert.Equal(buffer.Length, written);
    }

    [Fact]
    public void Repeated_fields_are_one_byte_each_and_decode_right_through_evictions_size_changes_and_lookalikes()
    {
        // "x-ab" and "x-cb" share a hint slot (same length, same first and last bytes), and values change between
        // blocks. Every block must decode to what was encoded whatever the hints say.
        var encoder = new HpackEncoder();
        using var decoder = new HpackDecoder(4096, 64 * 1024);
        (string, string)[][] blocks =
        [
            [("content-type", "text/plain"), ("server", "appliance"), ("x-ab", "1"), ("x-cb", "1")],
            [("content-type", "text/plain"), ("server", "appliance"), ("x-ab", "1"), ("x-cb", "1")],
            [("content-type", "text/html"), ("server", "appliance"), ("x-cb", "1"), ("x-ab", "2")],
            [("content-type", "text/plain"), ("server", "appliance"), ("x-ab", "1"), ("x-cb", "1")],
            [("x-big", new string('b', 4000)), ("content-type", "text/plain"), ("server", "appliance")], // evicts the rest
            [("content-type", "text/plain"), ("server", "appliance")],
        ];
        foreach ((string, string)[] block in blocks)
        {
            Assert.Equal(block, Decode(decoder, EncodeBlock(encoder, block)).Fields);
            Assert.Equal(Entries(encoder.Table), Entries(decoder.Table));
        }

        // The second identical block is all indexes: one byte per field.
        var again = new HpackEncoder();
        EncodeBlock(again, blocks[0]);
        Assert.Equal(4, EncodeBlock(again, blocks[0]).Length);

        // The peer shrinks the table to nothing, then allows it again: no index to an evicted entry is ever sent.
        encoder.SetPeerMaxTableSize(0);
        Assert.Equal(blocks[5], Decode(decoder, EncodeBlock(encoder, blocks[5])).Fields);
        encoder.SetPeerMaxTableSize(4096);
        Assert.Equal(blocks[5], Decode(decoder, EncodeBlock(encoder, blocks[5])).Fields);
        Assert.Equal(blocks[5], Decode(decoder, EncodeBlock(encoder, blocks[5])).Fields);
        Assert.Equal(Entries(encoder.Table), Entries(decoder.Table));
    }

    private static byte[] EncodeBlock(HpackEncoder encoder, (string Name, string Value)[] fields)
    {
        var buffer = new byte[16 * 1024];
        int written = 0;
        Assert.True(encoder.BeginBlock(buffer, ref written));
        foreach ((string name, string value) in fields)
        {
            Assert.True(encoder.Encode(Latin1(name), Latin1(value), buffer, ref written));
        }

        return buffer[..written];
    }

    [Fact]
    public void Encoding_a_repeated_response_does_not_allocate()
    {
        var encoder = new HpackEncoder();
        var buffer = new byte[256];
        EncodeResponse(encoder, buffer);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            EncodeResponse(encoder, buffer);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Theory]
    [InlineData("authorization", "Bearer abc.def.ghi", false)]
    [InlineData("proxy-authorization", "Basic dTpw", false)]
    [InlineData("cookie", "session=8f14e45fceea167a", false)]
    [InlineData("set-cookie", "id=a3fWa; Secure; HttpOnly", false)]
    [InlineData("x-api-key", "k-123456", true)]
    [InlineData("authorization", "", false)] // a full static match (index 23), still never indexed
    public void Writes_sensitive_fields_never_indexed_and_keeps_them_out_of_the_table(string name, string value, bool sensitive)
    {
        var encoder = new HpackEncoder();
        var buffer = new byte[128];
        for (int round = 0; round < 2; round++)
        {
            int written = 0;
            Assert.True(encoder.Encode(Latin1(name), Latin1(value), buffer, ref written, sensitive));

            // §6.2.3: 0001 xxxx.
            Assert.Equal(0x10, buffer[0] & 0xF0);
            Assert.Equal(0, encoder.Table.Count);

            using var decoder = new HpackDecoder(4096, 4096);
            Assert.Equal([(name, value)], Decode(decoder, buffer[..written]).Fields);
        }
    }

    [Fact]
    public void Writes_volatile_fields_without_indexing()
    {
        var encoder = new HpackEncoder();
        var buffer = new byte[128];
        foreach (string name in new[] { "content-length", "date", "etag", "last-modified", "x-request-id", "location" })
        {
            int written = 0;
            Assert.True(encoder.Encode(Latin1(name), "v1"u8, buffer, ref written));
            Assert.Equal(0x00, buffer[0] & 0xF0);
        }

        Assert.Equal(0, encoder.Table.Count);
    }

    [Fact]
    public void Uses_Huffman_only_when_shorter()
    {
        var encoder = new HpackEncoder();
        var buffer = new byte[64];
        int written = 0;
        Assert.True(encoder.Encode("x-a"u8, "www.example.com"u8, buffer, ref written));
        Assert.Equal(0x80, buffer[5] & 0x80); // the value's length byte follows 0x40, the name's length and "x-a"

        written = 0;
        Assert.True(encoder.Encode("x-b"u8, [0xff, 0xfe, 0xfd], buffer, ref written)); // codes of 26 to 28 bits
        Assert.Equal(0, buffer[5] & 0x80);
    }

    [Fact]
    public void Returns_false_without_writing_or_changing_state_when_the_buffer_is_too_small()
    {
        var encoder = new HpackEncoder();
        var reference = new HpackEncoder();
        var big = new byte[256];
        int referenceWritten = 0;
        Assert.True(reference.Encode("x-custom"u8, "some value"u8, big, ref referenceWritten));

        for (int size = 0; size < referenceWritten; size++)
        {
            var small = new byte[size];
            int written = 0;
            Assert.False(encoder.Encode("x-custom"u8, "some value"u8, small, ref written));
            Assert.Equal(0, written);
            Assert.Equal(0, encoder.Table.Count);
        }

        int finalWritten = 0;
        var output = new byte[256];
        Assert.True(encoder.Encode("x-custom"u8, "some value"u8, output, ref finalWritten));
        Assert.Equal(big[..referenceWritten], output[..finalWritten]);

        encoder.SetPeerMaxTableSize(0);
        int w = 0;
        Assert.False(encoder.BeginBlock([], ref w));
        Assert.True(encoder.BeginBlock(new byte[1], ref w));
        Assert.Equal(1, w);
    }

    [Fact]
    public void Signals_table_size_changes_at_the_start_of_the_next_block()
    {
        var encoder = new HpackEncoder();
        using var decoder = new HpackDecoder(4096, 16 * 1024);
        var buffer = new byte[64];

        int written = 0;
        Assert.True(encoder.BeginBlock(buffer, ref written));
        Assert.Equal(0, written); // nothing pending at the default size
        Assert.True(encoder.Encode("x-a"u8, "1"u8, buffer, ref written));
        Assert.Equal(HpackStatus.Ok, Decode(decoder, buffer[..written]).Status);
        Assert.Equal(1, decoder.Table.Count);

        // Peer shrinks to 0 then grows to 4096 between blocks: §4.2 wants the smallest then the final size.
        encoder.SetPeerMaxTableSize(0);
        Assert.Equal(0, encoder.Table.Count);
        encoder.SetPeerMaxTableSize(4096);
        written = 0;
        Assert.True(encoder.BeginBlock(buffer, ref written));
        Assert.Equal(Hex("20 3f e1 1f"), buffer[..written]);
        Assert.True(encoder.Encode("x-a"u8, "1"u8, buffer, ref written));
        Assert.Equal(HpackStatus.Ok, Decode(decoder, buffer[..written]).Status);
        Assert.Equal(Entries(encoder.Table), Entries(decoder.Table));

        // Raising above our own limit changes nothing; a later block starts without an update.
        encoder.SetPeerMaxTableSize(65536);
        written = 0;
        Assert.True(encoder.BeginBlock(buffer, ref written));
        Assert.Equal(0, written);
    }

    [Fact]
    public void Announces_a_table_smaller_than_the_default_in_the_first_block()
    {
        var encoder = new HpackEncoder(1024);
        var buffer = new byte[8];
        int written = 0;
        Assert.True(encoder.BeginBlock(buffer, ref written));
        Assert.Equal(Hex("3f e1 07"), buffer[..written]);
    }

    [Fact]
    public void Round_trips_random_header_lists_with_table_size_changes_in_between()
    {
        var random = new Random(9113);
        var encoder = new HpackEncoder();
        using var decoder = new HpackDecoder(4096, 1 << 20);
        var buffer = new byte[1 << 16];
        var previous = new List<(string Name, string Value)>();
        int[] sizes = [0, 64, 256, 1000, 4096, 4096, 4096, 8192];

        for (int block = 0; block < 1500; block++)
        {
            if (random.Next(8) == 0)
            {
                encoder.SetPeerMaxTableSize(sizes[random.Next(sizes.Length)]);
                if (random.Next(2) == 0)
                {
                    encoder.SetPeerMaxTableSize(sizes[random.Next(sizes.Length)]);
                }
            }

            var fields = new List<(string Name, string Value, bool Sensitive)>();
            int count = random.Next(0, 20);
            for (int i = 0; i < count; i++)
            {
                if (previous.Count > 0 && random.Next(3) == 0)
                {
                    (string n, string v) = previous[random.Next(previous.Count)];
                    fields.Add((n, v, false));
                    continue;
                }

                string name = random.Next(3) == 0 ? RandomName(random) : s_names[random.Next(s_names.Length)];
                fields.Add((name, RandomValue(random), random.Next(10) == 0));
            }

            int written = 0;
            Assert.True(encoder.BeginBlock(buffer, ref written));
            foreach ((string name, string value, bool sensitive) in fields)
            {
                Assert.True(encoder.Encode(Latin1(name), Latin1(value), buffer, ref written, sensitive));
            }

            // Cut the block into up to three fragments.
            int cut1 = random.Next(0, written + 1);
            int cut2 = random.Next(cut1, written + 1);
            (HpackStatus status, List<(string Name, string Value)> decoded) = Decode(decoder, buffer[..written], cut1, cut2);

            Assert.Equal(HpackStatus.Ok, status);
            Assert.Equal(fields.Select(f => (f.Name, f.Value)), decoded);
            Assert.Equal(encoder.Table.Size, decoder.Table.Size);
            Assert.Equal(Entries(encoder.Table), Entries(decoder.Table));

            previous = [.. fields.Where(f => !f.Sensitive).Select(f => (f.Name, f.Value))];
        }
    }

    private static string RandomName(Random random)
    {
        const string Token = "abcdefghijklmnopqrstuvwxyz0123456789-_!#$%&'*+.^`|~";
        var sb = new StringBuilder();
        int length = random.Next(1, 30);
        for (int i = 0; i < length; i++)
        {
            sb.Append(Token[random.Next(Token.Length)]);
        }

        return sb.ToString();
    }

    private static string RandomValue(Random random)
    {
        int length = random.Next(10) switch
        {
            0 => 0,
            1 => random.Next(200, 1500),
            _ => random.Next(1, 60),
        };

        var sb = new StringBuilder();
        for (int i = 0; i < length; i++)
        {
            // visible ASCII, space and tab, and obs-text (0x80-0xFF)
            int kind = random.Next(10);
            sb.Append(kind switch
            {
                0 => (char)random.Next(0x80, 0x100),
                1 => ' ',
                2 => '\t',
                _ => (char)random.Next(0x21, 0x7F),
            });
        }

        return sb.ToString();
    }

    private static byte[] EncodeResponse(HpackEncoder encoder, string date, string length)
    {
        var buffer = new byte[256];
        int written = 0;
        Assert.True(encoder.BeginBlock(buffer, ref written));
        Assert.True(encoder.EncodeStatus(200, buffer, ref written));
        Assert.True(encoder.Encode("content-type"u8, "application/json; charset=utf-8"u8, buffer, ref written));
        Assert.True(encoder.Encode("content-length"u8, Latin1(length), buffer, ref written));
        Assert.True(encoder.Encode("date"u8, Latin1(date), buffer, ref written));
        Assert.True(encoder.Encode("server"u8, "appliance"u8, buffer, ref written));
        return buffer[..written];
    }

    private static int EncodeResponse(HpackEncoder encoder, byte[] buffer)
    {
        int written = 0;
        encoder.BeginBlock(buffer, ref written);
        encoder.EncodeStatus(200, buffer, ref written);
        encoder.Encode("content-type"u8, "text/html; charset=utf-8"u8, buffer, ref written);
        encoder.Encode("content-length"u8, "1024"u8, buffer, ref written);
        encoder.Encode("date"u8, "Tue, 15 Nov 1994 08:12:31 GMT"u8, buffer, ref written);
        encoder.Encode("server"u8, "appliance"u8, buffer, ref written);
        return written;
    }
}

using System.Buffers;
using Appliance.Protocol.Hpack;
using static Appliance.Protocol.Tests.Hpack.HpackTestData;

namespace Appliance.Protocol.Tests.Hpack;

public class HuffmanCodecTests
{
    public static TheoryData<int> AllBytes => new(Enumerable.Range(0, 256));

    [Theory]
    [MemberData(nameof(AllBytes))]
    public void Round_trips_every_byte_value_alone_and_surrounded(int value)
    {
        foreach (byte[] input in new[] { new[] { (byte)value }, [(byte)'a', (byte)value, (byte)'z'], Enumerable.Repeat((byte)value, 9).ToArray() })
        {
            Assert.Equal(input, RoundTrip(input));
        }
    }

    [Fact]
    public void Round_trips_all_256_values_in_one_string_and_random_strings()
    {
        byte[] all = [.. Enumerable.Range(0, 256).Select(i => (byte)i)];
        Assert.Equal(all, RoundTrip(all));
        Assert.Equal(all.Reverse().ToArray(), RoundTrip([.. all.Reverse()]));

        var random = new Random(7541);
        for (int i = 0; i < 2000; i++)
        {
            byte[] input = new byte[random.Next(0, 200)];
            random.NextBytes(input);
            Assert.Equal(input, RoundTrip(input));
        }
    }

    [Theory]
    [InlineData("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff")]
    [InlineData("no-cache", "a8eb 1064 9cbf")]
    [InlineData("custom-key", "25a8 49e9 5ba9 7d7f")]
    [InlineData("custom-value", "25a8 49e9 5bb8 e8b4 bf")]
    [InlineData("302", "6402")]
    [InlineData("private", "aec3 771a 4b")]
    [InlineData("Mon, 21 Oct 2013 20:13:21 GMT", "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff")]
    [InlineData("https://www.example.com", "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3")]
    public void Encodes_the_strings_of_appendix_C(string text, string hex)
    {
        byte[] input = Latin1(text);
        byte[] expected = Hex(hex);
        var output = new byte[expected.Length];

        Assert.Equal(expected.Length, HuffmanCodec.EncodedLength(input));
        Assert.True(HuffmanCodec.TryEncode(input, output, out int written));
        Assert.Equal(expected.Length, written);
        Assert.Equal(expected, output);

        var decoded = new byte[HuffmanCodec.MaxDecodedLength(expected.Length)];
        Assert.Equal(OperationStatus.Done, HuffmanCodec.Decode(expected, decoded, out int length));
        Assert.Equal(text, System.Text.Encoding.Latin1.GetString(decoded, 0, length));
    }

    [Theory]
    [InlineData("1f ff", "padding of 11 bits")]
    [InlineData("ff", "padding of 8 bits alone")]
    [InlineData("1f ff ff", "padding of 19 bits")]
    [InlineData("18", "padding of zeros")]
    [InlineData("1d", "padding 101")]
    [InlineData("fe", "padding 1111111 0: ends inside a code")]
    [InlineData("ff ff ff fc", "EOS then padding")]
    [InlineData("ff ff ff ff", "EOS then two more ones")]
    [InlineData("1f ff ff ff ff", "a then EOS")]
    [InlineData("ff ff ff fc 1f", "EOS in the middle")]
    public void Rejects_bad_padding_and_EOS(string hex, string because)
    {
        byte[] input = Hex(hex);
        var output = new byte[64];

        Assert.True(OperationStatus.InvalidData == HuffmanCodec.Decode(input, output, out _), because);

        int state = HuffmanCodec.StartState;
        bool valid = HuffmanCodec.TryAdvance(input, ref state) && HuffmanCodec.IsComplete(state);
        Assert.False(valid, because);
    }

    [Fact]
    public void Accepts_up_to_seven_bits_of_padding()
    {
        // "a" is 00011: followed by 111 (3 bits of padding).
        var output = new byte[8];
        Assert.Equal(OperationStatus.Done, HuffmanCodec.Decode(Hex("1f"), output, out int written));
        Assert.Equal("a"u8.ToArray(), output[..written]);

        // "00" is 00000 00000 (10 bits), then 6 ones of padding.
        Assert.Equal(OperationStatus.Done, HuffmanCodec.Decode(Hex("00 3f"), output, out written));
        Assert.Equal("00"u8.ToArray(), output[..written]);

        Assert.Equal(OperationStatus.Done, HuffmanCodec.Decode([], output, out written));
        Assert.Equal(0, written);
    }

    [Fact]
    public void Validates_in_pieces_like_a_whole_decode()
    {
        var random = new Random(5);
        for (int i = 0; i < 500; i++)
        {
            byte[] input = new byte[random.Next(0, 12)];
            random.NextBytes(input);
            bool whole = HuffmanCodec.Decode(input, new byte[64], out _) == OperationStatus.Done;

            int cut = random.Next(0, input.Length + 1);
            int state = HuffmanCodec.StartState;
            bool pieces = HuffmanCodec.TryAdvance(input.AsSpan(0, cut), ref state)
                && HuffmanCodec.TryAdvance(input.AsSpan(cut), ref state)
                && HuffmanCodec.IsComplete(state);

            Assert.Equal(whole, pieces);
        }
    }

    [Fact]
    public void Reports_a_destination_too_small()
    {
        byte[] encoded = Encode("hello world"u8.ToArray());

        Assert.Equal(OperationStatus.DestinationTooSmall, HuffmanCodec.Decode(encoded, new byte[5], out int written));
        Assert.Equal(5, written);
        Assert.False(HuffmanCodec.TryEncode("hello world"u8, new byte[encoded.Length - 1], out _));
    }

    private static byte[] Encode(byte[] input)
    {
        var encoded = new byte[HuffmanCodec.EncodedLength(input)];
        Assert.True(HuffmanCodec.TryEncode(input, encoded, out int written));
        Assert.Equal(encoded.Length, written);
        return encoded;
    }

    private static byte[] RoundTrip(byte[] input)
    {
        byte[] encoded = Encode(input);
        var decoded = new byte[HuffmanCodec.MaxDecodedLength(encoded.Length)];
        Assert.Equal(OperationStatus.Done, HuffmanCodec.Decode(encoded, decoded, out int written));
        return decoded[..written];
    }
}

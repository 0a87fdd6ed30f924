using System.Buffers;
using Appliance.Protocol.Hpack;
using static Appliance.Protocol.Tests.Hpack.HpackTestData;

namespace Appliance.Protocol.Tests.Hpack;

public class HpackIntegersTests
{
    [Theory]
    [InlineData(10, 5, "0a")] // C.1.1
    [InlineData(1337, 5, "1f 9a 0a")] // C.1.2
    [InlineData(42, 8, "2a")] // C.1.3
    [InlineData(31, 5, "1f 00")]
    [InlineData(127, 7, "7f 00")]
    [InlineData(128, 7, "7f 01")]
    [InlineData(int.MaxValue, 5, "1f e0 ff ff ff 07")]
    [InlineData(int.MaxValue, 1, "01 fe ff ff ff 07")]
    public void Encodes_and_decodes_the_RFC_examples_and_edges(int value, int prefix, string hex)
    {
        byte[] expected = Hex(hex);
        var output = new byte[8];

        Assert.Equal(expected.Length, HpackIntegers.EncodedLength(value, prefix));
        Assert.True(HpackIntegers.TryEncode(value, prefix, 0, output, out int written));
        Assert.Equal(expected, output[..written]);

        Assert.Equal(OperationStatus.Done, HpackIntegers.Decode(expected, prefix, out int decoded, out int consumed));
        Assert.Equal(value, decoded);
        Assert.Equal(expected.Length, consumed);
    }

    [Fact]
    public void Round_trips_values_around_every_boundary_for_every_prefix()
    {
        int[] values = [0, 1, 2, 14, 15, 16, 30, 31, 32, 62, 63, 64, 126, 127, 128, 254, 255, 256, 16382, 16383, 16384,
            (1 << 21) + 200, (1 << 28) + 5, int.MaxValue - 1, int.MaxValue];
        var buffer = new byte[8];
        for (int prefix = 1; prefix <= 8; prefix++)
        {
            byte flags = (byte)(0xFF << prefix); // flag bits above the prefix must be ignored by the decoder
            foreach (int value in values)
            {
                Assert.True(HpackIntegers.TryEncode(value, prefix, prefix == 8 ? (byte)0 : flags, buffer, out int written));
                Assert.Equal(HpackIntegers.EncodedLength(value, prefix), written);
                Assert.Equal(OperationStatus.Done, HpackIntegers.Decode(buffer.AsSpan(0, written), prefix, out int decoded, out int consumed));
                Assert.Equal(value, decoded);
                Assert.Equal(written, consumed);

                for (int cut = 0; cut < written; cut++)
                {
                    Assert.Equal(OperationStatus.NeedMoreData, HpackIntegers.Decode(buffer.AsSpan(0, cut), prefix, out _, out _));
                }
            }
        }
    }

    [Theory]
    [InlineData("1f ff ff ff ff ff 0f", 5)] // 35 bits of value
    [InlineData("1f e1 ff ff ff 07", 5)] // int.MaxValue + 1
    [InlineData("ff ff ff ff ff 0f", 8)]
    [InlineData("1f 80 80 80 80 80 00", 5)] // six continuation bytes: over-long even though the value is 31
    [InlineData("7f ff ff ff ff 7f", 7)]
    public void Rejects_overflow_and_over_long_encodings(string hex, int prefix)
    {
        Assert.Equal(OperationStatus.InvalidData, HpackIntegers.Decode(Hex(hex), prefix, out _, out _));
    }

    [Fact]
    public void Accepts_non_minimal_encodings_within_five_continuation_bytes()
    {
        Assert.Equal(OperationStatus.Done, HpackIntegers.Decode(Hex("1f 80 80 80 80 00"), 5, out int value, out int consumed));
        Assert.Equal(31, value);
        Assert.Equal(6, consumed);
    }

    [Fact]
    public void Reports_a_destination_too_small()
    {
        Assert.False(HpackIntegers.TryEncode(1337, 5, 0, new byte[2], out _));
        Assert.False(HpackIntegers.TryEncode(1, 5, 0, [], out _));
    }
}

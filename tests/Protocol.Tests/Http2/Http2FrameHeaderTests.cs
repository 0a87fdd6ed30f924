using System.Buffers;
using Appliance.Protocol.Http2;
using Appliance.Protocol.Tests.Http1;

namespace Appliance.Protocol.Tests.Http2;

public class Http2FrameHeaderTests
{
    [Fact]
    public void Reads_the_nine_header_fields()
    {
        byte[] bytes = [0x01, 0x02, 0x03, 0x01, 0x25, 0x00, 0x00, 0x01, 0x2b];
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));

        Assert.True(Http2FrameHeader.TryRead(ref reader, out Http2FrameHeader header));
        Assert.Equal(0x010203, header.Length);
        Assert.Equal(Http2FrameType.Headers, header.Type);
        Assert.Equal(Http2FrameFlags.EndStream | Http2FrameFlags.EndHeaders | Http2FrameFlags.Priority, header.Flags);
        Assert.Equal(299, header.StreamId);
        Assert.Equal(9, reader.Consumed);
    }

    [Fact]
    public void Ignores_the_reserved_bit_of_the_stream_id()
    {
        byte[] bytes = Http2TestFrames.Build(0x0, 0x0, 0x8000_0003, []);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));

        Assert.True(Http2FrameHeader.TryRead(ref reader, out Http2FrameHeader header));
        Assert.Equal(3, header.StreamId);
    }

    [Fact]
    public void Incomplete_header_is_not_read_and_not_consumed()
    {
        byte[] bytes = Http2TestFrames.Build(Http2FrameType.Ping, Http2FrameFlags.None, 0, new byte[8]);
        for (int length = 0; length < Http2FrameHeader.Size; length++)
        {
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes, 0, length));
            Assert.False(Http2FrameHeader.TryRead(ref reader, out _));
            Assert.Equal(0, reader.Consumed);
        }
    }

    [Fact]
    public void Header_split_across_one_byte_segments_reads_the_same()
    {
        byte[] bytes = [0xFF, 0xFF, 0xFF, 0xEE, 0x08, 0x7F, 0xFF, 0xFF, 0xFF];
        var reader = new SequenceReader<byte>(new SegmentedInput(bytes, 1).Slice(0, bytes.Length));

        Assert.True(Http2FrameHeader.TryRead(ref reader, out Http2FrameHeader header));
        Assert.Equal(Http2FrameHeader.MaxLength, header.Length);
        Assert.Equal((Http2FrameType)0xEE, header.Type);
        Assert.False(header.IsKnownType);
        Assert.Equal(Http2FrameFlags.Padded, header.Flags);
        Assert.Equal(int.MaxValue, header.StreamId);
    }

    [Theory]
    [InlineData(0, Http2FrameType.Data, Http2FrameFlags.None, 0)]
    [InlineData(16_384, Http2FrameType.Continuation, Http2FrameFlags.EndHeaders, 1)]
    [InlineData(Http2FrameHeader.MaxLength, (Http2FrameType)0x42, (Http2FrameFlags)0xFF, int.MaxValue)]
    public void Write_then_read_round_trips(int length, Http2FrameType type, Http2FrameFlags flags, int streamId)
    {
        byte[] bytes = new byte[Http2FrameHeader.Size];
        new Http2FrameHeader(length, type, flags, streamId).Write(bytes);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));

        Assert.True(Http2FrameHeader.TryRead(ref reader, out Http2FrameHeader header));
        Assert.Equal((length, type, flags, streamId), (header.Length, header.Type, header.Flags, header.StreamId));
    }

    [Fact]
    public void Write_sends_the_reserved_bit_as_zero()
    {
        byte[] bytes = new byte[Http2FrameHeader.Size];
        new Http2FrameHeader(0, Http2FrameType.Data, Http2FrameFlags.None, -1).Write(bytes);

        Assert.Equal(0x7F, bytes[5]);
    }

    [Fact]
    public void Write_refuses_a_length_beyond_24_bits()
    {
        byte[] bytes = new byte[Http2FrameHeader.Size];
        Assert.Throws<InvalidOperationException>(() => new Http2FrameHeader(Http2FrameHeader.MaxLength + 1, Http2FrameType.Data, 0, 1).Write(bytes));
    }

    [Fact]
    public void Known_types_are_zero_to_nine()
    {
        for (int type = 0; type <= 255; type++)
        {
            Assert.Equal(type <= 9, new Http2FrameHeader(0, (Http2FrameType)type, 0, 0).IsKnownType);
        }
    }
}

using System.Buffers;
using Appliance.Protocol.Http2;
using Appliance.Protocol.Tests.Http1;
using static Appliance.Protocol.Tests.Http2.Http2TestFrames;

namespace Appliance.Protocol.Tests.Http2;

/// <summary>A connection's worth of frames must parse the same however the transport cuts the bytes.</summary>
public class Http2FrameSplitTests
{
    private static readonly byte[] s_input = Concat(
        Build(Http2FrameType.Settings, 0, 0, Concat(Setting(3, 100), Setting(4, 1 << 20), Setting(0x99, 1))),
        Build(Http2FrameType.WindowUpdate, 0, 0, U32(1 << 24)),
        Build(Http2FrameType.Headers, Http2FrameFlags.Priority | Http2FrameFlags.Padded, 1, [3, 0x80, 0, 0, 0, 41, 0x82, 0x86, 0x84, 0, 0, 0]),
        Build(Http2FrameType.Continuation, Http2FrameFlags.EndHeaders, 1, [0x41, 0x03, 0x61, 0x62, 0x63]),
        Build(Http2FrameType.Data, Http2FrameFlags.Padded, 1, [4, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0]),
        Build(0x2a, 0x01, 1, [9, 9, 9]),
        Build(Http2FrameType.Data, Http2FrameFlags.EndStream, 1, Bytes(40)),
        Build(Http2FrameType.Priority, 0, 3, [0, 0, 0, 1, 200]),
        Build(Http2FrameType.RstStream, 0, 3, U32(8)),
        Build(Http2FrameType.Ping, 0, 0, [8, 7, 6, 5, 4, 3, 2, 1]),
        Build(Http2FrameType.Settings, Http2FrameFlags.Ack, 0),
        Build(Http2FrameType.Data, 0, 5, []),
        Build(Http2FrameType.GoAway, 0, 0, Concat(U32(1), U32(0), "bye"u8.ToArray())));

    private static readonly List<string> s_expected = Parse(new ReadOnlySequence<byte>(s_input), out _);

    [Fact]
    public void Whole_input_parses_to_every_frame()
    {
        Assert.Equal(13, s_expected.Count);
        Assert.DoesNotContain(s_expected, line => line.Contains('['));
        Assert.Equal("Headers s=1 f=0x28 len=12: end=False eh=False pad=3 dep=0 x=True w=41 frag=828684", s_expected[2]);
        Assert.Equal("Data s=1 f=0x08 len=12: end=False pad=4 flow=12 data=01020304050607", s_expected[4]);
    }

    [Fact]
    public void Input_cut_in_two_at_every_byte_parses_identically()
    {
        for (int cut = 0; cut <= s_input.Length; cut++)
        {
            ReadOnlySequence<byte> input = SegmentedInput.Create(s_input[..cut], s_input[cut..]);
            Assert.Equal(s_expected, Parse(input, out long consumed));
            Assert.Equal(s_input.Length, consumed);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(9)]
    [InlineData(10)]
    public void Input_in_small_segments_parses_identically(int segmentSize)
    {
        var segmented = new SegmentedInput(s_input, segmentSize);

        Assert.Equal(s_expected, Parse(segmented.Slice(0, s_input.Length), out _));
    }

    [Fact]
    public void Input_arriving_up_to_every_byte_boundary_parses_identically()
    {
        // The reader sees only the bytes received so far; what it cannot finish stays unconsumed for the next read.
        var segmented = new SegmentedInput(s_input, 5);
        for (int arrived = 0; arrived <= s_input.Length; arrived++)
        {
            List<string> first = Parse(segmented.Slice(0, arrived), out long consumed);
            List<string> rest = Parse(segmented.Slice(consumed, s_input.Length), out long restConsumed);
            Assert.Equal(s_expected, first.Concat(rest));
            Assert.Equal(s_input.Length, consumed + restConsumed);
        }
    }

    private static List<string> Parse(ReadOnlySequence<byte> input, out long consumed)
    {
        var frames = new List<string>();
        var reader = new SequenceReader<byte>(input);
        while (Http2FrameReader.TryReadFrame(ref reader, 16_384, out Http2FrameHeader header, out ReadOnlySequence<byte> payload, out _))
        {
            frames.Add(Describe(header, payload, out _));
        }

        Assert.False(Http2FrameReader.TryReadFrame(ref reader, 16_384, out _, out _, out Http2FrameError last) || last.IsError);
        consumed = reader.Consumed;
        return frames;
    }
}

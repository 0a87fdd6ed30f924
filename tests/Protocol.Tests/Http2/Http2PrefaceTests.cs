using System.Buffers;
using System.Text;
using Appliance.Protocol.Http2;
using Appliance.Protocol.Tests.Http1;

namespace Appliance.Protocol.Tests.Http2;

public class Http2PrefaceTests
{
    private static readonly byte[] s_preface = Encoding.ASCII.GetBytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

    [Fact]
    public void Preface_is_the_24_bytes_of_RFC_9113()
    {
        Assert.Equal(24, Http2Preface.Length);
        Assert.Equal(s_preface, Http2Preface.ClientPreface.ToArray());
    }

    [Fact]
    public void Whole_preface_matches()
    {
        Assert.Equal(PrefaceMatch.Match, Http2Preface.Check(new ReadOnlySequence<byte>(s_preface)));
        Assert.True(Http2Preface.IsPreface(new ReadOnlySequence<byte>(s_preface)));
    }

    [Fact]
    public void Preface_followed_by_a_settings_frame_matches()
    {
        byte[] input = Http2TestFrames.Concat(s_preface, Http2TestFrames.Build(Http2FrameType.Settings, Http2FrameFlags.None, 0));

        Assert.Equal(PrefaceMatch.Match, Http2Preface.Check(new ReadOnlySequence<byte>(input)));
    }

    [Fact]
    public void Every_proper_prefix_needs_more()
    {
        for (int length = 0; length < s_preface.Length; length++)
        {
            var input = new ReadOnlySequence<byte>(s_preface, 0, length);
            Assert.Equal(PrefaceMatch.NeedMore, Http2Preface.Check(input));
            Assert.False(Http2Preface.IsPreface(input));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    [InlineData(23)]
    public void Preface_split_into_segments_matches(int segmentSize)
    {
        byte[] input = Http2TestFrames.Concat(s_preface, [0, 0, 0]);
        var segmented = new SegmentedInput(input, segmentSize);

        Assert.Equal(PrefaceMatch.Match, Http2Preface.Check(segmented.Slice(0, input.Length)));
        for (int end = 0; end < s_preface.Length; end++)
        {
            Assert.Equal(PrefaceMatch.NeedMore, Http2Preface.Check(segmented.Slice(0, end)));
        }
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")]
    [InlineData("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")]
    [InlineData("PRI * HTTP/1.1\r\n\r\n")]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\rX")]
    [InlineData("PUT / HTTP/1.1\r\n")]
    public void Http1_requests_and_near_misses_do_not_match(string text)
    {
        byte[] input = Encoding.ASCII.GetBytes(text);
        Assert.Equal(PrefaceMatch.NoMatch, Http2Preface.Check(new ReadOnlySequence<byte>(input)));
        Assert.Equal(PrefaceMatch.NoMatch, Http2Preface.Check(new SegmentedInput(input, 1).Slice(0, input.Length)));
        Assert.False(Http2Preface.IsPreface(new ReadOnlySequence<byte>(input)));
    }

    [Fact]
    public void Http11_request_is_no_match_after_its_first_byte()
    {
        Assert.Equal(PrefaceMatch.NoMatch, Http2Preface.Check(new ReadOnlySequence<byte>("G"u8.ToArray())));
        Assert.Equal(PrefaceMatch.NoMatch, Http2Preface.Check(new ReadOnlySequence<byte>("GET / HTTP/1.1\r\n"u8.ToArray())));
    }

    [Fact]
    public void Try_consume_advances_only_past_a_whole_preface()
    {
        byte[] input = Http2TestFrames.Concat(s_preface, [1, 2, 3]);

        var partial = new SequenceReader<byte>(new ReadOnlySequence<byte>(input, 0, 10));
        Assert.Equal(PrefaceMatch.NeedMore, Http2Preface.TryConsume(ref partial));
        Assert.Equal(0, partial.Consumed);

        var whole = new SequenceReader<byte>(new ReadOnlySequence<byte>(input));
        Assert.Equal(PrefaceMatch.Match, Http2Preface.TryConsume(ref whole));
        Assert.Equal(24, whole.Consumed);

        var wrong = new SequenceReader<byte>(new ReadOnlySequence<byte>("GET / HTTP/1.1\r\n\r\n"u8.ToArray()));
        Assert.Equal(PrefaceMatch.NoMatch, Http2Preface.TryConsume(ref wrong));
        Assert.Equal(0, wrong.Consumed);
    }
}

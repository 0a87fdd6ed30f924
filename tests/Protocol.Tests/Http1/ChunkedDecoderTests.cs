using System.Buffers;
using System.Text;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using HttpMethod = Appliance.Protocol.Http1.HttpMethod;

namespace Appliance.Protocol.Tests.Http1;

public class ChunkedDecoderTests
{
    private const string Encoded =
        "4\r\nWiki\r\n" +
        "7;ext\r\npedia i\r\n" +
        "B;a=b;c=\"d e\"\r\nn \r\nchunks.\r\n" +
        "a\r\n0123456789\r\n" +
        "0;last\r\nExpires: never\r\nX-Sum: 1234\r\n\r\n";

    private const string Decoded = "Wikipedia in \r\nchunks.0123456789";

    public static TheoryData<int> SegmentSizes => new([1, 2, 3, 5, 8, 13, 64, 1000]);

    [Theory]
    [MemberData(nameof(SegmentSizes))]
    public void Decodes_body_across_arbitrary_splits(int segmentSize)
    {
        (string body, List<string> trailers, bool done) = Decode(Encoded, segmentSize, incremental: true, maxTake: long.MaxValue);

        Assert.True(done);
        Assert.Equal(Decoded, body);
        Assert.Equal(["Expires: never", "X-Sum: 1234"], trailers);
    }

    [Theory]
    [MemberData(nameof(SegmentSizes))]
    public void Decodes_body_when_the_caller_consumes_less_than_offered(int segmentSize)
    {
        (string body, _, bool done) = Decode(Encoded, segmentSize, incremental: false, maxTake: 3);

        Assert.True(done);
        Assert.Equal(Decoded, body);
    }

    [Fact]
    public void Offers_no_more_than_the_chunk_or_the_buffer_holds()
    {
        var decoder = new ChunkedDecoder(Http1ParserLimits.Default);
        var handler = default(DiscardHandler);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>("5\r\nabc"u8.ToArray()));

        Assert.Equal(ChunkedStatus.Data, decoder.Read(ref handler, ref reader, out long n, out _));
        Assert.Equal(3, n);
        Assert.Equal(5, decoder.RemainingInChunk);

        reader = new SequenceReader<byte>(new ReadOnlySequence<byte>("abcde\r\n3\r\nxyz"u8.ToArray()));
        Assert.Equal(ChunkedStatus.Data, decoder.Read(ref handler, ref reader, out n, out _));
        Assert.Equal(5, n);
        reader.Advance(5);
        decoder.ConsumeData(5);
        Assert.Equal(ChunkedStatus.Data, decoder.Read(ref handler, ref reader, out n, out _));
        Assert.Equal(3, n);
        Assert.Throws<ArgumentOutOfRangeException>(() => { var d = decoder; d.ConsumeData(4); });
    }

    [Fact]
    public void Needs_more_data_inside_a_size_line_without_consuming_it()
    {
        var decoder = new ChunkedDecoder(Http1ParserLimits.Default);
        var handler = default(DiscardHandler);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>("1f;name=va"u8.ToArray()));

        Assert.Equal(ChunkedStatus.NeedMoreData, decoder.Read(ref handler, ref reader, out _, out RequestRejection rejection));
        Assert.Equal(RequestRejection.None, rejection);
        Assert.Equal(0, reader.Consumed);
        Assert.False(decoder.IsDone);
    }

    [Fact]
    public void Stays_in_error_after_a_rejection()
    {
        var decoder = new ChunkedDecoder(Http1ParserLimits.Default);
        var handler = default(DiscardHandler);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>("g\r\n"u8.ToArray()));

        Assert.Equal(ChunkedStatus.Error, decoder.Read(ref handler, ref reader, out _, out RequestRejection first));
        reader = new SequenceReader<byte>(new ReadOnlySequence<byte>("0\r\n\r\n"u8.ToArray()));
        Assert.Equal(ChunkedStatus.Error, decoder.Read(ref handler, ref reader, out _, out RequestRejection second));
        Assert.Equal(RequestRejection.InvalidChunkSize, first);
        Assert.Equal(first, second);
    }

    [Fact]
    public void Accepts_the_largest_63_bit_chunk_size()
    {
        var decoder = new ChunkedDecoder(Http1ParserLimits.Default);
        var handler = default(DiscardHandler);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>("7fffffffffffffff\r\nx"u8.ToArray()));

        Assert.Equal(ChunkedStatus.Data, decoder.Read(ref handler, ref reader, out long n, out _));
        Assert.Equal(1, n);
        Assert.Equal(long.MaxValue, decoder.RemainingInChunk);
    }

    [Fact]
    public void Honours_a_smaller_extension_limit()
    {
        var limits = Http1ParserLimits.Default with { MaxChunkExtensionBytes = 8 };
        var decoder = new ChunkedDecoder(limits);
        var handler = default(DiscardHandler);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>("1;abcdefgh\r\nx"u8.ToArray()));

        Assert.Equal(ChunkedStatus.Error, decoder.Read(ref handler, ref reader, out _, out RequestRejection rejection));
        Assert.Equal(RequestRejection.ChunkExtensionTooLong, rejection);
    }

    [Fact]
    public void Empty_body_is_just_the_last_chunk()
    {
        (string body, List<string> trailers, bool done) = Decode("0\r\n\r\n", 1, incremental: true, maxTake: long.MaxValue);

        Assert.True(done);
        Assert.Equal("", body);
        Assert.Empty(trailers);
    }

    [Fact]
    public void Steady_state_decoding_does_not_allocate()
    {
        byte[] input = Encoding.ASCII.GetBytes(Encoded);
        ReadOnlySequence<byte> split = SegmentedInput.Create(input[..9], input[9..30], input[30..]);
        var handler = default(DiscardHandler);
        DecodeOnce(split);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            DecodeOnce(split);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        void DecodeOnce(ReadOnlySequence<byte> sequence)
        {
            var decoder = new ChunkedDecoder(Http1ParserLimits.Default);
            var reader = new SequenceReader<byte>(sequence);
            ChunkedStatus status;
            while ((status = decoder.Read(ref handler, ref reader, out long n, out _)) == ChunkedStatus.Data)
            {
                reader.Advance(n);
                decoder.ConsumeData(n);
            }

            if (status != ChunkedStatus.Done)
            {
                throw new InvalidOperationException(status.ToString());
            }
        }
    }

    private static (string Body, List<string> Trailers, bool Done) Decode(string encoded, int segmentSize, bool incremental, long maxTake)
    {
        byte[] input = Encoding.Latin1.GetBytes(encoded);
        var segmented = new SegmentedInput(input, segmentSize);
        var decoder = new ChunkedDecoder(Http1ParserLimits.Default);
        var trailers = new List<string>();
        var handler = new TrailerList(trailers);
        var body = new List<byte>();
        long consumed = 0;
        long available = incremental ? 0 : input.Length;
        while (true)
        {
            if (incremental)
            {
                available = Math.Min(input.Length, available + 1);
            }

            var reader = new SequenceReader<byte>(segmented.Slice(consumed, available));
            ChunkedStatus status;
            while ((status = decoder.Read(ref handler, ref reader, out long n, out RequestRejection rejection)) == ChunkedStatus.Data)
            {
                long take = Math.Min(n, maxTake);
                body.AddRange(reader.UnreadSequence.Slice(0, take).ToArray());
                reader.Advance(take);
                decoder.ConsumeData(take);
            }

            Assert.NotEqual(ChunkedStatus.Error, status);
            consumed += reader.Consumed;
            if (status == ChunkedStatus.Done)
            {
                Assert.Equal(input.Length, consumed);
                return (Encoding.Latin1.GetString(body.ToArray()), trailers, decoder.IsDone);
            }

            if (available == input.Length)
            {
                return (Encoding.Latin1.GetString(body.ToArray()), trailers, false);
            }
        }
    }

    private readonly struct DiscardHandler : IHttp1RequestHandler
    {
        public void OnRequestLine(HttpMethod method, ReadOnlySpan<byte> methodToken, ReadOnlySpan<byte> target, HttpVersion version)
        {
        }

        public void OnHeader(KnownHeader known, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
        }
    }

    private readonly struct TrailerList(List<string> trailers) : IHttp1RequestHandler
    {
        public void OnRequestLine(HttpMethod method, ReadOnlySpan<byte> methodToken, ReadOnlySpan<byte> target, HttpVersion version)
        {
        }

        public void OnHeader(KnownHeader known, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) =>
            trailers.Add($"{Encoding.Latin1.GetString(name)}: {Encoding.Latin1.GetString(value)}");
    }
}

using System.Buffers;
using System.Text;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using BenchmarkDotNet.Attributes;
using HttpMethod = Appliance.Protocol.Http1.HttpMethod;

namespace Appliance.Benchmarks;

/// <summary>
/// The HTTP/1.1 request parser on a typical browser-like GET with ten header fields: into a pooled
/// <see cref="HeaderCollection"/> (what the server does) and into a handler that only counts (the parser alone).
/// Both must report zero allocated bytes.
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class Http1ParserBenchmarks
{
    private static readonly byte[] s_request = Encoding.ASCII.GetBytes(
        "GET /api/v1/orders/12345?expand=items&page=2 HTTP/1.1\r\n" +
        "Host: shop.example.com\r\n" +
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n" +
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
        "Accept-Encoding: gzip, deflate, br, zstd\r\n" +
        "Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n" +
        "Connection: keep-alive\r\n" +
        "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; _ga=GA1.2.1234567890.1700000000\r\n" +
        "Referer: https://shop.example.com/orders\r\n" +
        "Cache-Control: max-age=0\r\n" +
        "X-Request-Id: 7b2f4e0c-1d3a-4c5b-9e8f-0a1b2c3d4e5f\r\n" +
        "\r\n");

    private readonly Http1RequestParser _parser = new(Http1ParserLimits.Default);
    private readonly HeaderCollection _headers = new();
    private readonly Counter _counter = new();
    private ReadOnlySequence<byte> _single;
    private ReadOnlySequence<byte> _split;

    [GlobalSetup]
    public void Setup()
    {
        _single = new ReadOnlySequence<byte>(s_request);

        // Two segments cut inside the Cookie line: the multi-segment slow path.
        int cut = Encoding.ASCII.GetString(s_request).IndexOf("theme", StringComparison.Ordinal);
        var first = new Segment(s_request.AsMemory(0, cut), 0);
        Segment last = first.Append(s_request.AsMemory(cut));
        _split = new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    [Benchmark(Baseline = true)]
    public int IntoHeaderCollection()
    {
        _headers.Clear();
        var handler = new CollectingHandler(_headers);
        var reader = new SequenceReader<byte>(_single);
        var state = default(Http1HeaderState);
        _parser.TryParseRequestLine(ref handler, ref reader, out _);
        _parser.TryParseHeaders(ref handler, ref reader, ref state, out _);
        return _headers.Count;
    }

    [Benchmark]
    public int CountOnly()
    {
        _counter.Headers = 0;
        var handler = new CountingHandler(_counter);
        var reader = new SequenceReader<byte>(_single);
        var state = default(Http1HeaderState);
        _parser.TryParseRequestLine(ref handler, ref reader, out _);
        _parser.TryParseHeaders(ref handler, ref reader, ref state, out _);
        return _counter.Headers;
    }

    [Benchmark]
    public int IntoHeaderCollectionSplitAcrossSegments()
    {
        _headers.Clear();
        var handler = new CollectingHandler(_headers);
        var reader = new SequenceReader<byte>(_split);
        var state = default(Http1HeaderState);
        _parser.TryParseRequestLine(ref handler, ref reader, out _);
        _parser.TryParseHeaders(ref handler, ref reader, ref state, out _);
        return _headers.Count;
    }

    [Benchmark]
    public RequestRejection IntoHeaderCollectionWithFraming()
    {
        int count = IntoHeaderCollection();
        RequestRejection rejection = Http1RequestFraming.ValidateHost(_headers, "/"u8, HttpVersion.Http11);
        return count > 0 && rejection == RequestRejection.None
            ? Http1RequestFraming.Determine(_headers, HttpVersion.Http11, out _, out _)
            : rejection;
    }

    private readonly struct CollectingHandler(HeaderCollection headers) : IHttp1RequestHandler
    {
        public void OnRequestLine(HttpMethod method, ReadOnlySpan<byte> methodToken, ReadOnlySpan<byte> target, HttpVersion version)
        {
        }

        public void OnHeader(KnownHeader known, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) => headers.Add(known, name, value);
    }

    private readonly struct CountingHandler(Counter counter) : IHttp1RequestHandler
    {
        public void OnRequestLine(HttpMethod method, ReadOnlySpan<byte> methodToken, ReadOnlySpan<byte> target, HttpVersion version) =>
            counter.TargetBytes = target.Length;

        public void OnHeader(KnownHeader known, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) => counter.Headers++;
    }

    private sealed class Counter
    {
        public int TargetBytes;
        public int Headers;
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}

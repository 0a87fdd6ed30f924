using Appliance.Protocol.Headers;
using Appliance.Protocol.Hpack;
using BenchmarkDotNet.Attributes;

namespace Appliance.Benchmarks;

/// <summary>
/// HPACK on a browser-like request (the fields h2load and browsers send) and a typical response. Decoding is measured
/// the first time (literals with incremental indexing and Huffman strings; the block starts with table size updates
/// to 0 and back, so every run starts from an empty table) and the second time (every field from the dynamic
/// table). Encoding is the steady state of a server sending the same response shape. All must allocate nothing.
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class HpackBenchmarks
{
    private static readonly (string Name, string Value)[] s_request =
    [
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "shop.example.com"),
        (":path", "/api/v1/orders/12345?expand=items&page=2"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("accept-language", "en-US,en;q=0.9,de;q=0.8"),
        ("cache-control", "max-age=0"),
        ("referer", "https://shop.example.com/orders"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-site", "same-origin"),
    ];

    private readonly HpackDecoder _decoder = new(HpackDecoder.DefaultMaxDynamicTableSize, 64 * 1024);
    private readonly HpackEncoder _encoder = new();
    private readonly HeaderCollection _headers = new();
    private readonly byte[] _output = new byte[1024];
    private byte[] _firstBlock = [];
    private byte[] _secondBlock = [];

    [GlobalSetup]
    public void Setup()
    {
        // The client side: a fresh encoder, as a browser's connection would have.
        var client = new HpackEncoder();
        byte[] buffer = new byte[4096];
        int written = 0;
        buffer[written++] = 0x20; // §6.3: size 0 empties the table...
        buffer[written++] = 0x3f; // ...and 4096 (0x3f e1 1f) restores it
        buffer[written++] = 0xe1;
        buffer[written++] = 0x1f;
        foreach ((string name, string value) in s_request)
        {
            client.Encode(System.Text.Encoding.ASCII.GetBytes(name), System.Text.Encoding.ASCII.GetBytes(value), buffer, ref written);
        }

        _firstBlock = buffer[..written];

        written = 0;
        foreach ((string name, string value) in s_request)
        {
            client.Encode(System.Text.Encoding.ASCII.GetBytes(name), System.Text.Encoding.ASCII.GetBytes(value), buffer, ref written);
        }

        _secondBlock = buffer[..written];

        // Put the decoder in the state the second block expects, and the encoder in its steady state.
        DecodeFirstTime();
        EncodeResponse();
    }

    [Benchmark(Baseline = true)]
    public int DecodeFirstTime()
    {
        var handler = new CountingHandler();
        _decoder.Decode(_firstBlock, endHeaders: true, ref handler);
        return handler.Count;
    }

    [Benchmark]
    public int DecodeFromDynamicTable()
    {
        var handler = new CountingHandler();
        _decoder.Decode(_secondBlock, endHeaders: true, ref handler);
        return handler.Count;
    }

    [Benchmark]
    public int DecodeFromDynamicTableIntoHeaderCollection()
    {
        _headers.Clear();
        var handler = new CollectingHandler(_headers);
        _decoder.Decode(_secondBlock, endHeaders: true, ref handler);
        return _headers.Count;
    }

    [Benchmark]
    public int EncodeResponse()
    {
        int written = 0;
        _encoder.BeginBlock(_output, ref written);
        _encoder.EncodeStatus(200, _output, ref written);
        _encoder.Encode("content-type"u8, "application/json; charset=utf-8"u8, _output, ref written);
        _encoder.Encode("content-length"u8, "1534"u8, _output, ref written);
        _encoder.Encode("date"u8, "Tue, 15 Nov 1994 08:12:31 GMT"u8, _output, ref written);
        _encoder.Encode("server"u8, "appliance"u8, _output, ref written);
        return written;
    }

    private struct CountingHandler : IHpackHeaderHandler
    {
        public int Count;

        public void OnIndexedHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, long entry) => OnHeader(name, value);

        public void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) => Count++;
    }

    private readonly struct CollectingHandler(HeaderCollection headers) : IHpackHeaderHandler
    {
        public void OnIndexedHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, long entry) => OnHeader(name, value);

        public void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) => headers.Add(KnownHeaders.Lookup(name), name, value);
    }
}

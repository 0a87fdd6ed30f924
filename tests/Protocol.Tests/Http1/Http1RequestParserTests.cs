using System.Buffers;
using System.Text;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using HttpMethod = Appliance.Protocol.Http1.HttpMethod;

namespace Appliance.Protocol.Tests.Http1;

public class Http1RequestParserTests
{
    public static TheoryData<FeedMode> Modes => new(RequestDriver.AllModes);

    [Theory]
    [MemberData(nameof(Modes))]
    public void Parses_simple_get(FeedMode mode)
    {
        ParsedRequest r = RequestDriver.Run("GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n", mode);

        Assert.Equal(RequestRejection.None, r.Rejection);
        Assert.True(r.Complete);
        Assert.Equal(HttpMethod.Get, r.Method);
        Assert.Equal("GET", r.MethodToken);
        Assert.Equal("/index.html?x=1", r.Target);
        Assert.Equal(HttpVersion.Http11, r.Version);
        Assert.Equal([(KnownHeader.Host, "Host", "example.com"), (KnownHeader.Accept, "Accept", "*/*")], r.Headers);
        Assert.Equal(BodyKind.None, r.BodyKind);
    }

    [Theory]
    [InlineData("GET", HttpMethod.Get)]
    [InlineData("HEAD", HttpMethod.Head)]
    [InlineData("POST", HttpMethod.Post)]
    [InlineData("PUT", HttpMethod.Put)]
    [InlineData("DELETE", HttpMethod.Delete)]
    [InlineData("OPTIONS", HttpMethod.Options)]
    [InlineData("PATCH", HttpMethod.Patch)]
    [InlineData("TRACE", HttpMethod.Trace)]
    [InlineData("PROPFIND", HttpMethod.Custom)]
    [InlineData("get", HttpMethod.Custom)]
    [InlineData("M-SEARCH", HttpMethod.Custom)]
    public void Parses_every_method_and_passes_unknown_tokens_as_custom(string token, HttpMethod expected)
    {
        ParsedRequest r = RequestDriver.RunAllModes($"{token} /p HTTP/1.1\r\nHost: h\r\n\r\n");

        Assert.True(r.Complete);
        Assert.Equal(expected, r.Method);
        Assert.Equal(token, r.MethodToken);
    }

    [Fact]
    public void Method_bytes_round_trip()
    {
        foreach (HttpMethod m in Enum.GetValues<HttpMethod>())
        {
            if (m == HttpMethod.Custom)
            {
                Assert.True(m.ToBytes().IsEmpty);
                continue;
            }

            Assert.Equal(m, HttpMethods.FromBytes(m.ToBytes()));
        }
    }

    [Fact]
    public void Parses_absolute_form_target()
    {
        ParsedRequest r = RequestDriver.RunAllModes("GET http://example.com:8080/a/b?c HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");

        Assert.True(r.Complete);
        Assert.Equal("http://example.com:8080/a/b?c", r.Target);
    }

    [Fact]
    public void Parses_connect_authority_form()
    {
        ParsedRequest r = RequestDriver.RunAllModes("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");

        Assert.True(r.Complete);
        Assert.Equal(HttpMethod.Connect, r.Method);
        Assert.Equal("example.com:443", r.Target);
    }

    [Fact]
    public void Parses_options_asterisk()
    {
        ParsedRequest r = RequestDriver.RunAllModes("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");

        Assert.True(r.Complete);
        Assert.Equal(HttpMethod.Options, r.Method);
        Assert.Equal("*", r.Target);
    }

    [Fact]
    public void Skips_leading_empty_lines()
    {
        ParsedRequest r = RequestDriver.RunAllModes("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");

        Assert.True(r.Complete);
        Assert.Equal("/", r.Target);
    }

    [Fact]
    public void Parses_http10_without_host()
    {
        ParsedRequest r = RequestDriver.RunAllModes("GET / HTTP/1.0\r\n\r\n");

        Assert.True(r.Complete);
        Assert.Equal(HttpVersion.Http10, r.Version);
        Assert.Empty(r.Headers);
    }

    [Fact]
    public void Trims_optional_whitespace_around_values()
    {
        ParsedRequest r = RequestDriver.RunAllModes("GET / HTTP/1.1\r\nHost:h\r\nX-A: \t a  b \t\r\nX-B:\tc\r\n\r\n");

        Assert.True(r.Complete);
        Assert.Equal([(KnownHeader.Host, "Host", "h"), (KnownHeader.None, "X-A", "a  b"), (KnownHeader.None, "X-B", "c")], r.Headers);
    }

    [Fact]
    public void Accepts_obs_text_in_values()
    {
        ParsedRequest r = RequestDriver.RunAllModes("GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\u00e9 \u00ff\u0080\r\n\r\n");

        Assert.True(r.Complete);
        Assert.Equal("caf\u00e9 \u00ff\u0080", r.Headers[1].Value);
    }

    [Fact]
    public void Accepts_empty_values()
    {
        ParsedRequest r = RequestDriver.RunAllModes("GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Blank:   \r\n\r\n");

        Assert.True(r.Complete);
        Assert.Equal("", r.Headers[1].Value);
        Assert.Equal("", r.Headers[2].Value);
    }

    [Fact]
    public void Accepts_headers_up_to_the_count_limit()
    {
        var sb = new StringBuilder("GET / HTTP/1.1\r\nHost: h\r\n");
        for (int i = 1; i < Http1ParserLimits.Default.MaxHeaderCount; i++)
        {
            sb.Append($"X-H{i}: v{i}\r\n");
        }

        ParsedRequest r = RequestDriver.RunAllModes(sb.Append("\r\n").ToString());

        Assert.True(r.Complete);
        Assert.Equal(100, r.Headers.Count);
    }

    [Fact]
    public void Accepts_a_request_line_at_the_length_limit()
    {
        string prefix = "GET /";
        string suffix = " HTTP/1.1";
        string target = new('a', Http1ParserLimits.Default.MaxRequestLineBytes - prefix.Length - suffix.Length);
        ParsedRequest r = RequestDriver.RunAllModes($"{prefix}{target}{suffix}\r\nHost: h\r\n\r\n");

        Assert.True(r.Complete);
        Assert.Equal("/" + target, r.Target);
    }

    [Fact]
    public void Accepts_a_header_section_at_the_byte_limit()
    {
        const string start = "GET / HTTP/1.1\r\nHost: h\r\n";
        int fieldBlock = Http1ParserLimits.Default.MaxHeaderBytes - ("Host: h\r\n".Length + 2);
        string big = "X: " + new string('v', fieldBlock - 5) + "\r\n";
        ParsedRequest r = RequestDriver.RunAllModes(start + big + "\r\n");

        Assert.True(r.Complete);
        Assert.Equal(RequestRejection.HeadersTooLarge, RequestDriver.Run(start + "Y" + big + "\r\n", FeedMode.Whole).Rejection);
    }

    [Fact]
    public void Decodes_a_content_length_body()
    {
        ParsedRequest r = RequestDriver.RunAllModes("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world");

        Assert.True(r.Complete);
        Assert.Equal(BodyKind.ContentLength, r.BodyKind);
        Assert.Equal(11, r.ContentLength);
        Assert.Equal("hello world", r.BodyText);
    }

    [Fact]
    public void Decodes_a_chunked_body_with_extensions_and_trailers()
    {
        ParsedRequest r = RequestDriver.RunAllModes(
            "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
            "5;name=value\r\nhello\r\n" +
            "1 ; a ; b = \"q\\\"s\"\r\n \r\n" +
            "00000005\r\nworld\r\n" +
            "0\r\nX-Checksum: abc\r\nServer-Timing: t;dur=1\r\n\r\n");

        Assert.True(r.Complete);
        Assert.Equal(BodyKind.Chunked, r.BodyKind);
        Assert.Equal(-1, r.ContentLength);
        Assert.Equal("hello world", r.BodyText);
        Assert.Equal([(KnownHeader.None, "X-Checksum", "abc"), (KnownHeader.None, "Server-Timing", "t;dur=1")], r.Trailers);
    }

    [Fact]
    public void Transfer_encoding_matches_case_insensitively_over_several_lines()
    {
        ParsedRequest r = RequestDriver.RunAllModes(
            "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\r\ntransfer-encoding:  CHUNKED \r\n\r\n0\r\n\r\n");

        Assert.True(r.Complete);
        Assert.Equal(BodyKind.Chunked, r.BodyKind);
    }

    [Fact]
    public void Recognises_known_header_names_in_any_case()
    {
        ParsedRequest r = RequestDriver.RunAllModes("GET / HTTP/1.1\r\nhOsT: h\r\nCONTENT-LENGTH: 0\r\nx-request-id: 1\r\n\r\n");

        Assert.Equal([KnownHeader.Host, KnownHeader.ContentLength, KnownHeader.XRequestId], r.Headers.Select(h => h.Known));
        Assert.Equal("hOsT", r.Headers[0].Name);
    }

    [Fact]
    public void Parses_pipelined_requests_one_after_another()
    {
        byte[] input = Encoding.ASCII.GetBytes("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
        var parser = new Http1RequestParser(Http1ParserLimits.Default);
        var reader = new SequenceReader<byte>(SegmentedInput.Create(input[..20], input[20..]));
        var targets = new List<string>();
        for (int i = 0; i < 2; i++)
        {
            var request = new ParsedRequest();
            var handler = new RecordingHandler(request, null, trailers: false);
            var state = default(Http1HeaderState);
            Assert.True(parser.TryParseRequestLine(ref handler, ref reader, out _));
            Assert.True(parser.TryParseHeaders(ref handler, ref reader, ref state, out _));
            targets.Add(request.Target);
        }

        Assert.Equal(["/a", "/b"], targets);
        Assert.True(reader.End);
    }

    [Fact]
    public void Needs_more_data_leaves_the_reader_at_the_start()
    {
        var parser = new Http1RequestParser(Http1ParserLimits.Default);
        var request = new ParsedRequest();
        var handler = new RecordingHandler(request, null, trailers: false);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>("\r\nGET / HTTP/1.1\r"u8.ToArray()));

        Assert.False(parser.TryParseRequestLine(ref handler, ref reader, out RequestRejection rejection));
        Assert.Equal(RequestRejection.None, rejection);
        Assert.Equal(0, reader.Consumed);
    }

    [Fact]
    public void Header_parsing_resumes_after_a_partial_line()
    {
        var parser = new Http1RequestParser(Http1ParserLimits.Default);
        var request = new ParsedRequest();
        var handler = new RecordingHandler(request, null, trailers: false);
        var state = default(Http1HeaderState);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>("A: 1\r\nB: 2\r\nC:"u8.ToArray()));

        Assert.False(parser.TryParseHeaders(ref handler, ref reader, ref state, out RequestRejection rejection));
        Assert.Equal(RequestRejection.None, rejection);
        Assert.Equal(12, reader.Consumed);
        Assert.Equal(2, state.Count);
        Assert.Equal(12, state.Bytes);

        reader = new SequenceReader<byte>(new ReadOnlySequence<byte>("C: 3\r\n\r\n"u8.ToArray()));
        Assert.True(parser.TryParseHeaders(ref handler, ref reader, ref state, out _));
        Assert.Equal(["A", "B", "C"], request.Headers.Select(h => h.Name));
        Assert.Equal(20, state.Bytes);

        state.Reset();
        Assert.Equal(0, state.Count + state.Bytes);
    }

    /// <summary>
    /// A field line whole in one span takes a one-pass path; split across segments or arriving byte by byte it takes
    /// the line-by-line one. Every byte value at every kind of place in a line (name, around the colon, the value's
    /// ends and middle, a long value's vectorised tail, before the CRLF) must come out the same both ways: the same
    /// fields, or the same rejection.
    /// </summary>
    [Fact]
    public void Every_byte_anywhere_in_a_field_line_parses_the_same_whole_or_split()
    {
        string longValue = new('v', 40);
        string[] shapes =
        [
            "@Name: value", "Na@me: value", "Name@: value", "Name:@value", "Name: @value", "Name: va@lue", "Name: value@",
            "Name: value @", "Name:@", "@: v", "Name: " + longValue + "@" + longValue, "Name: " + longValue + "@",
            // Either side of the 16-byte steps of the name and value scans.
            "Abcdefghijklmno@: v", "Abcdefghijklmnop@: v", "Abcdefghijklmnopq@: v", "Abcdefghijklmnopqrstuvwxyzabcdef@: v",
            "N: abcdefghijklmn@", "N: abcdefghijklmno@", "N: abcdefghijklmnop@", "N: abcdefghijklmnopqrstuvwxyzabcde@f",
        ];
        int accepted = 0;
        foreach (string shape in shapes)
        {
            for (int b = 0; b < 256; b++)
            {
                string line = shape.Replace("@", ((char)b).ToString());
                ParsedRequest whole = RequestDriver.RunAllModes("GET / HTTP/1.1\r\nHost: a\r\n" + line + "\r\nX: y\r\n\r\n");
                accepted += whole.Complete ? 1 : 0;
            }
        }

        Assert.True(accepted > 2000, $"only {accepted} accepted"); // most bytes are valid in most places
    }

    [Fact]
    public void Steady_state_parsing_does_not_allocate()
    {
        byte[] input = Encoding.ASCII.GetBytes(
            "GET /api/v1/items?page=2 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: test/1.0\r\nAccept: */*\r\n" +
            "Accept-Encoding: gzip, br\r\nConnection: keep-alive\r\nCookie: a=b; c=d\r\nX-Request-Id: 42\r\n\r\n");
        var parser = new Http1RequestParser(Http1ParserLimits.Default);
        var headers = new HeaderCollection();
        var handler = new CollectingHandler(headers);
        ReadOnlySequence<byte> split = SegmentedInput.Create(input[..50], input[50..]);
        Parse(new ReadOnlySequence<byte>(input));
        Parse(split);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            Parse(new ReadOnlySequence<byte>(input));
            Parse(split);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        void Parse(ReadOnlySequence<byte> sequence)
        {
            headers.Clear();
            var reader = new SequenceReader<byte>(sequence);
            var state = default(Http1HeaderState);
            if (!parser.TryParseRequestLine(ref handler, ref reader, out _) || !parser.TryParseHeaders(ref handler, ref reader, ref state, out _))
            {
                throw new InvalidOperationException();
            }

            if (Http1RequestFraming.Determine(headers, HttpVersion.Http11, out _, out _) != RequestRejection.None
                || Http1RequestFraming.ValidateHost(headers, "/"u8, HttpVersion.Http11) != RequestRejection.None)
            {
                throw new InvalidOperationException();
            }
        }
    }

    private readonly struct CollectingHandler(HeaderCollection headers) : IHttp1RequestHandler
    {
        public void OnRequestLine(HttpMethod method, ReadOnlySpan<byte> methodToken, ReadOnlySpan<byte> target, HttpVersion version)
        {
        }

        public void OnHeader(KnownHeader known, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) => headers.Add(known, name, value);
    }
}

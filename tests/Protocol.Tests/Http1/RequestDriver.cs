using System.Buffers;
using System.Text;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using HttpMethod = Appliance.Protocol.Http1.HttpMethod;

namespace Appliance.Protocol.Tests.Http1;

/// <summary>How the test input reaches the parser.</summary>
public enum FeedMode
{
    /// <summary>Everything at once, one segment.</summary>
    Whole,

    /// <summary>One byte more per read, each byte its own segment (61-byte segments for inputs above 4 KiB).</summary>
    ByteByByte,

    /// <summary>Everything at once, cut into 7-byte segments.</summary>
    Segments,
}

/// <summary>What a whole request parse produced, in a form that can be compared across feed modes.</summary>
internal sealed class ParsedRequest
{
    public HttpMethod Method { get; set; }
    public string MethodToken { get; set; } = "";
    public string Target { get; set; } = "";
    public HttpVersion Version { get; set; }
    public List<(KnownHeader Known, string Name, string Value)> Headers { get; } = [];
    public List<(KnownHeader Known, string Name, string Value)> Trailers { get; } = [];
    public BodyKind BodyKind { get; set; }
    public long ContentLength { get; set; }
    public List<byte> Body { get; } = [];
    public RequestRejection Rejection { get; set; }

    /// <summary>True when the request was parsed to its end (body included) without rejection.</summary>
    public bool Complete { get; set; }

    public string BodyText => Encoding.Latin1.GetString(Body.ToArray());

    public string Describe()
    {
        var sb = new StringBuilder();
        sb.Append($"{Rejection} complete={Complete} {Method} '{MethodToken}' '{Target}' {Version} body={BodyKind}/{ContentLength}\n");
        foreach (var h in Headers) sb.Append($"H {h.Known} '{h.Name}' '{h.Value}'\n");
        foreach (var t in Trailers) sb.Append($"T {t.Known} '{t.Name}' '{t.Value}'\n");
        sb.Append("B ").Append(Convert.ToHexString(Body.ToArray()));
        return sb.ToString();
    }
}

/// <summary>Records callbacks into a <see cref="ParsedRequest"/> (and a <see cref="HeaderCollection"/>).</summary>
internal readonly struct RecordingHandler(ParsedRequest request, HeaderCollection? headers, bool trailers) : IHttp1RequestHandler
{
    public void OnRequestLine(HttpMethod method, ReadOnlySpan<byte> methodToken, ReadOnlySpan<byte> target, HttpVersion version)
    {
        request.Method = method;
        request.MethodToken = Encoding.Latin1.GetString(methodToken);
        request.Target = Encoding.Latin1.GetString(target);
        request.Version = version;
    }

    public void OnHeader(KnownHeader known, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        (trailers ? request.Trailers : request.Headers).Add((known, Encoding.Latin1.GetString(name), Encoding.Latin1.GetString(value)));
        headers?.Add(known, name, value);
    }
}

/// <summary>
/// Drives the parser, the framing decision and the body decoders over an input the way a connection loop would:
/// after each attempt it consumes what the parser consumed and, when more data is needed, makes more available.
/// </summary>
internal static class RequestDriver
{
    public static readonly FeedMode[] AllModes = [FeedMode.Whole, FeedMode.ByteByByte, FeedMode.Segments];

    public static ParsedRequest Run(string input, FeedMode mode, Http1ParserLimits? limits = null) =>
        Run(Encoding.Latin1.GetBytes(input), mode, limits);

    public static ParsedRequest Run(byte[] input, FeedMode mode, Http1ParserLimits? limits = null)
    {
        (int segmentSize, int step) = mode switch
        {
            FeedMode.Whole => (Math.Max(input.Length, 1), Math.Max(input.Length, 1)),
            FeedMode.ByteByByte => (input.Length > 4096 ? 61 : 1, 1),
            _ => (7, Math.Max(input.Length, 1)),
        };

        var segmented = new SegmentedInput(input, segmentSize);
        var session = new Session(limits ?? Http1ParserLimits.Default);
        long consumed = 0;
        long available = 0;
        while (true)
        {
            available = Math.Min(input.Length, available + step);
            var reader = new SequenceReader<byte>(segmented.Slice(consumed, available));
            bool finished = session.Step(ref reader);
            consumed += reader.Consumed;
            if (finished || available == input.Length)
            {
                return session.Result;
            }
        }
    }

    /// <summary>Asserts that every feed mode gives the same result, and returns it.</summary>
    public static ParsedRequest RunAllModes(string input, Http1ParserLimits? limits = null) =>
        RunAllModes(Encoding.Latin1.GetBytes(input), limits);

    public static ParsedRequest RunAllModes(byte[] input, Http1ParserLimits? limits = null)
    {
        ParsedRequest whole = Run(input, FeedMode.Whole, limits);
        foreach (FeedMode mode in AllModes)
        {
            ParsedRequest other = Run(input, mode, limits);
            Assert.Equal(whole.Describe(), other.Describe());
        }

        return whole;
    }

    private sealed class Session(Http1ParserLimits limits)
    {
        private readonly Http1RequestParser _parser = new(limits);
        private readonly HeaderCollection _headers = new();
        private Http1HeaderState _state;
        private ChunkedDecoder _decoder = new(limits);
        private Phase _phase;
        private long _bodyRemaining;

        private enum Phase
        {
            RequestLine,
            Headers,
            Body,
            Done,
        }

        public ParsedRequest Result { get; } = new();

        /// <summary>Runs as far as the buffered input allows; true when the request is finished or rejected.</summary>
        public bool Step(ref SequenceReader<byte> reader)
        {
            var handler = new RecordingHandler(Result, _headers, trailers: false);
            while (true)
            {
                switch (_phase)
                {
                    case Phase.RequestLine:
                    {
                        long before = reader.Consumed;
                        if (!_parser.TryParseRequestLine(ref handler, ref reader, out RequestRejection rejection))
                        {
                            if (rejection == RequestRejection.None && reader.Consumed != before)
                            {
                                throw new InvalidOperationException("NeedMoreData must leave the reader at its start.");
                            }

                            return Reject(rejection);
                        }

                        _phase = Phase.Headers;
                        break;
                    }

                    case Phase.Headers:
                    {
                        if (!_parser.TryParseHeaders(ref handler, ref reader, ref _state, out RequestRejection rejection))
                        {
                            return Reject(rejection);
                        }

                        rejection = Http1RequestFraming.ValidateHost(_headers, Encoding.Latin1.GetBytes(Result.Target), Result.Version);
                        if (rejection == RequestRejection.None)
                        {
                            rejection = Http1RequestFraming.Determine(_headers, Result.Version, out BodyKind kind, out long length);
                            Result.BodyKind = kind;
                            Result.ContentLength = length;
                            _bodyRemaining = length;
                        }

                        if (rejection != RequestRejection.None)
                        {
                            return Reject(rejection);
                        }

                        _phase = Phase.Body;
                        break;
                    }

                    case Phase.Body:
                        if (Result.BodyKind == BodyKind.Chunked)
                        {
                            var trailers = new RecordingHandler(Result, null, trailers: true);
                            ChunkedStatus status = _decoder.Read(ref trailers, ref reader, out long n, out RequestRejection rejection);
                            switch (status)
                            {
                                case ChunkedStatus.Data:
                                    Assert.True(n > 0 && n <= reader.Remaining);
                                    Result.Body.AddRange(reader.UnreadSequence.Slice(0, n).ToArray());
                                    reader.Advance(n);
                                    _decoder.ConsumeData(n);
                                    continue;
                                case ChunkedStatus.Done:
                                    Assert.True(_decoder.IsDone);
                                    _phase = Phase.Done;
                                    continue;
                                case ChunkedStatus.Error:
                                    return Reject(rejection);
                                default:
                                    return false;
                            }
                        }

                        if (_bodyRemaining > 0)
                        {
                            long n = Math.Min(_bodyRemaining, reader.Remaining);
                            Result.Body.AddRange(reader.UnreadSequence.Slice(0, n).ToArray());
                            reader.Advance(n);
                            _bodyRemaining -= n;
                            if (_bodyRemaining > 0)
                            {
                                return false;
                            }
                        }

                        _phase = Phase.Done;
                        break;

                    default:
                        Result.Complete = true;
                        return true;
                }
            }
        }

        private bool Reject(RequestRejection rejection)
        {
            Result.Rejection = rejection;
            return rejection != RequestRejection.None;
        }
    }
}

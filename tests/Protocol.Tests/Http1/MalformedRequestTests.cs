using System.Text;
using Appliance.Protocol.Http1;

namespace Appliance.Protocol.Tests.Http1;

/// <summary>
/// Hostile and malformed requests, each with the rejection and status it must get, whatever way its bytes arrive.
/// </summary>
public class MalformedRequestTests
{
    private const string Get = "GET / HTTP/1.1\r\nHost: h\r\n";
    private const string Post = "POST / HTTP/1.1\r\nHost: h\r\n";
    private const string Chunked = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";

    private static readonly Dictionary<string, (string Input, RequestRejection Expected)> s_cases = new()
    {
        // request-line
        ["double space after method"] = ("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidRequestLine),
        ["double space before version"] = ("GET /  HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidRequestLine),
        ["trailing space after version"] = ("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", RequestRejection.InvalidRequestLine),
        ["leading space"] = (" GET / HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidRequestLine),
        ["HTTP/0.9 style line without version"] = ("GET /\r\n\r\n", RequestRejection.InvalidRequestLine),
        ["method only"] = ("GET\r\n\r\n", RequestRejection.InvalidRequestLine),
        ["tab as separator"] = ("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidMethod),
        ["HTTP/1.2 is not supported"] = ("GET / HTTP/1.2\r\nHost: h\r\n\r\n", RequestRejection.UnsupportedVersion),
        ["HTTP/2.0 is not supported"] = ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", RequestRejection.UnsupportedVersion),
        ["HTTP/0.9 is not supported"] = ("GET / HTTP/0.9\r\nHost: h\r\n\r\n", RequestRejection.UnsupportedVersion),
        ["HTTX protocol name"] = ("GET / HTTX/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidRequestLine),
        ["lowercase protocol name"] = ("GET / http/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidRequestLine),
        ["two-digit minor version"] = ("GET / HTTP/1.10\r\nHost: h\r\n\r\n", RequestRejection.InvalidRequestLine),
        ["control char in method"] = ("G\u0001T / HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidMethod),
        ["parenthesis in method"] = ("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidMethod),
        ["TLS handshake on a plain port"] = ("\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u01fc\u0003\u0003", RequestRejection.InvalidMethod),
        ["space in target"] = ("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidTarget),
        ["DEL in target"] = ("GET /a\u007f HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidTarget),
        ["NUL in target"] = ("GET /a\u0000 HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidTarget),
        ["non-ASCII in target"] = ("GET /caf\u00e9 HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidTarget),
        ["relative target"] = ("GET index.html HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidTarget),
        ["asterisk with GET"] = ("GET * HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidTarget),
        ["CONNECT with origin-form"] = ("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidTarget),
        ["authority-form with GET"] = ("GET h:443 HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidTarget),
        ["userinfo in absolute-form"] = ("GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.InvalidTarget),
        ["request line over 8 KiB"] = ($"GET /{new string('a', 8200)} HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.RequestLineTooLong),
        ["request line over 8 KiB without CRLF"] = ($"GET /{new string('a', 9000)}", RequestRejection.RequestLineTooLong),
        ["flood of empty lines"] = (string.Concat(Enumerable.Repeat("\r\n", 5000)), RequestRejection.RequestLineTooLong),

        // line ends
        ["LF-only line ends"] = ("GET / HTTP/1.1\nHost: h\n\n", RequestRejection.BareLf),
        ["bare LF before the request line"] = ("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.BareLf),
        ["bare CR before the request line"] = ("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.BareCr),
        ["bare CR in target"] = ("GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.BareCr),
        ["bare CR in method"] = ("GE\rT / HTTP/1.1\r\nHost: h\r\n\r\n", RequestRejection.BareCr),
        ["bare CR ending the request line"] = ("GET / HTTP/1.1\rHost: h\r\n\r\n", RequestRejection.BareCr),
        ["bare LF ending a header line"] = ("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", RequestRejection.BareLf),
        ["bare LF ending the header section"] = (Get + "\n", RequestRejection.BareLf),
        ["bare CR in header value"] = (Get + "X: a\rb\r\n\r\n", RequestRejection.BareCr),
        ["bare CR at end of header value"] = (Get + "X: a\r\r\n\r\n", RequestRejection.BareCr),
        ["bare CR in header name"] = (Get + "X\rY: a\r\n\r\n", RequestRejection.BareCr),
        ["bare LF in header value"] = (Get + "X: a\nb\r\n\r\n", RequestRejection.BareLf),

        // field lines
        ["obs-fold"] = (Get + "X: a\r\n b\r\n\r\n", RequestRejection.ObsFold),
        ["obs-fold with tab"] = (Get + "X: a\r\n\tb\r\n\r\n", RequestRejection.ObsFold),
        ["whitespace before the first field"] = ("GET / HTTP/1.1\r\n Host: h\r\n\r\n", RequestRejection.ObsFold),
        ["NUL in value"] = (Get + "X: a\u0000b\r\n\r\n", RequestRejection.InvalidHeaderValue),
        ["DEL in value"] = (Get + "X: a\u007fb\r\n\r\n", RequestRejection.InvalidHeaderValue),
        ["vertical tab in value"] = (Get + "Transfer-Encoding: \u000bchunked\r\n\r\n", RequestRejection.InvalidHeaderValue),
        ["space before colon"] = (Get + "Transfer-Encoding : chunked\r\n\r\n", RequestRejection.WhitespaceBeforeColon),
        ["tab before colon"] = (Get + "Content-Length\t: 0\r\n\r\n", RequestRejection.WhitespaceBeforeColon),
        ["space inside name"] = (Get + "X Y: z\r\n\r\n", RequestRejection.InvalidHeaderName),
        ["parenthesis in name"] = (Get + "X(y: z\r\n\r\n", RequestRejection.InvalidHeaderName),
        ["empty name"] = (Get + ": x\r\n\r\n", RequestRejection.InvalidHeaderName),
        ["no colon"] = (Get + "NoColon\r\n\r\n", RequestRejection.InvalidHeaderName),
        ["non-ASCII in name"] = (Get + "X-\u00e9: z\r\n\r\n", RequestRejection.InvalidHeaderName),
        ["101 header fields"] = (Get + string.Concat(Enumerable.Range(0, 100).Select(i => $"X-{i}: v\r\n")) + "\r\n", RequestRejection.TooManyHeaders),
        ["one 33 KiB header field"] = (Get + "X: " + new string('v', 33 * 1024) + "\r\n\r\n", RequestRejection.HeadersTooLarge),
        ["33 KiB of header fields"] = (Get + string.Concat(Enumerable.Range(0, 66).Select(i => $"X-{i:D2}: {new string('v', 500)}\r\n")) + "\r\n", RequestRejection.HeadersTooLarge),
        ["33 KiB header field never ended"] = (Get + "X: " + new string('v', 33 * 1024), RequestRejection.HeadersTooLarge),

        // Host
        ["missing Host"] = ("GET / HTTP/1.1\r\nX: y\r\n\r\n", RequestRejection.MissingHost),
        ["two Host fields"] = (Get + "Host: h\r\n\r\n", RequestRejection.MultipleHost),
        ["two Host fields in HTTP/1.0"] = ("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", RequestRejection.MultipleHost),
        ["space in Host"] = ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", RequestRejection.InvalidHost),
        ["userinfo in Host"] = ("GET / HTTP/1.1\r\nHost: user@h\r\n\r\n", RequestRejection.InvalidHost),
        ["port out of range"] = ("GET / HTTP/1.1\r\nHost: h:65536\r\n\r\n", RequestRejection.InvalidHost),
        ["empty port"] = ("GET / HTTP/1.1\r\nHost: h:\r\n\r\n", RequestRejection.InvalidHost),
        ["unclosed IPv6 literal"] = ("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", RequestRejection.InvalidHost),
        ["slash in Host"] = ("GET / HTTP/1.1\r\nHost: h/evil\r\n\r\n", RequestRejection.InvalidHost),
        ["empty Host with absolute-form"] = ("GET http://h/ HTTP/1.1\r\nHost:\r\n\r\n", RequestRejection.InvalidHost),

        // framing and smuggling
        ["Content-Length with Transfer-Encoding"] = (Post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", RequestRejection.ConflictingContentLengthAndTransferEncoding),
        ["Transfer-Encoding chunked then gzip"] = (Post + "Transfer-Encoding: chunked, gzip\r\n\r\n", RequestRejection.TransferEncodingNotChunked),
        ["Transfer-Encoding gzip"] = (Post + "Transfer-Encoding: gzip\r\n\r\n", RequestRejection.TransferEncodingNotChunked),
        ["Transfer-Encoding empty"] = (Post + "Transfer-Encoding: \r\n\r\n", RequestRejection.TransferEncodingNotChunked),
        ["Transfer-Encoding chunked with parameter"] = (Post + "Transfer-Encoding: chunked;q=1\r\n\r\n", RequestRejection.TransferEncodingNotChunked),
        ["Transfer-Encoding with invalid coding"] = (Post + "Transfer-Encoding: chu\"nked\r\n\r\n", RequestRejection.InvalidHeaderValue),
        ["Transfer-Encoding gzip then chunked"] = (Post + "Transfer-Encoding: gzip, chunked\r\n\r\n", RequestRejection.UnsupportedTransferEncoding),
        ["Transfer-Encoding chunked twice"] = (Post + "Transfer-Encoding: chunked, chunked\r\n\r\n", RequestRejection.UnsupportedTransferEncoding),
        ["Transfer-Encoding chunked on two lines"] = (Post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", RequestRejection.UnsupportedTransferEncoding),
        ["Transfer-Encoding in HTTP/1.0"] = ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", RequestRejection.TransferEncodingInHttp10),
        ["Content-Length list of equal values"] = (Post + "Content-Length: 1, 1\r\n\r\nx", RequestRejection.MultipleContentLength),
        ["two Content-Length lines"] = (Post + "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", RequestRejection.MultipleContentLength),
        ["Content-Length with plus sign"] = (Post + "Content-Length: +1\r\n\r\nx", RequestRejection.InvalidContentLength),
        ["negative Content-Length"] = (Post + "Content-Length: -1\r\n\r\n", RequestRejection.InvalidContentLength),
        ["Content-Length with inner space"] = (Post + "Content-Length: 1 2\r\n\r\n", RequestRejection.InvalidContentLength),
        ["Content-Length overflow"] = (Post + "Content-Length: 99999999999999999999\r\n\r\n", RequestRejection.InvalidContentLength),
        ["empty Content-Length"] = (Post + "Content-Length:\r\n\r\n", RequestRejection.InvalidContentLength),
        ["hex Content-Length"] = (Post + "Content-Length: 0x10\r\n\r\n", RequestRejection.InvalidContentLength),

        // chunked coding
        ["chunk size zz"] = (Chunked + "zz\r\n", RequestRejection.InvalidChunkSize),
        ["chunk size -1"] = (Chunked + "-1\r\n", RequestRejection.InvalidChunkSize),
        ["chunk size 0x5"] = (Chunked + "0x5\r\nhello\r\n0\r\n\r\n", RequestRejection.InvalidChunkSize),
        ["chunk size with leading space"] = (Chunked + " 5\r\nhello\r\n0\r\n\r\n", RequestRejection.InvalidChunkSize),
        ["empty chunk size"] = (Chunked + "\r\nhello\r\n0\r\n\r\n", RequestRejection.InvalidChunkSize),
        ["chunk size with plus sign"] = (Chunked + "+5\r\nhello\r\n0\r\n\r\n", RequestRejection.InvalidChunkSize),
        ["chunk size of 17 hex digits"] = (Chunked + "10000000000000000\r\n", RequestRejection.ChunkSizeOverflow),
        ["chunk size of 64 bits"] = (Chunked + "8000000000000000\r\n", RequestRejection.ChunkSizeOverflow),
        ["chunk size line of 5000 hex digits"] = (Chunked + new string('1', 5000), RequestRejection.ChunkSizeOverflow),
        ["chunk extension with bare CR"] = (Chunked + "5;a\rb\r\nhello\r\n0\r\n\r\n", RequestRejection.BareCr),
        ["chunk extension with bare LF"] = (Chunked + "5;a\nhello\r\n0\r\n\r\n", RequestRejection.BareLf),
        ["chunk extension over 4 KiB"] = (Chunked + "5;a=" + new string('b', 5000) + "\r\nhello\r\n0\r\n\r\n", RequestRejection.ChunkExtensionTooLong),
        ["chunk extension over 4 KiB never ended"] = (Chunked + "5;a=" + new string('b', 5000), RequestRejection.ChunkExtensionTooLong),
        ["chunk extension without name"] = (Chunked + "5;=x\r\nhello\r\n0\r\n\r\n", RequestRejection.InvalidChunkExtension),
        ["chunk extension with unterminated quote"] = (Chunked + "5;a=\"b\r\nhello\r\n0\r\n\r\n", RequestRejection.InvalidChunkExtension),
        ["chunk extension without semicolon"] = (Chunked + "5 a\r\nhello\r\n0\r\n\r\n", RequestRejection.InvalidChunkExtension),
        ["chunk size followed by junk"] = (Chunked + "5z\r\nhello\r\n0\r\n\r\n", RequestRejection.InvalidChunkSize),
        ["chunk data followed by XX"] = (Chunked + "5\r\nhelloXX0\r\n\r\n", RequestRejection.InvalidChunkTerminator),
        ["chunk data followed by CR X"] = (Chunked + "5\r\nhello\rX0\r\n\r\n", RequestRejection.InvalidChunkTerminator),
        ["chunk data longer than its size"] = (Chunked + "3\r\nhello\r\n0\r\n\r\n", RequestRejection.InvalidChunkTerminator),
        ["chunk data followed by bare LF"] = (Chunked + "5\r\nhello\n0\r\n\r\n", RequestRejection.BareLf),
        ["chunk size line ended by bare LF"] = (Chunked + "5\nhello\r\n0\r\n\r\n", RequestRejection.BareLf),
        ["last chunk followed by bare LF"] = (Chunked + "0\r\n\n", RequestRejection.BareLf),
        ["trailers too large"] = (Chunked + "0\r\nX: " + new string('t', 9000) + "\r\n\r\n", RequestRejection.TrailersTooLarge),
        ["too many trailers"] = (Chunked + "0\r\n" + string.Concat(Enumerable.Range(0, 101).Select(i => $"T{i}: v\r\n")) + "\r\n", RequestRejection.TrailersTooLarge),
        ["obs-fold in trailers"] = (Chunked + "0\r\nX: a\r\n b\r\n\r\n", RequestRejection.ObsFold),
        ["invalid trailer name"] = (Chunked + "0\r\nX Y: a\r\n\r\n", RequestRejection.InvalidHeaderName),
        ["NUL in trailer value"] = (Chunked + "0\r\nX: a\u0000\r\n\r\n", RequestRejection.InvalidHeaderValue),
    };

    public static TheoryData<string, RequestRejection, int> Cases
    {
        get
        {
            var data = new TheoryData<string, RequestRejection, int>();
            foreach (var (name, (_, expected)) in s_cases)
            {
                data.Add(name, expected, expected.StatusCode());
            }

            return data;
        }
    }

    [Fact]
    public void Table_covers_at_least_45_cases_and_every_parser_rejection()
    {
        Assert.True(s_cases.Count >= 45);
        RequestRejection[] serverOnly =
        [
            RequestRejection.None, RequestRejection.BodyTooLarge, RequestRejection.UnexpectedEndOfBody,
            RequestRejection.RequestTimeout, RequestRejection.MethodNotImplemented, RequestRejection.ExpectationFailed,
        ];
        var covered = s_cases.Values.Select(c => c.Expected).ToHashSet();
        RequestRejection[] uncovered = Enum.GetValues<RequestRejection>().Except(serverOnly).Except(covered).ToArray();
        Assert.True(uncovered.Length == 0, "not covered: " + string.Join(", ", uncovered));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Rejects_malformed_request(string name, RequestRejection expected, int status)
    {
        byte[] input = Encoding.Latin1.GetBytes(s_cases[name].Input);
        foreach (FeedMode mode in RequestDriver.AllModes)
        {
            ParsedRequest result = RequestDriver.Run(input, mode);
            Assert.True(expected == result.Rejection, $"{mode}: expected {expected}, got {result.Rejection}");
            Assert.False(result.Complete);
        }

        Assert.Equal(status, expected.StatusCode());
        Assert.False(string.IsNullOrEmpty(expected.Reason()));
    }

    [Fact]
    public void Status_codes_follow_the_rfc()
    {
        Assert.Equal(414, RequestRejection.RequestLineTooLong.StatusCode());
        Assert.Equal(505, RequestRejection.UnsupportedVersion.StatusCode());
        Assert.Equal(431, RequestRejection.HeadersTooLarge.StatusCode());
        Assert.Equal(431, RequestRejection.TooManyHeaders.StatusCode());
        Assert.Equal(431, RequestRejection.TrailersTooLarge.StatusCode());
        Assert.Equal(501, RequestRejection.UnsupportedTransferEncoding.StatusCode());
        Assert.Equal(413, RequestRejection.BodyTooLarge.StatusCode());
        Assert.Equal(408, RequestRejection.RequestTimeout.StatusCode());
        Assert.Equal(400, RequestRejection.ConflictingContentLengthAndTransferEncoding.StatusCode());
        Assert.Equal(400, RequestRejection.BareLf.StatusCode());
    }
}

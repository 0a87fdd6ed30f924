using System.Text;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;

namespace Appliance.Protocol.Tests.Http1;

public class Http1RequestFramingTests
{
    [Fact]
    public void No_framing_headers_means_no_body()
    {
        using var headers = Headers("Host", "h");

        Assert.Equal(RequestRejection.None, Http1RequestFraming.Determine(headers, HttpVersion.Http11, out BodyKind kind, out long length));
        Assert.Equal(BodyKind.None, kind);
        Assert.Equal(0, length);
    }

    [Theory]
    [InlineData("0", 0L)]
    [InlineData("42", 42L)]
    [InlineData("007", 7L)]
    [InlineData("9223372036854775807", long.MaxValue)]
    public void Parses_content_length(string value, long expected)
    {
        using var headers = Headers("Content-Length", value);

        Assert.Equal(RequestRejection.None, Http1RequestFraming.Determine(headers, HttpVersion.Http11, out BodyKind kind, out long length));
        Assert.Equal(BodyKind.ContentLength, kind);
        Assert.Equal(expected, length);
    }

    [Theory]
    [InlineData("9223372036854775808")]
    [InlineData("1.0")]
    [InlineData("1e3")]
    [InlineData("١")]
    public void Rejects_content_length_that_is_not_a_63_bit_decimal(string value)
    {
        using var headers = Headers("Content-Length", value);

        Assert.Equal(RequestRejection.InvalidContentLength, Http1RequestFraming.Determine(headers, HttpVersion.Http11, out _, out _));
    }

    [Fact]
    public void Rejects_content_length_with_transfer_encoding()
    {
        using var headers = Headers("Transfer-Encoding", "chunked", "Content-Length", "3");

        Assert.Equal(RequestRejection.ConflictingContentLengthAndTransferEncoding, Http1RequestFraming.Determine(headers, HttpVersion.Http11, out _, out _));
    }

    [Fact]
    public void Rejects_transfer_encoding_in_http10_even_with_content_length()
    {
        using var headers = Headers("Transfer-Encoding", "chunked", "Content-Length", "3");

        Assert.Equal(RequestRejection.TransferEncodingInHttp10, Http1RequestFraming.Determine(headers, HttpVersion.Http10, out _, out _));
    }

    [Theory]
    [InlineData("chunked", RequestRejection.None)]
    [InlineData("Chunked", RequestRejection.None)]
    [InlineData(" , chunked ,", RequestRejection.None)]
    [InlineData("gzip", RequestRejection.TransferEncodingNotChunked)]
    [InlineData("chunked, identity", RequestRejection.TransferEncodingNotChunked)]
    [InlineData("deflate,chunked", RequestRejection.UnsupportedTransferEncoding)]
    [InlineData("chunked,chunked", RequestRejection.UnsupportedTransferEncoding)]
    [InlineData("chunked x", RequestRejection.InvalidHeaderValue)]
    public void Judges_transfer_coding_lists(string value, RequestRejection expected)
    {
        using var headers = Headers("Transfer-Encoding", value);

        Assert.Equal(expected, Http1RequestFraming.Determine(headers, HttpVersion.Http11, out BodyKind kind, out long length));
        if (expected == RequestRejection.None)
        {
            Assert.Equal(BodyKind.Chunked, kind);
            Assert.Equal(-1, length);
        }
    }

    [Fact]
    public void Combines_transfer_encoding_field_lines()
    {
        using var headers = Headers("Transfer-Encoding", "gzip", "X", "y", "Transfer-Encoding", "chunked");

        Assert.Equal(RequestRejection.UnsupportedTransferEncoding, Http1RequestFraming.Determine(headers, HttpVersion.Http11, out _, out _));
    }

    [Theory]
    [InlineData("example.com")]
    [InlineData("EXAMPLE.com:8443")]
    [InlineData("127.0.0.1:80")]
    [InlineData("[::1]")]
    [InlineData("[2001:db8::1]:443")]
    [InlineData("[::ffff:192.0.2.1]")]
    [InlineData("xn--bcher-kva.example")]
    [InlineData("a%20b")]
    [InlineData("h:65535")]
    public void Accepts_valid_host_values(string host)
    {
        using var headers = Headers("Host", host);

        Assert.Equal(RequestRejection.None, Http1RequestFraming.ValidateHost(headers, "/"u8, HttpVersion.Http11));
    }

    [Theory]
    [InlineData("a b")]
    [InlineData("user@h")]
    [InlineData("h:")]
    [InlineData(":80")]
    [InlineData("h:80:81")]
    [InlineData("h:123456")]
    [InlineData("h:-1")]
    [InlineData("[::1")]
    [InlineData("[]")]
    [InlineData("[::1]x")]
    [InlineData("[v1.x]")]
    [InlineData("a%2")]
    [InlineData("a%zz")]
    [InlineData("h/p")]
    [InlineData("h?q")]
    [InlineData("h\"")]
    public void Rejects_invalid_host_values(string host)
    {
        using var headers = Headers("Host", host);

        Assert.Equal(RequestRejection.InvalidHost, Http1RequestFraming.ValidateHost(headers, "/"u8, HttpVersion.Http11));
    }

    [Theory]
    [InlineData("/", RequestRejection.None)]
    [InlineData("*", RequestRejection.None)]
    [InlineData("http://h/", RequestRejection.InvalidHost)]
    [InlineData("h:443", RequestRejection.InvalidHost)]
    public void Allows_empty_host_only_without_target_authority(string target, RequestRejection expected)
    {
        using var headers = Headers("Host", "");

        Assert.Equal(expected, Http1RequestFraming.ValidateHost(headers, Encoding.ASCII.GetBytes(target), HttpVersion.Http11));
    }

    [Fact]
    public void Requires_exactly_one_host_in_http11()
    {
        using var none = Headers("X", "y");
        using var two = Headers("Host", "a", "host", "a");

        Assert.Equal(RequestRejection.MissingHost, Http1RequestFraming.ValidateHost(none, "/"u8, HttpVersion.Http11));
        Assert.Equal(RequestRejection.None, Http1RequestFraming.ValidateHost(none, "/"u8, HttpVersion.Http10));
        Assert.Equal(RequestRejection.MultipleHost, Http1RequestFraming.ValidateHost(two, "/"u8, HttpVersion.Http11));
    }

    [Fact]
    public void Absolute_form_does_not_need_a_matching_host()
    {
        using var headers = Headers("Host", "other.example");

        Assert.Equal(RequestRejection.None, Http1RequestFraming.ValidateHost(headers, "http://h.example/p"u8, HttpVersion.Http11));
    }

    private static HeaderCollection Headers(params string[] pairs)
    {
        var headers = new HeaderCollection();
        for (int i = 0; i < pairs.Length; i += 2)
        {
            headers.Add(Encoding.UTF8.GetBytes(pairs[i]), Encoding.UTF8.GetBytes(pairs[i + 1]));
        }

        return headers;
    }
}

using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using Appliance.Server;
using Appliance.Telemetry;
using HttpMethod = Appliance.Protocol.Http1.HttpMethod;
using HttpVersion = Appliance.Protocol.Http1.HttpVersion;

namespace Appliance.Tests.Telemetry;

/// <summary>
/// The line formats on bytes the wire parsers would refuse (control bytes, DEL, invalid UTF-8 in a target: an
/// HTTP/2 :path or a future parser must not be able to break a line), and the fields' shapes.
/// </summary>
public sealed class AccessLogFormatterTests
{
    private static RequestContext Request(EndPoint? remote, ReadOnlySpan<byte> target, HttpVersion version = HttpVersion.Http11)
    {
        var c = new RequestContext(new ConnectionInfo { Id = 7, ListenerName = "edge\"1", RemoteEndPoint = remote, LocalEndPoint = null });
        c.SetMethod(HttpMethod.Get, "GET"u8);
        c.SetTarget(target);
        c.Version = version;
        c.StatusCode = 204;
        return c;
    }

    private static string Format(AccessLogFormat format, RequestContext c, int stream = 0)
    {
        byte[] buffer = new byte[AccessLogFormatter.MaxLength(c)];
        int n = AccessLogFormatter.Format(format, c, stream, 0, System.Diagnostics.Stopwatch.GetTimestamp(), new DateTime(2025, 3, 9, 7, 5, 3, 42, DateTimeKind.Utc), buffer);
        Assert.Equal((byte)'\n', buffer[n - 1]);
        Assert.Equal(-1, Array.IndexOf(buffer, (byte)'\n', 0, n - 1)); // one line
        return Encoding.UTF8.GetString(buffer, 0, n - 1);
    }

    // Every control byte, DEL, quote, backslash, valid 2- and 4-byte UTF-8, an overlong encoding, a lone
    // continuation byte, a truncated sequence at the end.
    private static readonly byte[] s_hostile =
        [.. "/x"u8, 0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F, 0x7F, (byte)'"', (byte)'\\', 0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80, 0xC0, 0xAF, 0x80, (byte)'?', 0xE2, 0x82];

    [Fact]
    public void Json_escapes_controls_and_keeps_the_bytes_of_invalid_utf8_as_u00XX()
    {
        RequestContext c = Request(new IPEndPoint(IPAddress.Loopback, 1234), s_hostile);
        c.RequestHeaders.Add(KnownHeader.UserAgent, "User-Agent"u8, [0xFF, (byte)'a', 0xFE]);
        string line = Format(AccessLogFormat.Json, c);

        Assert.Contains(@"""target"":""/x\u0000\u0001\u0009\u000a\u000d\u001f\u007f\""\\é😀\u00c0\u00af\u0080?\u00e2\u0082""", line);
        using JsonDocument doc = JsonDocument.Parse(line);
        JsonElement e = doc.RootElement;
        Assert.Equal("/x\0\u0001\t\n\r\u001f\u007f\"\\é😀\u00c0\u00af\u0080?\u00e2\u0082", e.GetProperty("target").GetString());
        Assert.Equal("\u00ffa\u00fe", e.GetProperty("user_agent").GetString());
        Assert.Equal("edge\"1", e.GetProperty("listener").GetString());
        Assert.Equal("2025-03-09T07:05:03.042Z", e.GetProperty("time").GetString());
        Assert.Equal("127.0.0.1:1234", e.GetProperty("client").GetString());
        Assert.Equal(JsonValueKind.Null, e.GetProperty("referer").ValueKind);
        Assert.Equal(JsonValueKind.Null, e.GetProperty("request_id").ValueKind);
    }

    [Fact]
    public void Combined_escapes_as_nginx_does()
    {
        RequestContext c = Request(new IPEndPoint(IPAddress.Loopback, 1234), s_hostile);
        c.RequestHeaders.Add(KnownHeader.Referer, "Referer"u8, "a\"b"u8);
        string line = Format(AccessLogFormat.Combined, c);
        Assert.Equal(
            @"127.0.0.1 - - [09/Mar/2025:07:05:03 +0000] ""GET /x\x00\x01\x09\x0A\x0D\x1F\x7F\x22\x5C\xC3\xA9\xF0\x9F\x98\x80\xC0\xAF\x80?\xE2\x82 HTTP/1.1"" 204 0 ""a\x22b"" ""-""",
            line);
    }

    [Theory]
    [InlineData("::ffff:10.1.2.3", "10.1.2.3:80", "10.1.2.3")]
    [InlineData("::1", "[::1]:80", "::1")]
    [InlineData("2001:db8::7", "[2001:db8::7]:80", "2001:db8::7")]
    public void Client_addresses_are_written_as_nginx_and_envoy_write_them(string address, string json, string combined)
    {
        RequestContext c = Request(new IPEndPoint(IPAddress.Parse(address), 80), "/"u8);
        using JsonDocument doc = JsonDocument.Parse(Format(AccessLogFormat.Json, c));
        Assert.Equal(json, doc.RootElement.GetProperty("client").GetString());
        Assert.StartsWith(combined + " - - [", Format(AccessLogFormat.Combined, c));
    }

    [Fact]
    public void Http2_shows_its_stream_and_combined_says_HTTP_2_0()
    {
        RequestContext c = Request(new IPEndPoint(IPAddress.Loopback, 1), "/s"u8, HttpVersion.Http2);
        using JsonDocument doc = JsonDocument.Parse(Format(AccessLogFormat.Json, c, stream: 5));
        Assert.Equal(5, doc.RootElement.GetProperty("stream").GetInt32());
        Assert.Equal("HTTP/2", doc.RootElement.GetProperty("protocol").GetString());
        Assert.Contains("\"GET /s HTTP/2.0\" 204 ", Format(AccessLogFormat.Combined, c));
    }

    [Fact]
    public void A_request_rejected_before_its_request_line_has_no_method_or_protocol()
    {
        var c = new RequestContext(new ConnectionInfo { Id = 1, ListenerName = "l", RemoteEndPoint = new IPEndPoint(IPAddress.Loopback, 1), LocalEndPoint = null })
        {
            StatusCode = 400,
        };
        using JsonDocument doc = JsonDocument.Parse(Format(AccessLogFormat.Json, c));
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("method").ValueKind);
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("protocol").ValueKind);
        Assert.Contains(" \"-\" 400 0 ", Format(AccessLogFormat.Combined, c));
    }

    [Fact]
    public void Oversized_fields_are_cut_and_the_line_stays_within_its_bound()
    {
        byte[] target = [.. "/"u8, .. Enumerable.Repeat((byte)0x01, 100_000)];
        RequestContext c = Request(new IPEndPoint(IPAddress.Loopback, 1), target);
        c.RequestHeaders.Add(KnownHeader.UserAgent, "User-Agent"u8, Enumerable.Repeat((byte)0xFF, 100_000).ToArray());
        using JsonDocument doc = JsonDocument.Parse(Format(AccessLogFormat.Json, c));
        Assert.Equal(AccessLogFormatter.MaxFieldBytes, doc.RootElement.GetProperty("target").GetString()!.Length);
        Assert.Equal(AccessLogFormatter.MaxFieldBytes, doc.RootElement.GetProperty("user_agent").GetString()!.Length);
    }
}

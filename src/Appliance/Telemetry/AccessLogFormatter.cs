using System.Buffers;
using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Text;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using Appliance.Server;
using HttpVersion = Appliance.Protocol.Http1.HttpVersion;

namespace Appliance.Telemetry;

/// <summary>
/// Turns a completed request into one access log line, as UTF-8 bytes into a caller's buffer: no strings, no
/// allocation. JSON strings keep valid UTF-8 as it is and write each byte of an invalid sequence as <c>\u00XX</c> (so
/// every line parses; the byte value survives as U+00XX), control characters as <c>\u00XX</c>. The combined format
/// escapes like nginx: '"', '\' and bytes outside 0x20–0x7E as <c>\xHH</c>.
/// </summary>
public static class AccessLogFormatter
{
    /// <summary>Longest request header value or target logged; longer ones are cut (a line stays a few KiB at most).</summary>
    public const int MaxFieldBytes = 4096;

    private const int MaxStringChars = 1024;

    private static readonly ConcurrentDictionary<TlsCipherSuite, byte[]> s_cipherNames = new();

    /// <summary>Bytes a JSON string cannot carry as they are, or that may start invalid UTF-8: controls, '"', '\', DEL and up.</summary>
    private static readonly SearchValues<byte> s_jsonSpecial = SearchValues.Create(Special());

    /// <summary>What nginx's log escaping turns into \xHH: the same set.</summary>
    private static readonly SearchValues<byte> s_nginxEscaped = s_jsonSpecial;

    private static ReadOnlySpan<byte> Months => "JanFebMarAprMayJunJulAugSepOctNovDec"u8;

    /// <summary>An upper bound of the line's length for <paramref name="c"/>, to size the buffer before formatting.</summary>
    public static int MaxLength(RequestContext c)
    {
        HeaderCollection h = c.RequestHeaders;
        h.TryGetValue(KnownHeader.UserAgent, out ReadOnlySpan<byte> ua);
        h.TryGetValue(KnownHeader.Referer, out ReadOnlySpan<byte> referer);
        h.TryGetValue(KnownHeader.XRequestId, out ReadOnlySpan<byte> requestId);
        int bytes = Cap(c.MethodToken.Length) + Cap(c.RawTarget.Length) + Cap(c.Authority.Length) + Cap(ua.Length) + Cap(referer.Length)
            + Cap(requestId.Length) + c.GeneratedRequestId.Length;
        int chars = Math.Min(c.Connection.ServerName?.Length ?? 0, MaxStringChars) + Math.Min(c.ClientIdentity?.Subject.Length ?? 0, MaxStringChars)
            + (c.ConsumerId?.Length ?? 0) + Math.Min(c.Subject?.Length ?? 0, MaxStringChars) + c.Connection.ListenerName.Length + (c.RouteId?.Length ?? 0) + (c.UpstreamCluster?.Length ?? 0) + (c.UpstreamAddress?.Length ?? 0)
            + (c.AiModel?.Length ?? 0);
        return 1024 + (6 * bytes) + (6 * chars);

        static int Cap(int n) => Math.Min(n, MaxFieldBytes);
    }

    /// <summary>Writes the line (with its '\n') into <paramref name="d"/>, which holds at least <see cref="MaxLength"/> bytes.</summary>
    /// <param name="streamId">The HTTP/2 stream, 0 on HTTP/1.x.</param>
    /// <param name="requestBodyBytes">Request body bytes received (after de-chunking).</param>
    /// <param name="end">Stopwatch ticks when the response completed.</param>
    public static int Format(AccessLogFormat format, RequestContext c, int streamId, long requestBodyBytes, long end, DateTime utcNow, Span<byte> d) =>
        format == AccessLogFormat.Combined ? Combined(c, utcNow, d) : Json(c, streamId, requestBodyBytes, end, utcNow, d);

    // ---------------- JSON ----------------

    private static int Json(RequestContext c, int streamId, long requestBodyBytes, long end, DateTime utcNow, Span<byte> d)
    {
        ConnectionInfo conn = c.Connection;
        HeaderCollection h = c.RequestHeaders;
        int n = 0;
        Raw(d, ref n, "{\"time\":\""u8);
        Rfc3339(d, ref n, utcNow);
        Raw(d, ref n, "\",\"connection\":"u8);
        Number(d, ref n, conn.Id);
        Raw(d, ref n, ",\"stream\":"u8);
        if (streamId > 0)
        {
            Number(d, ref n, streamId);
        }
        else
        {
            Raw(d, ref n, "null"u8);
        }

        Raw(d, ref n, ",\"client\":"u8);
        if (conn.RemoteEndPoint is IPEndPoint ip)
        {
            d[n++] = (byte)'"';
            Client(d, ref n, conn, ip, withPort: true);
            d[n++] = (byte)'"';
        }
        else
        {
            Raw(d, ref n, conn.RemoteEndPoint is null ? "null"u8 : "\"unix\""u8);
        }

        Raw(d, ref n, ",\"listener\":"u8);
        JsonString(d, ref n, conn.ListenerName);
        Raw(d, ref n, ",\"protocol\":"u8);
        ReadOnlySpan<byte> protocol = Protocol(c);
        if (protocol.IsEmpty)
        {
            Raw(d, ref n, "null"u8);
        }
        else
        {
            d[n++] = (byte)'"';
            Raw(d, ref n, protocol);
            d[n++] = (byte)'"';
        }

        if (conn.IsTls)
        {
            Raw(d, ref n, ",\"tls_version\":\""u8);
            Raw(d, ref n, TlsVersion(conn.TlsProtocol));
            Raw(d, ref n, "\",\"tls_cipher\":\""u8);
            Raw(d, ref n, CipherName(conn.CipherSuite));
            Raw(d, ref n, "\",\"sni\":"u8);
            JsonString(d, ref n, conn.ServerName);
            Raw(d, ref n, ",\"tls_resumed\":"u8);
            Raw(d, ref n, conn.TlsResumed switch { true => "true"u8, false => "false"u8, null => "null"u8 });
        }
        else
        {
            Raw(d, ref n, ",\"tls_version\":null,\"tls_cipher\":null,\"sni\":null,\"tls_resumed\":null"u8);
        }

        Raw(d, ref n, ",\"client_subject\":"u8);
        JsonString(d, ref n, c.ClientIdentity?.Subject);
        Raw(d, ref n, ",\"consumer\":"u8);
        JsonString(d, ref n, c.ConsumerId);
        Raw(d, ref n, ",\"subject\":"u8);
        JsonString(d, ref n, c.Subject);
        Raw(d, ref n, ",\"method\":"u8);
        JsonBytes(d, ref n, c.MethodToken, nullWhenEmpty: true);
        Raw(d, ref n, ",\"authority\":"u8);
        JsonBytes(d, ref n, c.Authority, nullWhenEmpty: true);
        Raw(d, ref n, ",\"target\":"u8);
        JsonBytes(d, ref n, c.RawTarget, nullWhenEmpty: true);
        Raw(d, ref n, ",\"status\":"u8);
        Number(d, ref n, c.StatusCode);
        Raw(d, ref n, ",\"request_bytes\":"u8);
        Number(d, ref n, requestBodyBytes);
        Raw(d, ref n, ",\"response_bytes\":"u8);
        Number(d, ref n, c.ResponseBytesWritten);
        Raw(d, ref n, ",\"duration_us\":"u8);
        Number(d, ref n, c.StartTimestamp == 0 ? 0 : Stopwatch.GetElapsedTime(c.StartTimestamp, end).Ticks / 10);
        Raw(d, ref n, ",\"route\":"u8);
        JsonString(d, ref n, c.RouteId);
        Raw(d, ref n, ",\"upstream_cluster\":"u8);
        JsonString(d, ref n, c.UpstreamCluster);
        Raw(d, ref n, ",\"upstream_address\":"u8);
        JsonString(d, ref n, c.UpstreamAddress);
        Raw(d, ref n, ",\"upstream_status\":"u8);
        if (c.UpstreamStatus > 0)
        {
            Number(d, ref n, c.UpstreamStatus);
            Raw(d, ref n, ",\"upstream_header_us\":"u8);
            Number(d, ref n, Stopwatch.GetElapsedTime(0, c.UpstreamHeaderTicks).Ticks / 10);
        }
        else
        {
            Raw(d, ref n, "null,\"upstream_header_us\":null"u8);
        }

        if (c.AiModel is { } model)
        {
            // ai routes only: the model that answered and what it cost.
            Raw(d, ref n, ",\"model\":"u8);
            JsonString(d, ref n, model);
            Raw(d, ref n, ",\"input_tokens\":"u8);
            Number(d, ref n, c.InputTokens);
            Raw(d, ref n, ",\"output_tokens\":"u8);
            Number(d, ref n, c.OutputTokens);
            if (c.AiCostNanos >= 0)
            {
                Raw(d, ref n, ",\"cost\":"u8);
                n += Ai.ModelCost.Format(c.AiCostNanos, d[n..]);
            }
        }

        Raw(d, ref n, ",\"request_id\":"u8);
        JsonBytes(d, ref n, h.TryGetValue(KnownHeader.XRequestId, out ReadOnlySpan<byte> id) ? id : c.GeneratedRequestId, nullWhenEmpty: true);
        Raw(d, ref n, ",\"user_agent\":"u8);
        JsonBytes(d, ref n, h.TryGetValue(KnownHeader.UserAgent, out ReadOnlySpan<byte> ua) ? ua : default, nullWhenEmpty: !h.Contains(KnownHeader.UserAgent));
        Raw(d, ref n, ",\"referer\":"u8);
        JsonBytes(d, ref n, h.TryGetValue(KnownHeader.Referer, out ReadOnlySpan<byte> referer) ? referer : default, nullWhenEmpty: !h.Contains(KnownHeader.Referer));
        Raw(d, ref n, "}\n"u8);
        return n;
    }

    private static void JsonBytes(Span<byte> d, ref int n, ReadOnlySpan<byte> value, bool nullWhenEmpty)
    {
        if (value.IsEmpty && nullWhenEmpty)
        {
            Raw(d, ref n, "null"u8);
            return;
        }

        if (value.Length > MaxFieldBytes)
        {
            value = value[..MaxFieldBytes];
        }

        d[n++] = (byte)'"';
        int i = 0;
        while (i < value.Length)
        {
            // Plain runs are copied whole; only the bytes that need a look are handled one by one.
            int run = value[i..].IndexOfAny(s_jsonSpecial);
            if (run < 0)
            {
                run = value.Length - i;
            }

            value.Slice(i, run).CopyTo(d[n..]);
            n += run;
            i += run;
            if (i == value.Length)
            {
                break;
            }

            byte b = value[i];
            if (b < 0x80)
            {
                JsonAscii(d, ref n, b);
                i++;
                continue;
            }

            // Valid UTF-8 passes through; each byte of an invalid sequence becomes \u00XX.
            if (System.Text.Rune.DecodeFromUtf8(value[i..], out _, out int consumed) == System.Buffers.OperationStatus.Done)
            {
                value.Slice(i, consumed).CopyTo(d[n..]);
                n += consumed;
                i += consumed;
            }
            else
            {
                UnicodeEscape(d, ref n, b);
                i++;
            }
        }

        d[n++] = (byte)'"';
    }

    private static void JsonString(Span<byte> d, ref int n, string? value)
    {
        if (value is null)
        {
            Raw(d, ref n, "null"u8);
            return;
        }

        ReadOnlySpan<char> s = value.AsSpan(0, Math.Min(value.Length, MaxStringChars));
        d[n++] = (byte)'"';
        int i = 0;
        while (i < s.Length)
        {
            char ch = s[i];
            if (ch < 0x80)
            {
                JsonAscii(d, ref n, (byte)ch);
                i++;
                continue;
            }

            // A lone surrogate becomes U+FFFD (the decoder's replacement), so the output stays valid UTF-8.
            System.Text.Rune.DecodeFromUtf16(s[i..], out System.Text.Rune rune, out int consumed);
            n += rune.EncodeToUtf8(d[n..]);
            i += consumed;
        }

        d[n++] = (byte)'"';
    }

    private static void JsonAscii(Span<byte> d, ref int n, byte b)
    {
        switch (b)
        {
            case (byte)'"':
                d[n++] = (byte)'\\';
                d[n++] = (byte)'"';
                break;
            case (byte)'\\':
                d[n++] = (byte)'\\';
                d[n++] = (byte)'\\';
                break;
            case < 0x20 or 0x7F:
                UnicodeEscape(d, ref n, b);
                break;
            default:
                d[n++] = b;
                break;
        }
    }

    private static void UnicodeEscape(Span<byte> d, ref int n, byte b)
    {
        "\\u00"u8.CopyTo(d[n..]);
        n += 4;
        d[n++] = Hex(b >> 4, upper: false);
        d[n++] = Hex(b & 0xF, upper: false);
    }

    // ---------------- combined ----------------

    /// <summary><c>$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"</c>.</summary>
    private static int Combined(RequestContext c, DateTime utcNow, Span<byte> d)
    {
        int n = 0;
        if (c.Connection.RemoteEndPoint is IPEndPoint ip)
        {
            Client(d, ref n, c.Connection, ip, withPort: false);
        }
        else
        {
            Raw(d, ref n, "unix:"u8);
        }

        Raw(d, ref n, " - "u8);
        if (c.ConsumerId is { } consumer)
        {
            // $remote_user: the consumer whose API key the route accepted (an id of letters, digits, '_' and '-').
            Span<byte> id = stackalloc byte[Math.Min(consumer.Length, 256)];
            NginxEscaped(d, ref n, id[..System.Text.Encoding.ASCII.GetBytes(consumer.AsSpan(0, id.Length), id)]);
        }
        else
        {
            d[n++] = (byte)'-';
        }

        Raw(d, ref n, " ["u8);
        Two(d, ref n, utcNow.Day);
        d[n++] = (byte)'/';
        Raw(d, ref n, Months.Slice((utcNow.Month - 1) * 3, 3));
        d[n++] = (byte)'/';
        Four(d, ref n, utcNow.Year);
        d[n++] = (byte)':';
        Clock(d, ref n, utcNow);
        Raw(d, ref n, " +0000] \""u8);
        if (c.MethodToken.IsEmpty)
        {
            d[n++] = (byte)'-';
        }
        else
        {
            NginxEscaped(d, ref n, c.MethodToken);
            d[n++] = (byte)' ';
            NginxEscaped(d, ref n, c.RawTarget);
            d[n++] = (byte)' ';
            Raw(d, ref n, c.Version == HttpVersion.Http2 ? "HTTP/2.0"u8 : Protocol(c)); // nginx writes HTTP/2.0
        }

        Raw(d, ref n, "\" "u8);
        Number(d, ref n, c.StatusCode);
        d[n++] = (byte)' ';
        Number(d, ref n, c.ResponseBytesWritten);
        Raw(d, ref n, " \""u8);
        HeaderCollection h = c.RequestHeaders;
        NginxEscapedOrDash(d, ref n, h.TryGetValue(KnownHeader.Referer, out ReadOnlySpan<byte> referer) ? referer : default);
        Raw(d, ref n, "\" \""u8);
        NginxEscapedOrDash(d, ref n, h.TryGetValue(KnownHeader.UserAgent, out ReadOnlySpan<byte> ua) ? ua : default);
        Raw(d, ref n, "\"\n"u8);
        return n;
    }

    private static void NginxEscapedOrDash(Span<byte> d, ref int n, ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty)
        {
            d[n++] = (byte)'-';
        }
        else
        {
            NginxEscaped(d, ref n, value);
        }
    }

    /// <summary>nginx's ngx_http_log_escape: '"', '\', and bytes below 0x20 or from 0x7F up as \xHH (upper-case hex).</summary>
    private static void NginxEscaped(Span<byte> d, ref int n, ReadOnlySpan<byte> value)
    {
        if (value.Length > MaxFieldBytes)
        {
            value = value[..MaxFieldBytes];
        }

        while (!value.IsEmpty)
        {
            int run = value.IndexOfAny(s_nginxEscaped);
            if (run < 0)
            {
                run = value.Length;
            }

            value[..run].CopyTo(d[n..]);
            n += run;
            if (run == value.Length)
            {
                break;
            }

            byte b = value[run];
            d[n++] = (byte)'\\';
            d[n++] = (byte)'x';
            d[n++] = Hex(b >> 4, upper: true);
            d[n++] = Hex(b & 0xF, upper: true);
            value = value[(run + 1)..];
        }
    }

    // ---------------- pieces ----------------

    private static ReadOnlySpan<byte> Protocol(RequestContext c) =>
        c.Version == HttpVersion.Http2 ? "HTTP/2"u8
        : c.MethodToken.IsEmpty ? default // rejected before the request line was read
        : c.Version == HttpVersion.Http11 ? "HTTP/1.1"u8 : "HTTP/1.0"u8;

    private static ReadOnlySpan<byte> TlsVersion(SslProtocols protocol) => protocol switch
    {
        SslProtocols.Tls13 => "TLSv1.3"u8,
        SslProtocols.Tls12 => "TLSv1.2"u8,
#pragma warning disable SYSLIB0039 // naming what was negotiated, not allowing it
        SslProtocols.Tls11 => "TLSv1.1"u8,
        SslProtocols.Tls => "TLSv1"u8,
#pragma warning restore SYSLIB0039
        _ => "unknown"u8,
    };

    /// <summary>The IANA name ("TLS_AES_256_GCM_SHA384"), made once per suite.</summary>
    private static byte[] CipherName(TlsCipherSuite suite) =>
        s_cipherNames.GetOrAdd(suite, static s => Encoding.ASCII.GetBytes(s.ToString()));

    /// <summary>
    /// The client's address as the connection keeps it (<see cref="ConnectionInfo.ClientAddressText"/>: a dual-stack
    /// socket's IPv4 client as plain IPv4, as nginx shows it), with the port when asked ("[v6]:port").
    /// </summary>
    private static void Client(Span<byte> d, ref int n, ConnectionInfo conn, IPEndPoint ip, bool withPort)
    {
        bool bracket = withPort && conn.ClientAddress!.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        if (bracket)
        {
            d[n++] = (byte)'[';
        }

        ReadOnlySpan<byte> text = conn.ClientAddressText;
        text.CopyTo(d[n..]);
        n += text.Length;
        if (withPort)
        {
            if (bracket)
            {
                d[n++] = (byte)']';
            }

            d[n++] = (byte)':';
            Number(d, ref n, ip.Port);
        }
    }

    /// <summary>RFC 3339, UTC, milliseconds: 2025-01-31T23:59:59.123Z.</summary>
    private static void Rfc3339(Span<byte> d, ref int n, DateTime t)
    {
        Four(d, ref n, t.Year);
        d[n++] = (byte)'-';
        Two(d, ref n, t.Month);
        d[n++] = (byte)'-';
        Two(d, ref n, t.Day);
        d[n++] = (byte)'T';
        Clock(d, ref n, t);
        d[n++] = (byte)'.';
        int ms = t.Millisecond;
        d[n++] = (byte)('0' + (ms / 100));
        d[n++] = (byte)('0' + (ms / 10 % 10));
        d[n++] = (byte)('0' + (ms % 10));
        d[n++] = (byte)'Z';
    }

    private static void Clock(Span<byte> d, ref int n, DateTime t)
    {
        Two(d, ref n, t.Hour);
        d[n++] = (byte)':';
        Two(d, ref n, t.Minute);
        d[n++] = (byte)':';
        Two(d, ref n, t.Second);
    }

    private static void Two(Span<byte> d, ref int n, int v)
    {
        d[n++] = (byte)('0' + (v / 10));
        d[n++] = (byte)('0' + (v % 10));
    }

    private static void Four(Span<byte> d, ref int n, int v)
    {
        Two(d, ref n, v / 100);
        Two(d, ref n, v % 100);
    }

    private static void Number(Span<byte> d, ref int n, long v)
    {
        Utf8Formatter.TryFormat(v, d[n..], out int written);
        n += written;
    }

    private static void Raw(Span<byte> d, ref int n, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(d[n..]);
        n += bytes.Length;
    }

    private static byte[] Special()
    {
        var bytes = new List<byte> { (byte)'"', (byte)'\\' };
        for (int b = 0; b < 0x20; b++) bytes.Add((byte)b);
        for (int b = 0x7F; b <= 0xFF; b++) bytes.Add((byte)b);
        return [.. bytes];
    }

    private static byte Hex(int nibble, bool upper) =>
        (byte)(nibble < 10 ? '0' + nibble : (upper ? 'A' : 'a') + nibble - 10);
}

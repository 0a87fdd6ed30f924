using System.Buffers;
using System.Text;
using Appliance.Protocol.Headers;

namespace Appliance.Protocol.Http1;

/// <summary>
/// Decides, once the header section is parsed, how the request body is delimited (RFC 9112 §6) and whether Host is
/// acceptable (RFC 9112 §3.2). Strict where proxies disagree, because a disagreement between us and an upstream about
/// where a request ends is request smuggling.
/// </summary>
public static class Http1RequestFraming
{
    // RFC 3986 §3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims ); IPv4address uses a subset.
    private static readonly SearchValues<byte> s_regName =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=%"u8);

    // IPv6address inside "[ ]": hex digits, ':' and '.' (for an embedded IPv4 part). IPvFuture is not accepted.
    private static readonly SearchValues<byte> s_ipv6 = SearchValues.Create("0123456789ABCDEFabcdef:."u8);

    /// <summary>
    /// Determines the body framing. <paramref name="contentLength"/> is the declared length for
    /// <see cref="BodyKind.ContentLength"/>, -1 for <see cref="BodyKind.Chunked"/> and 0 for <see cref="BodyKind.None"/>.
    /// </summary>
    public static RequestRejection Determine(HeaderCollection headers, HttpVersion version, out BodyKind kind, out long contentLength)
    {
        ArgumentNullException.ThrowIfNull(headers);
        kind = BodyKind.None;
        contentLength = 0;
        bool hasTransferEncoding = headers.Contains(KnownHeader.TransferEncoding);
        bool hasContentLength = headers.Contains(KnownHeader.ContentLength);

        if (hasTransferEncoding)
        {
            // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
            if (version == HttpVersion.Http10)
            {
                return RequestRejection.TransferEncodingInHttp10;
            }

            // RFC 9112 §6.1/§6.3: both present is the classic smuggling signature; reject instead of letting TE win.
            if (hasContentLength)
            {
                return RequestRejection.ConflictingContentLengthAndTransferEncoding;
            }

            RequestRejection r = CheckTransferEncoding(headers);
            if (r != RequestRejection.None)
            {
                return r;
            }

            kind = BodyKind.Chunked;
            contentLength = -1;
            return RequestRejection.None;
        }

        if (hasContentLength)
        {
            // RFC 9112 §6.3 rule 5 lets a recipient accept repeated identical values; a proxy that does so while the
            // upstream does not is a smuggling vector, so any repetition is refused.
            if (headers.CountOf(KnownHeader.ContentLength) > 1)
            {
                return RequestRejection.MultipleContentLength;
            }

            headers.TryGetValue(KnownHeader.ContentLength, out ReadOnlySpan<byte> value);
            if (value.Contains((byte)','))
            {
                return RequestRejection.MultipleContentLength;
            }

            if (!TryParseContentLength(value, out long length))
            {
                return RequestRejection.InvalidContentLength;
            }

            kind = BodyKind.ContentLength;
            contentLength = length;
        }

        return RequestRejection.None;
    }

    /// <summary>
    /// RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host; its value is uri-host [ ":" port ], and it may be
    /// empty only when the target has no authority (origin or asterisk form). With an absolute-form target the
    /// target's authority wins (RFC 9112 §3.2.2), but Host must still be present and valid.
    /// </summary>
    public static RequestRejection ValidateHost(HeaderCollection headers, ReadOnlySpan<byte> target, HttpVersion version)
    {
        ArgumentNullException.ThrowIfNull(headers);
        int count = headers.CountOf(KnownHeader.Host);
        if (count > 1)
        {
            return RequestRejection.MultipleHost;
        }

        if (count == 0)
        {
            return version == HttpVersion.Http10 ? RequestRejection.None : RequestRejection.MissingHost;
        }

        headers.TryGetValue(KnownHeader.Host, out ReadOnlySpan<byte> host);
        if (host.IsEmpty)
        {
            bool targetHasAuthority = !target.IsEmpty && target[0] != (byte)'/' && !target.SequenceEqual("*"u8);
            return targetHasAuthority ? RequestRejection.InvalidHost : RequestRejection.None;
        }

        return IsValidHost(host) ? RequestRejection.None : RequestRejection.InvalidHost;
    }

    /// <summary>
    /// True for uri-host [ ":" port ] (RFC 3986 §3.2.2–3.2.3): a reg-name or IPv4 address, or an IPv6 literal in
    /// brackets, then optionally a port of 1–5 digits up to 65535. No userinfo, no whitespace.
    /// </summary>
    public static bool IsValidHost(ReadOnlySpan<byte> host)
    {
        if (host.IsEmpty)
        {
            return false;
        }

        ReadOnlySpan<byte> port;
        if (host[0] == (byte)'[')
        {
            int close = host.IndexOf((byte)']');
            if (close < 3)
            {
                return false;
            }

            ReadOnlySpan<byte> address = host[1..close];
            if (address.IndexOfAnyExcept(s_ipv6) >= 0 || !address.Contains((byte)':'))
            {
                return false;
            }

            ReadOnlySpan<byte> rest = host[(close + 1)..];
            if (rest.IsEmpty)
            {
                return true;
            }

            if (rest[0] != (byte)':')
            {
                return false;
            }

            port = rest[1..];
        }
        else
        {
            int colon = host.IndexOf((byte)':');
            ReadOnlySpan<byte> name = colon < 0 ? host : host[..colon];
            if (name.IsEmpty || name.IndexOfAnyExcept(s_regName) >= 0 || !HasValidPercentEncoding(name))
            {
                return false;
            }

            if (colon < 0)
            {
                return true;
            }

            port = host[(colon + 1)..];
        }

        if (port.IsEmpty || port.Length > 5)
        {
            return false;
        }

        int value = 0;
        foreach (byte b in port)
        {
            if (!char.IsAsciiDigit((char)b))
            {
                return false;
            }

            value = (value * 10) + (b - '0');
        }

        return value <= 65535;
    }

    /// <summary>RFC 9110 §8.6: Content-Length = 1*DIGIT, here without sign, whitespace or overflow of a long.</summary>
    public static bool TryParseContentLength(ReadOnlySpan<byte> value, out long length)
    {
        length = 0;
        if (value.IsEmpty)
        {
            return false;
        }

        long n = 0;
        foreach (byte b in value)
        {
            uint digit = (uint)(b - '0');
            if (digit > 9 || n > (long.MaxValue - digit) / 10)
            {
                return false;
            }

            n = (n * 10) + digit;
        }

        length = n;
        return true;
    }

    /// <summary>
    /// RFC 9112 §6.3 rule 4 and §7: the combined list (all field lines, comma-separated, case-insensitive) must end in
    /// chunked (else 400); chunked may appear once and we implement no other coding (else 501).
    /// </summary>
    private static RequestRejection CheckTransferEncoding(HeaderCollection headers)
    {
        int chunked = 0;
        int others = 0;
        bool lastIsChunked = false;
        foreach (HeaderField field in headers)
        {
            if (field.Known != KnownHeader.TransferEncoding)
            {
                continue;
            }

            ReadOnlySpan<byte> list = field.Value;
            while (true)
            {
                int comma = list.IndexOf((byte)',');
                ReadOnlySpan<byte> element = HttpCharacters.TrimWhitespace(comma < 0 ? list : list[..comma]);

                // RFC 9110 §5.6.1: empty list elements are ignored.
                if (!element.IsEmpty)
                {
                    // transfer-coding = token *( OWS ";" OWS transfer-parameter ); chunked takes no parameters.
                    int semicolon = element.IndexOf((byte)';');
                    ReadOnlySpan<byte> coding = semicolon < 0 ? element : HttpCharacters.TrimWhitespace(element[..semicolon]);
                    if (!HttpCharacters.IsToken(coding))
                    {
                        return RequestRejection.InvalidHeaderValue;
                    }

                    lastIsChunked = semicolon < 0 && Ascii.EqualsIgnoreCase(coding, "chunked"u8);
                    if (lastIsChunked)
                    {
                        chunked++;
                    }
                    else
                    {
                        others++;
                    }
                }

                if (comma < 0)
                {
                    break;
                }

                list = list[(comma + 1)..];
            }
        }

        if (!lastIsChunked)
        {
            return RequestRejection.TransferEncodingNotChunked;
        }

        return chunked > 1 || others > 0 ? RequestRejection.UnsupportedTransferEncoding : RequestRejection.None;
    }

    private static bool HasValidPercentEncoding(ReadOnlySpan<byte> name)
    {
        int i = name.IndexOf((byte)'%');
        while (i >= 0)
        {
            if (i + 2 >= name.Length || !char.IsAsciiHexDigit((char)name[i + 1]) || !char.IsAsciiHexDigit((char)name[i + 2]))
            {
                return false;
            }

            int next = name[(i + 3)..].IndexOf((byte)'%');
            i = next < 0 ? -1 : i + 3 + next;
        }

        return true;
    }
}

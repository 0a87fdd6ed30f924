using System.Buffers;
using System.Net;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using Appliance.Server;
using HttpVersion = Appliance.Protocol.Http1.HttpVersion;

namespace Appliance.Proxy;

/// <summary>Takes the fields of a forwarded request one by one: HTTP/1.1 text, or HPACK for an HTTP/2 upstream.</summary>
internal interface IForwardedFieldWriter
{
    void Field(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value);
}

/// <summary>
/// The fields a proxied request carries upstream, whatever the protocol on either side (RFC 9110 §7.6): the
/// client's end-to-end fields minus hop-by-hop ones (Connection and what it names, Keep-Alive, TE, Trailer,
/// Transfer-Encoding, Upgrade, Proxy-*), framing and Host (the caller's), then the route's set/add transforms,
/// X-Forwarded-For/-Proto/-Host and RFC 7239 Forwarded, Via, and X-Request-Id and traceparent when absent.
/// Generic over the writer so the HTTP/1.1 path stays a straight copy into the pipe (no allocation).
/// </summary>
[System.Runtime.CompilerServices.SkipLocalsInit] // the scratch buffers are written before they are read
internal static class ForwardedFields
{
    public static void Write<TWriter>(RequestContext c, ProxyTransforms t, ref TWriter w, bool joinCookies)
        where TWriter : struct, IForwardedFieldWriter
    {
        HeaderCollection headers = c.RequestHeaders;
        bool hasRequestId = false, hasTraceparent = false, cookiesJoined = false;
        ReadOnlySpan<byte> via = default, clientXff = default;
        bool trusted = t.XForwarded == ForwardedMode.Append && t.IsTrusted(c.Connection.ClientAddress);
        for (int i = 0; i < headers.Count; i++)
        {
            HeaderField f = headers[i];
            switch (f.Known)
            {
                // RFC 9110 §7.6.1: connection-specific fields stop here; framing is ours; Expect is answered by us.
                case KnownHeader.Host or KnownHeader.Connection or KnownHeader.KeepAlive or KnownHeader.ProxyConnection
                    or KnownHeader.TE or KnownHeader.Trailer or KnownHeader.TransferEncoding or KnownHeader.Upgrade
                    or KnownHeader.ContentLength or KnownHeader.Expect or KnownHeader.ProxyAuthorization:
                    continue;
                // Set below by this hop; passed through only when the route turns forwarding headers off.
                case KnownHeader.XForwardedFor or KnownHeader.XForwardedProto or KnownHeader.XForwardedHost or KnownHeader.Forwarded
                    when t.XForwarded != ForwardedMode.Off:
                    if (f.Known == KnownHeader.XForwardedFor && trusted)
                    {
                        clientXff = f.Value; // from a trusted proxy: this hop is appended to it
                    }

                    continue;
                case KnownHeader.Cookie when joinCookies && c.Version == HttpVersion.Http2:
                    // RFC 9113 §8.2.3: HTTP/2 may split cookies into several fields; HTTP/1.1 wants one, "; "-joined.
                    if (!cookiesJoined)
                    {
                        cookiesJoined = true;
                        WriteJoinedCookies(headers, ref w);
                    }

                    continue;
                case KnownHeader.Via:
                    via = f.Value;
                    continue;
                case KnownHeader.XRequestId:
                    hasRequestId = true;
                    break;
                case KnownHeader.Traceparent:
                    hasTraceparent = true;
                    break;
            }

            if (f.Known == KnownHeader.None && IsListedInConnection(headers, f.Name))
            {
                continue; // RFC 9110 §7.6.1: fields named by Connection are hop-by-hop too
            }

            if (t.DropsRequestField(f.Name))
            {
                continue;
            }

            w.Field(f.Name, f.Value);
        }

        foreach ((byte[] name, byte[] value) in t.RequestSet)
        {
            w.Field(name, value);
        }

        foreach ((byte[] name, byte[] value) in t.RequestAdd)
        {
            w.Field(name, value);
        }

        if (t.ClientCertificateHeader is { } certHeader && c.ClientIdentity is { } identity)
        {
            w.Field(certHeader, ClientCertificateValue(identity));
        }

        Span<byte> scratch = stackalloc byte[256];
        if (t.ConsumerHeader is { } consumerHeader && c.ConsumerId is { } consumer
            && System.Text.Encoding.ASCII.TryGetBytes(consumer, scratch, out int consumerLength)) // ids are short ASCII
        {
            w.Field(consumerHeader, scratch[..consumerLength]);
        }

        if (t.SubjectHeader is { } subjectHeader && c.Subject is { } subject)
        {
            // A signed claim, but any JSON string: only what a field value may hold goes on (RFC 9110 §5.5), else nothing.
            byte[]? rented = null;
            int max = System.Text.Encoding.UTF8.GetMaxByteCount(subject.Length);
            Span<byte> value = max <= scratch.Length ? scratch : (rented = ArrayPool<byte>.Shared.Rent(max));
            int length = System.Text.Encoding.UTF8.GetBytes(subject, value);
            if (HttpCharacters.IndexOfInvalidFieldValueChar(value[..length]) < 0)
            {
                w.Field(subjectHeader, value[..length]);
            }

            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }

        if (t.XForwarded != ForwardedMode.Off)
        {
            byte[]? rented = null;
            Span<byte> xff = clientXff.Length + 2 + 64 <= scratch.Length ? scratch : (rented = ArrayPool<byte>.Shared.Rent(clientXff.Length + 66));
            int n = 0;
            if (!clientXff.IsEmpty)
            {
                clientXff.CopyTo(xff);
                ", "u8.CopyTo(xff[clientXff.Length..]);
                n = clientXff.Length + 2;
            }

            n += FormatClientAddress(c, xff[n..], quoteIpv6: false);
            w.Field("X-Forwarded-For"u8, xff[..n]);
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }

            w.Field("X-Forwarded-Proto"u8, c.IsHttps ? "https"u8 : "http"u8);
            w.Field("X-Forwarded-Host"u8, c.Authority);
            if (t.Forwarded)
            {
                // RFC 7239 §4: for=, proto=, host=; an IPv6 address is quoted in brackets.
                rented = null;
                Span<byte> fwd = c.Authority.Length + 100 <= scratch.Length ? scratch : (rented = ArrayPool<byte>.Shared.Rent(c.Authority.Length + 100));
                "for="u8.CopyTo(fwd);
                n = 4 + FormatClientAddress(c, fwd[4..], quoteIpv6: true);
                ReadOnlySpan<byte> proto = c.IsHttps ? ";proto=https;host=\""u8 : ";proto=http;host=\""u8;
                proto.CopyTo(fwd[n..]);
                n += proto.Length;
                c.Authority.CopyTo(fwd[n..]);
                n += c.Authority.Length;
                fwd[n++] = (byte)'"';
                w.Field("Forwarded"u8, fwd[..n]);
                if (rented is not null)
                {
                    ArrayPool<byte>.Shared.Return(rented);
                }
            }
        }

        ReadOnlySpan<byte> self = c.Version == HttpVersion.Http2 ? "2 appliance"u8 : c.Version == HttpVersion.Http10 ? "1.0 appliance"u8 : "1.1 appliance"u8;
        if (via.IsEmpty)
        {
            w.Field("Via"u8, self);
        }
        else
        {
            byte[] joined = ArrayPool<byte>.Shared.Rent(via.Length + 2 + self.Length);
            via.CopyTo(joined);
            ", "u8.CopyTo(joined.AsSpan(via.Length));
            self.CopyTo(joined.AsSpan(via.Length + 2));
            w.Field("Via"u8, joined.AsSpan(0, via.Length + 2 + self.Length));
            ArrayPool<byte>.Shared.Return(joined);
        }

        if (hasRequestId && hasTraceparent)
        {
            return;
        }

        // One draw for both: 16 bytes of request id, 16 of trace id, 8 of span id.
        Span<byte> random = stackalloc byte[40];
        Random.Shared.NextBytes(random);
        if (!hasRequestId)
        {
            Hex(random[..16], scratch);
            w.Field("X-Request-Id"u8, scratch[..32]);
            c.SetGeneratedRequestId(scratch[..32]); // the access log shows what the upstream saw
        }

        if (!hasTraceparent)
        {
            // W3C Trace Context: version 00, new trace id and span id, sampled.
            Span<byte> tp = scratch[..55];
            "00-"u8.CopyTo(tp);
            Hex(random.Slice(16, 16), tp[3..]);
            tp[35] = (byte)'-';
            Hex(random.Slice(32, 8), tp[36..]);
            "-01"u8.CopyTo(tp[52..]);
            w.Field("traceparent"u8, tp);
        }
    }

    /// <summary>
    /// Envoy's x-forwarded-client-cert shape from the identity trusted for the route: the certificate's SHA-256, its
    /// subject, its URI SANs (when it has some: SPIFFE IDs) and its DNS names.
    /// </summary>
    private static byte[] ClientCertificateValue(ClientIdentity identity)
    {
        var value = new System.Text.StringBuilder(128);
        value.Append("Hash=").Append(identity.Thumbprint).Append(";Subject=");
        Quoted(value, identity.Subject);
        AppendList(value, ";URI=", identity.Uris);
        AppendList(value, ";DNS=", identity.DnsNames);
        return System.Text.Encoding.UTF8.GetBytes(value.ToString());

        static void AppendList(System.Text.StringBuilder value, string key, IReadOnlyList<string> items)
        {
            for (int i = 0; i < items.Count; i++)
            {
                value.Append(i == 0 ? key : ",");
                // Names with a separator in them are quoted, so none can pose as another element or field.
                if (items[i].AsSpan().IndexOfAny(";,=\" \\") >= 0 || items[i].Any(char.IsControl))
                {
                    Quoted(value, items[i]);
                }
                else
                {
                    value.Append(items[i]);
                }
            }
        }

        // Quoted, and no control character of a hostile subject can reach the header block.
        static void Quoted(System.Text.StringBuilder value, string text)
        {
            value.Append('"');
            foreach (char ch in text)
            {
                if (ch is '"' or '\\')
                {
                    value.Append('\\');
                }

                value.Append(ch < ' ' || ch == '\x7f' ? '?' : ch);
            }

            value.Append('"');
        }
    }

    private static bool IsListedInConnection(HeaderCollection headers, ReadOnlySpan<byte> name)
    {
        if (!headers.TryGetValue(KnownHeader.Connection, out ReadOnlySpan<byte> value))
        {
            return false;
        }

        foreach (ReadOnlySpan<byte> token in new HttpList(value))
        {
            if (System.Text.Ascii.EqualsIgnoreCase(token, name))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The client's address as text (IPv4-mapped shown as IPv4); RFC 7239 quotes IPv6 as "[addr]".</summary>
    private static int FormatClientAddress(RequestContext c, Span<byte> span, bool quoteIpv6)
    {
        ReadOnlySpan<byte> text = c.Connection.ClientAddressText; // formatted once per connection
        if (text.IsEmpty)
        {
            "unknown"u8.CopyTo(span);
            return 7;
        }

        bool quote = quoteIpv6 && c.Connection.ClientAddress!.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        int n = 0;
        if (quote)
        {
            "\"["u8.CopyTo(span);
            n = 2;
        }

        text.CopyTo(span[n..]);
        n += text.Length;
        if (quote)
        {
            "]\""u8.CopyTo(span[n..]);
            n += 2;
        }

        return n;
    }

    private static void WriteJoinedCookies<TWriter>(HeaderCollection headers, ref TWriter w)
        where TWriter : struct, IForwardedFieldWriter
    {
        int length = 0;
        for (int i = 0; i < headers.Count; i++)
        {
            if (headers[i].Known == KnownHeader.Cookie)
            {
                length += headers[i].Value.Length + 2;
            }
        }

        byte[] joined = ArrayPool<byte>.Shared.Rent(length);
        int n = 0;
        for (int i = 0; i < headers.Count; i++)
        {
            HeaderField f = headers[i];
            if (f.Known != KnownHeader.Cookie)
            {
                continue;
            }

            if (n > 0)
            {
                "; "u8.CopyTo(joined.AsSpan(n));
                n += 2;
            }

            f.Value.CopyTo(joined.AsSpan(n));
            n += f.Value.Length;
        }

        w.Field("Cookie"u8, joined.AsSpan(0, n));
        ArrayPool<byte>.Shared.Return(joined);
    }

    private static void Hex(ReadOnlySpan<byte> bytes, Span<byte> destination) =>
        Convert.TryToHexStringLower(bytes, destination, out _); // vectorized, lowercase as W3C Trace Context asks
}

/// <summary>Fields as HTTP/1.1 text straight into the upstream connection's pipe.</summary>
internal readonly struct Http1ForwardedFieldWriter(HeadBuffer output) : IForwardedFieldWriter
{
    public void Field(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) => Http1FieldWriter.Write(output, name, value);
}

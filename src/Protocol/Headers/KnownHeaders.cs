using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Appliance.Protocol.Headers;

/// <summary>
/// Byte-level matching of known field names. Field names are case-insensitive (RFC 9110 §5.1), so the lookup folds
/// ASCII letters while comparing, eight bytes at a time, and never builds a string.
/// </summary>
public static class KnownHeaders
{
    /// <summary>The highest defined <see cref="KnownHeader"/> value.</summary>
    public const KnownHeader Last = KnownHeader.Range;

    /// <summary>Maps a field name, in any letter case, to its <see cref="KnownHeader"/>; <see cref="KnownHeader.None"/> if unknown.</summary>
    public static KnownHeader Lookup(ReadOnlySpan<byte> name)
    {
        // Dispatch on length first, then on the (folded) first byte; one full comparison decides.
        if (name.IsEmpty)
        {
            return KnownHeader.None;
        }

        byte first = (byte)(name[0] | 0x20);
        switch (name.Length)
        {
            case 2:
                return Matches(name, "te"u8) ? KnownHeader.TE : KnownHeader.None;
            case 3:
                return Matches(name, "via"u8) ? KnownHeader.Via : KnownHeader.None;
            case 4:
                if (first == 'h') return Matches(name, "host"u8) ? KnownHeader.Host : KnownHeader.None;
                if (first == 'd') return Matches(name, "date"u8) ? KnownHeader.Date : KnownHeader.None;
                break;
            case 5:
                return Matches(name, "range"u8) ? KnownHeader.Range : KnownHeader.None;
            case 6:
                switch (first)
                {
                    case (byte)'a': return Matches(name, "accept"u8) ? KnownHeader.Accept : KnownHeader.None;
                    case (byte)'c': return Matches(name, "cookie"u8) ? KnownHeader.Cookie : KnownHeader.None;
                    case (byte)'e': return Matches(name, "expect"u8) ? KnownHeader.Expect : KnownHeader.None;
                    case (byte)'o': return Matches(name, "origin"u8) ? KnownHeader.Origin : KnownHeader.None;
                    case (byte)'s': return Matches(name, "server"u8) ? KnownHeader.Server : KnownHeader.None;
                }

                break;
            case 7:
                switch (first)
                {
                    case (byte)'r': return Matches(name, "referer"u8) ? KnownHeader.Referer : KnownHeader.None;
                    case (byte)'t': return Matches(name, "trailer"u8) ? KnownHeader.Trailer : KnownHeader.None;
                    case (byte)'u': return Matches(name, "upgrade"u8) ? KnownHeader.Upgrade : KnownHeader.None;
                }

                break;
            case 8:
                return Matches(name, "location"u8) ? KnownHeader.Location : KnownHeader.None;
            case 9:
                return Matches(name, "forwarded"u8) ? KnownHeader.Forwarded : KnownHeader.None;
            case 10:
                switch (first)
                {
                    case (byte)'c': return Matches(name, "connection"u8) ? KnownHeader.Connection : KnownHeader.None;
                    case (byte)'k': return Matches(name, "keep-alive"u8) ? KnownHeader.KeepAlive : KnownHeader.None;
                    case (byte)'u': return Matches(name, "user-agent"u8) ? KnownHeader.UserAgent : KnownHeader.None;
                }

                break;
            case 11:
                return Matches(name, "traceparent"u8) ? KnownHeader.Traceparent : KnownHeader.None;
            case 12:
                if (first == 'c') return Matches(name, "content-type"u8) ? KnownHeader.ContentType : KnownHeader.None;
                if (first == 'x') return Matches(name, "x-request-id"u8) ? KnownHeader.XRequestId : KnownHeader.None;
                break;
            case 13:
                switch (first)
                {
                    case (byte)'a': return Matches(name, "authorization"u8) ? KnownHeader.Authorization : KnownHeader.None;
                    case (byte)'c': return Matches(name, "cache-control"u8) ? KnownHeader.CacheControl : KnownHeader.None;
                    case (byte)'i': return Matches(name, "if-none-match"u8) ? KnownHeader.IfNoneMatch : KnownHeader.None;
                }

                break;
            case 14:
                return Matches(name, "content-length"u8) ? KnownHeader.ContentLength : KnownHeader.None;
            case 15:
                if (first == 'x') return Matches(name, "x-forwarded-for"u8) ? KnownHeader.XForwardedFor : KnownHeader.None;
                if (Matches(name, "accept-encoding"u8)) return KnownHeader.AcceptEncoding;
                if (Matches(name, "accept-language"u8)) return KnownHeader.AcceptLanguage;
                break;
            case 16:
                if (first == 'p') return Matches(name, "proxy-connection"u8) ? KnownHeader.ProxyConnection : KnownHeader.None;
                if (first == 'x') return Matches(name, "x-forwarded-host"u8) ? KnownHeader.XForwardedHost : KnownHeader.None;
                break;
            case 17:
                switch (first)
                {
                    case (byte)'t': return Matches(name, "transfer-encoding"u8) ? KnownHeader.TransferEncoding : KnownHeader.None;
                    case (byte)'x': return Matches(name, "x-forwarded-proto"u8) ? KnownHeader.XForwardedProto : KnownHeader.None;
                    case (byte)'i': return Matches(name, "if-modified-since"u8) ? KnownHeader.IfModifiedSince : KnownHeader.None;
                }

                break;
            case 19:
                return Matches(name, "proxy-authorization"u8) ? KnownHeader.ProxyAuthorization : KnownHeader.None;
        }

        return KnownHeader.None;
    }

    /// <summary>The lowercase name, as HTTP/2 and HPACK need it (RFC 9113 §8.2.1). Empty for <see cref="KnownHeader.None"/>.</summary>
    public static ReadOnlySpan<byte> LowercaseName(KnownHeader header) => header switch
    {
        KnownHeader.Host => "host"u8,
        KnownHeader.ContentLength => "content-length"u8,
        KnownHeader.TransferEncoding => "transfer-encoding"u8,
        KnownHeader.Connection => "connection"u8,
        KnownHeader.KeepAlive => "keep-alive"u8,
        KnownHeader.Expect => "expect"u8,
        KnownHeader.TE => "te"u8,
        KnownHeader.Trailer => "trailer"u8,
        KnownHeader.Upgrade => "upgrade"u8,
        KnownHeader.ProxyConnection => "proxy-connection"u8,
        KnownHeader.ProxyAuthorization => "proxy-authorization"u8,
        KnownHeader.ContentType => "content-type"u8,
        KnownHeader.Accept => "accept"u8,
        KnownHeader.AcceptEncoding => "accept-encoding"u8,
        KnownHeader.UserAgent => "user-agent"u8,
        KnownHeader.Authorization => "authorization"u8,
        KnownHeader.Cookie => "cookie"u8,
        KnownHeader.Date => "date"u8,
        KnownHeader.Server => "server"u8,
        KnownHeader.Location => "location"u8,
        KnownHeader.CacheControl => "cache-control"u8,
        KnownHeader.Forwarded => "forwarded"u8,
        KnownHeader.XForwardedFor => "x-forwarded-for"u8,
        KnownHeader.XForwardedProto => "x-forwarded-proto"u8,
        KnownHeader.XForwardedHost => "x-forwarded-host"u8,
        KnownHeader.XRequestId => "x-request-id"u8,
        KnownHeader.Traceparent => "traceparent"u8,
        KnownHeader.Via => "via"u8,
        KnownHeader.Referer => "referer"u8,
        KnownHeader.Origin => "origin"u8,
        KnownHeader.AcceptLanguage => "accept-language"u8,
        KnownHeader.IfNoneMatch => "if-none-match"u8,
        KnownHeader.IfModifiedSince => "if-modified-since"u8,
        KnownHeader.Range => "range"u8,
        _ => default,
    };

    /// <summary>The conventional capitalisation, for HTTP/1.1 output. Empty for <see cref="KnownHeader.None"/>.</summary>
    public static ReadOnlySpan<byte> Name(KnownHeader header) => header switch
    {
        KnownHeader.Host => "Host"u8,
        KnownHeader.ContentLength => "Content-Length"u8,
        KnownHeader.TransferEncoding => "Transfer-Encoding"u8,
        KnownHeader.Connection => "Connection"u8,
        KnownHeader.KeepAlive => "Keep-Alive"u8,
        KnownHeader.Expect => "Expect"u8,
        KnownHeader.TE => "TE"u8,
        KnownHeader.Trailer => "Trailer"u8,
        KnownHeader.Upgrade => "Upgrade"u8,
        KnownHeader.ProxyConnection => "Proxy-Connection"u8,
        KnownHeader.ProxyAuthorization => "Proxy-Authorization"u8,
        KnownHeader.ContentType => "Content-Type"u8,
        KnownHeader.Accept => "Accept"u8,
        KnownHeader.AcceptEncoding => "Accept-Encoding"u8,
        KnownHeader.UserAgent => "User-Agent"u8,
        KnownHeader.Authorization => "Authorization"u8,
        KnownHeader.Cookie => "Cookie"u8,
        KnownHeader.Date => "Date"u8,
        KnownHeader.Server => "Server"u8,
        KnownHeader.Location => "Location"u8,
        KnownHeader.CacheControl => "Cache-Control"u8,
        KnownHeader.Forwarded => "Forwarded"u8,
        KnownHeader.XForwardedFor => "X-Forwarded-For"u8,
        KnownHeader.XForwardedProto => "X-Forwarded-Proto"u8,
        KnownHeader.XForwardedHost => "X-Forwarded-Host"u8,
        KnownHeader.XRequestId => "X-Request-Id"u8,
        KnownHeader.Traceparent => "Traceparent"u8,
        KnownHeader.Via => "Via"u8,
        KnownHeader.Referer => "Referer"u8,
        KnownHeader.Origin => "Origin"u8,
        KnownHeader.AcceptLanguage => "Accept-Language"u8,
        KnownHeader.IfNoneMatch => "If-None-Match"u8,
        KnownHeader.IfModifiedSince => "If-Modified-Since"u8,
        KnownHeader.Range => "Range"u8,
        _ => default,
    };

    /// <summary>
    /// Compares <paramref name="name"/> with an all-lowercase literal of the same length made only of letters and '-'.
    /// Letters in the literal have bit 0x40 set and '-' does not, so <c>(literal &amp; 0x40) &gt;&gt; 1</c> is a
    /// per-byte mask that folds case only where the literal has a letter: "Content\rLength" does not match.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Matches(ReadOnlySpan<byte> name, ReadOnlySpan<byte> lowercase)
    {
        int length = lowercase.Length;
        if (name.Length != length)
        {
            return false;
        }

        ref byte n = ref MemoryMarshal.GetReference(name);
        ref byte l = ref MemoryMarshal.GetReference(lowercase);
        if (length >= 8)
        {
            int offset = 0;
            for (; offset + 8 <= length; offset += 8)
            {
                if (!Matches8(ref n, ref l, offset)) return false;
            }

            // Overlapping last load covers the tail without a byte loop.
            return offset == length || Matches8(ref n, ref l, length - 8);
        }

        if (length >= 4)
        {
            return Matches4(ref n, ref l, 0) && Matches4(ref n, ref l, length - 4);
        }

        for (int i = 0; i < length; i++)
        {
            byte expected = Unsafe.Add(ref l, i);
            if ((byte)(Unsafe.Add(ref n, i) | ((expected & 0x40) >> 1)) != expected) return false;
        }

        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Matches8(ref byte name, ref byte lowercase, int offset)
    {
        ulong actual = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref name, offset));
        ulong expected = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref lowercase, offset));
        return (actual | ((expected & 0x4040404040404040UL) >> 1)) == expected;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Matches4(ref byte name, ref byte lowercase, int offset)
    {
        uint actual = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref name, offset));
        uint expected = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref lowercase, offset));
        return (actual | ((expected & 0x40404040U) >> 1)) == expected;
    }
}

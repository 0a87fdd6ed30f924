using System.Net;
using Appliance.Protocol.Headers;
using Appliance.Server;

namespace Appliance.Proxy;

/// <summary>What a consistent-hash cluster hashes: a request header, a cookie, or the client address.</summary>
public sealed record HashKey(HashKey.Source From, byte[] Name)
{
    public enum Source
    {
        ClientIp,
        Header,
        Cookie,
    }

    public static HashKey ClientIp { get; } = new(Source.ClientIp, []);

    /// <summary>"clientIp", "header:X-User", "cookie:session".</summary>
    public static HashKey? Parse(string? text) => text switch
    {
        null or "clientIp" => ClientIp,
        _ when text.StartsWith("header:", StringComparison.Ordinal) && text.Length > 7 => new(Source.Header, System.Text.Encoding.ASCII.GetBytes(text[7..])),
        _ when text.StartsWith("cookie:", StringComparison.Ordinal) && text.Length > 7 => new(Source.Cookie, System.Text.Encoding.ASCII.GetBytes(text[7..])),
        _ => null,
    };

    /// <summary>FNV-1a 64 of the key (stable across processes, so every appliance maps a key the same way).</summary>
    public ulong Hash(RequestContext c)
    {
        switch (From)
        {
            case Source.Header when c.RequestHeaders.TryGetValue(Name, out ReadOnlySpan<byte> value):
                return Fnv(value);
            case Source.Cookie when c.RequestHeaders.TryGetValue(KnownHeader.Cookie, out ReadOnlySpan<byte> cookies):
                return Fnv(CookieValue(cookies, Name));
        }

        Span<byte> address = stackalloc byte[16];
        return c.Connection.RemoteEndPoint is IPEndPoint ip && ip.Address.TryWriteBytes(address, out int n) ? Fnv(address[..n]) : 0;
    }

    private static ReadOnlySpan<byte> CookieValue(ReadOnlySpan<byte> cookies, ReadOnlySpan<byte> name)
    {
        while (!cookies.IsEmpty)
        {
            int semi = cookies.IndexOf((byte)';');
            ReadOnlySpan<byte> pair = (semi < 0 ? cookies : cookies[..semi]).Trim(" "u8);
            cookies = semi < 0 ? default : cookies[(semi + 1)..];
            int eq = pair.IndexOf((byte)'=');
            if (eq > 0 && pair[..eq].SequenceEqual(name))
            {
                return pair[(eq + 1)..];
            }
        }

        return default;
    }

    public static ulong Fnv(ReadOnlySpan<byte> data)
    {
        ulong hash = 14695981039346656037;
        foreach (byte b in data)
        {
            hash = (hash ^ b) * 1099511628211;
        }

        // final avalanche so nearby keys spread over the ring
        hash ^= hash >> 33;
        hash *= 0xff51afd7ed558ccd;
        hash ^= hash >> 33;
        return hash;
    }
}

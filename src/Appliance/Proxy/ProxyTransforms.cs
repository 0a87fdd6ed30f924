using System.Buffers;
using System.Net;
using System.Text;

namespace Appliance.Proxy;

/// <summary>How a proxied request announces the client to the upstream (X-Forwarded-* and RFC 7239 Forwarded).</summary>
public enum ForwardedMode
{
    /// <summary>Replace client-sent copies with what this hop saw (default: clients are not trusted).</summary>
    Set,
    /// <summary>Append this hop to copies sent by a trusted proxy (server.trustedProxies); replace otherwise.</summary>
    Append,
    /// <summary>Add nothing; client-sent copies pass through untouched.</summary>
    Off,
}

/// <summary>
/// What a route changes on the way to and from the upstream, compiled once: path prefix strip/add, request and
/// response header set/add/remove, and the forwarding headers. Names and values are bytes, ready to write.
/// </summary>
public sealed class ProxyTransforms
{
    public static ProxyTransforms Default { get; } = new();

    public byte[] StripPrefix { get; init; } = [];
    public byte[] AddPrefix { get; init; } = [];
    public (byte[] Name, byte[] Value)[] RequestSet { get; init; } = [];
    public (byte[] Name, byte[] Value)[] RequestAdd { get; init; } = [];
    public byte[][] RequestRemove { get; init; } = [];
    public (byte[] Name, byte[] Value)[] ResponseSet { get; init; } = [];
    public (byte[] Name, byte[] Value)[] ResponseAdd { get; init; } = [];
    public byte[][] ResponseRemove { get; init; } = [];
    public ForwardedMode XForwarded { get; init; } = ForwardedMode.Set;
    /// <summary>Also send RFC 7239 Forwarded (for, proto, host).</summary>
    public bool Forwarded { get; init; }
    public IReadOnlyList<IPNetwork> TrustedProxies { get; init; } = [];

    /// <summary>
    /// Where the verified client certificate (mutual TLS) is passed to the upstream, Envoy XFCC style:
    /// <c>Hash=&lt;sha256&gt;;Subject="…";DNS=a,b</c>. A copy sent by the client is always removed.
    /// </summary>
    public byte[]? ClientCertificateHeader { get; init; }

    /// <summary>
    /// Where the consumer the route's apiKey policy accepted is passed to the upstream (its id, as Kong's
    /// X-Consumer-ID). A copy sent by the client is always removed, so the upstream can trust it.
    /// </summary>
    public byte[]? ConsumerHeader { get; init; }

    /// <summary>
    /// Where the "sub" of the token the route's jwt policy accepted is passed to the upstream (Envoy's
    /// claim_to_headers for sub). A copy sent by the client is always removed.
    /// </summary>
    public byte[]? SubjectHeader { get; init; }

    /// <summary>Fields this route sets or removes on the request: the originals are not forwarded.</summary>
    public bool DropsRequestField(ReadOnlySpan<byte> name)
    {
        foreach (byte[] n in RequestRemove)
        {
            if (Ascii.EqualsIgnoreCase(n, name)) return true;
        }

        foreach ((byte[] n, _) in RequestSet)
        {
            if (Ascii.EqualsIgnoreCase(n, name)) return true;
        }

        return (ClientCertificateHeader is { } cert && Ascii.EqualsIgnoreCase(cert, name))
            || (ConsumerHeader is { } consumer && Ascii.EqualsIgnoreCase(consumer, name))
            || (SubjectHeader is { } subject && Ascii.EqualsIgnoreCase(subject, name));
    }

    /// <summary>Whether the client (its address as <see cref="Server.ConnectionInfo.ClientAddress"/> gives it) is one of the trusted proxies.</summary>
    public bool IsTrusted(IPAddress? address)
    {
        if (TrustedProxies.Count == 0 || address is null)
        {
            return false;
        }

        foreach (IPNetwork network in TrustedProxies)
        {
            if (network.Contains(address)) return true;
        }

        return false;
    }

    /// <summary>
    /// Writes the upstream target for an origin-form path: the strip prefix removed on a segment boundary, the add
    /// prefix put in front. Returns false when the route has no path transform.
    /// </summary>
    public bool TryRewriteTarget(ReadOnlySpan<byte> rawTarget, System.Buffers.IBufferWriter<byte> output)
    {
        if (StripPrefix.Length == 0 && AddPrefix.Length == 0)
        {
            return false;
        }

        ReadOnlySpan<byte> rest = rawTarget;
        if (StripPrefix.Length > 0 && rest.StartsWith(StripPrefix)
            && (rest.Length == StripPrefix.Length || rest[StripPrefix.Length] is (byte)'/' or (byte)'?'))
        {
            rest = rest[StripPrefix.Length..];
        }

        ReadOnlySpan<byte> add = AddPrefix;
        if (add.Length > 0 && add[^1] == (byte)'/' && !rest.IsEmpty && rest[0] == (byte)'/')
        {
            add = add[..^1];
        }

        output.Write(add);
        if (rest.IsEmpty || rest[0] == (byte)'?')
        {
            if (add.IsEmpty || add[^1] != (byte)'/') output.Write("/"u8);
        }

        output.Write(rest);
        return true;
    }
}

using System.Net.Security;

namespace Appliance.Tls;

/// <summary>Settings shared by every certificate a listener serves.</summary>
public sealed record TlsServerOptions
{
    /// <summary>ALPN protocols in server preference order; empty turns ALPN off.</summary>
    public IReadOnlyList<SslApplicationProtocol> ApplicationProtocols { get; init; } =
        [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11];

    /// <summary>
    /// When true, a handshake without SNI or with a name no certificate covers is refused
    /// instead of getting the default certificate (nginx's ssl_reject_handshake).
    /// </summary>
    public bool RequireSni { get; init; }
}

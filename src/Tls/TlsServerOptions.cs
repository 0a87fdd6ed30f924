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

    /// <summary>Whether clients are asked for a certificate (mutual TLS).</summary>
    public ClientCertificateMode ClientCertificates { get; init; }

    /// <summary>CRLs every client certificate's chain is checked against (fail closed); null for no revocation check.</summary>
    public RevocationList? ClientRevocationList { get; init; }

    /// <summary>The CAs a client certificate must chain to (required unless client certificates are off).</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2Collection? ClientCertificateAuthorities { get; init; }

    /// <summary>
    /// CAs that the application checks some client certificates against later, itself (a gateway's routes and
    /// tenants): a certificate chaining to one of them completes the handshake too, and what it may reach is decided
    /// then. Null or empty: <see cref="ClientCertificateAuthorities"/> alone.
    /// </summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2Collection? AdditionalClientCertificateAuthorities { get; init; }
}

/// <summary>Mutual TLS on a listener (asked for in the handshake), or on a route (checked per request).</summary>
public enum ClientCertificateMode
{
    /// <summary>No certificate is asked for.</summary>
    Off,

    /// <summary>Asked for; a client without one is served, one with an untrusted one is refused.</summary>
    Optional,

    /// <summary>A trusted client certificate is needed to complete the handshake.</summary>
    Required,
}

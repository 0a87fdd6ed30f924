using System.Net;
using System.Net.Security;
using Appliance.Server;
using Appliance.Tls;

namespace Appliance.Config;

/// <summary>A listener compiled from config: parsed address, ALPN list, limits.</summary>
public sealed record ListenerModel
{
    public required string Name { get; init; }
    public required IPEndPoint EndPoint { get; init; }
    public bool Tls { get; init; }
    public required IReadOnlyList<SslApplicationProtocol> Protocols { get; init; }
    public bool RedirectToHttps { get; init; }
    public int HttpsPort { get; init; } = 443;
    public string? DefaultCertificate { get; init; }
    public bool RequireSni { get; init; }
    public Tls.ClientCertificateMode ClientCertificates { get; init; }
    public System.Security.Cryptography.X509Certificates.X509Certificate2Collection? ClientCertificateAuthorities { get; init; }
    /// <summary>CAs of routes and tenants that check client certificates themselves, accepted in this listener's handshake too.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2Collection? AdditionalClientCertificateAuthorities { get; init; }
    /// <summary>clientCertificates.crlFile, read and verified; null when unset.</summary>
    public Tls.RevocationList? ClientRevocationList { get; init; }
    public int Backlog { get; init; } = 511;
    public bool ReusePort { get; init; }
    public int MaxConnections { get; init; } = 100_000;
    public required ServerLimits Limits { get; init; }
    /// <summary>SNI map and prebuilt TLS options of a TLS listener; null for plain ones.</summary>
    public CertificateStore? Certificates { get; init; }

    /// <summary>Whether a running socket can be kept when the config changes to <paramref name="other"/>.</summary>
    public bool SameSocket(ListenerModel other) =>
        EndPoint.Equals(other.EndPoint) && Backlog == other.Backlog && ReusePort == other.ReusePort;
}

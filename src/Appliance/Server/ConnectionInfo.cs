using System.Net;
using System.Security.Authentication;

namespace Appliance.Server;

/// <summary>What is known about the connection a request arrived on. One per connection.</summary>
public sealed class ConnectionInfo
{
    public required long Id { get; init; }
    public required string ListenerName { get; init; }
    public required EndPoint? RemoteEndPoint { get; init; }
    public required EndPoint? LocalEndPoint { get; init; }
    public bool IsTls { get; set; }
    public string? ServerName { get; set; }
    public SslProtocols TlsProtocol { get; set; }
    public string? ApplicationProtocol { get; set; }

    /// <summary>Whether the TLS handshake resumed a session (ID, ticket or PSK); null on plain connections or when unknown.</summary>
    public bool? TlsResumed { get; set; }

    /// <summary>The client's certificate on a mutual-TLS listener, verified against the listener's CAs; null without one.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? ClientCertificate { get; set; }

    /// <summary>Unix-socket peers: who connected (SO_PEERCRED).</summary>
    public Transport.PeerCredentials? Peer { get; set; }
}

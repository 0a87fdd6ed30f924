using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Appliance.Tls;

namespace Appliance.Server;

/// <summary>What is known about the connection a request arrived on. One per connection.</summary>
public sealed class ConnectionInfo
{
    private ClientIdentity? _clientIdentity;
    private TlsServerOptions? _clientTrust;
    private (X509Certificate2Collection? Authorities, string? Refusal)[] _clientChecks = [];
    private IPAddress? _clientAddress;
    private byte[]? _clientAddressText;

    public required long Id { get; init; }
    public required string ListenerName { get; init; }
    public required EndPoint? RemoteEndPoint { get; init; }
    public required EndPoint? LocalEndPoint { get; init; }
    public bool IsTls { get; set; }
    public string? ServerName { get; set; }
    public SslProtocols TlsProtocol { get; set; }
    public string? ApplicationProtocol { get; set; }

    /// <summary>The negotiated cipher suite on TLS connections.</summary>
    public System.Net.Security.TlsCipherSuite CipherSuite { get; set; }

    /// <summary>Whether the TLS handshake resumed a session (ID, ticket or PSK); null on plain connections or when unknown.</summary>
    public bool? TlsResumed { get; set; }

    /// <summary>
    /// The client's IP address, a dual-stack socket's IPv4 client as plain IPv4; null on a Unix socket. Made once
    /// per connection on first use, so requests that look at it allocate nothing.
    /// </summary>
    public IPAddress? ClientAddress =>
        _clientAddress ??= RemoteEndPoint is IPEndPoint ip ? (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address) : null; // benign race: same value

    /// <summary>
    /// <see cref="ClientAddress"/> as text (nginx keeps it on the connection too, as <c>$remote_addr</c>); empty on a
    /// Unix socket. Made once per connection on first use.
    /// </summary>
    public ReadOnlySpan<byte> ClientAddressText => _clientAddressText ??= FormatClientAddress(ClientAddress); // benign race: same value

    private static byte[] FormatClientAddress(IPAddress? address)
    {
        Span<byte> text = stackalloc byte[64]; // the longest IPv6 text with a scope is 46 characters plus the scope
        return address is not null && address.TryFormat(text, out int written) ? text[..written].ToArray() : [];
    }

    /// <summary>
    /// The client's certificate on a mutual-TLS listener, accepted in the handshake (the listener's CAs or one its
    /// routes and tenants check against); null without one. What a request may do with it is
    /// <see cref="IsClientCertificateTrusted"/>'s answer for the CAs that apply.
    /// </summary>
    public X509Certificate2? ClientCertificate { get; private set; }

    /// <summary>Who <see cref="ClientCertificate"/> names, read once per connection on first use; null without a certificate.</summary>
    public ClientIdentity? ClientIdentity =>
        ClientCertificate is not { } certificate ? null : _clientIdentity ??= ClientIdentity.From(certificate); // benign race: same value

    /// <summary>
    /// Records the certificate the handshake accepted under <paramref name="listener"/>'s settings. When the listener
    /// trusts no CAs but its own, the handshake has already checked them, and that answer is kept.
    /// </summary>
    public void SetClientCertificate(X509Certificate2 certificate, TlsServerOptions listener)
    {
        ClientCertificate = certificate;
        _clientTrust = listener;
        if (listener.AdditionalClientCertificateAuthorities is not { Count: > 0 })
        {
            _clientChecks = [(listener.ClientCertificateAuthorities, null)];
        }
    }

    /// <summary>
    /// Whether <see cref="ClientCertificate"/> chains to <paramref name="authorities"/> (null: the listener's own CAs),
    /// for client authentication, and passes the listener's CRLs. Checked once per connection and CA set (a reused
    /// collection is the same set), then answered from memory; false with the reason otherwise.
    /// </summary>
    public bool IsClientCertificateTrusted(X509Certificate2Collection? authorities, out string? refusal)
    {
        if (ClientCertificate is not { } certificate || _clientTrust is not { } listener)
        {
            refusal = "no client certificate";
            return false;
        }

        authorities ??= listener.ClientCertificateAuthorities;
        (X509Certificate2Collection? Authorities, string? Refusal)[] checks = Volatile.Read(ref _clientChecks);
        foreach ((X509Certificate2Collection? known, string? knownRefusal) in checks)
        {
            if (ReferenceEquals(known, authorities))
            {
                refusal = knownRefusal;
                return refusal is null;
            }
        }

        // HTTP/2 streams may race to the same check: both compute the same answer, one array wins, nothing is lost
        // but the work.
        refusal = ClientCertificateVerifier.Verify(certificate, authorities, listener.ClientRevocationList, DateTimeOffset.UtcNow);
        Volatile.Write(ref _clientChecks, [.. checks, (authorities, refusal)]);
        return refusal is null;
    }

    /// <summary>Unix-socket peers: who connected (SO_PEERCRED).</summary>
    public Transport.PeerCredentials? Peer { get; set; }
}

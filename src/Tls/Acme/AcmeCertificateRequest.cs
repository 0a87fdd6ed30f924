using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tls.Acme;

/// <summary>How the server checks control of a name: RFC 8555 §8.3 or RFC 8737.</summary>
public enum AcmeChallengeType
{
    /// <summary>http-01: GET http://NAME/.well-known/acme-challenge/TOKEN on port 80.</summary>
    Http01,

    /// <summary>tls-alpn-01: a TLS handshake to NAME:443 offering ALPN "acme-tls/1".</summary>
    TlsAlpn01,
}

/// <summary>What to ask an ACME server for: a certificate covering <paramref name="Names"/>.</summary>
/// <param name="Name">The configured certificate's name, for log lines.</param>
/// <param name="Names">DNS names, the certificate's SANs; no wildcards (neither challenge type can prove them).</param>
/// <param name="Directory">The server's directory URL.</param>
/// <param name="Email">Contact for the account (RFC 8555 §7.3), or null.</param>
/// <param name="TrustAnchors">CAs trusted for the server's own HTTPS, or null for the system store.</param>
public sealed record AcmeCertificateRequest(
    string Name,
    IReadOnlyList<string> Names,
    Uri Directory,
    string? Email,
    AcmeChallengeType Challenge,
    X509Certificate2Collection? TrustAnchors);

/// <summary>A certificate an ACME server issued, with the key made for it. <see cref="ToString"/> leaves the key out.</summary>
public sealed class IssuedCertificate(string certificatePem, string keyPem, string serialNumber, string issuer, DateTimeOffset notBefore, DateTimeOffset notAfter)
{
    /// <summary>The leaf, then the chain the server sent.</summary>
    public string CertificatePem { get; } = certificatePem;

    /// <summary>PKCS#8 PEM of the certificate's private key: goes to a 0600 file, never to a log.</summary>
    public string KeyPem { get; } = keyPem;

    public string SerialNumber { get; } = serialNumber;

    public string Issuer { get; } = issuer;

    public DateTimeOffset NotBefore { get; } = notBefore;

    public DateTimeOffset NotAfter { get; } = notAfter;

    public override string ToString() => $"certificate serial {SerialNumber} from {Issuer}, valid {NotBefore:u} to {NotAfter:u}";
}

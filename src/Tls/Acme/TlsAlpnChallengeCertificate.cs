using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tls.Acme;

/// <summary>
/// RFC 8737 §3: the certificate a TLS server presents to answer a TLS-ALPN-01 challenge: self-signed, exactly one
/// dNSName (the identifier being validated), and the critical acmeIdentifier extension
/// (id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31) whose value is the DER OCTET STRING of SHA-256(key authorization).
/// It is served only to handshakes that offer ALPN "acme-tls/1" for that name.
/// </summary>
public static class TlsAlpnChallengeCertificate
{
    public const string AcmeIdentifierOid = "1.3.6.1.5.5.7.1.31";

    public static X509Certificate2 Create(string name, string keyAuthorization)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentException.ThrowIfNullOrEmpty(keyAuthorization);
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = new X500DistinguishedNameBuilder();
        subject.AddCommonName(name.Length <= 64 ? name : "acme-tls-alpn-01"); // RFC 5280: CN is at most 64 characters
        var request = new CertificateRequest(subject.Build(), key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(name);
        request.CertificateExtensions.Add(san.Build());

        // Authorization ::= OCTET STRING (SIZE (32)); the extension's extnValue wraps that DER once more.
        var writer = new AsnWriter(AsnEncodingRules.DER);
        writer.WriteOctetString(KeyAuthorization.TlsAlpnDigest(keyAuthorization));
        request.CertificateExtensions.Add(new X509Extension(AcmeIdentifierOid, writer.Encode(), critical: true));

        DateTimeOffset now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(7)); // carries its private key
    }
}

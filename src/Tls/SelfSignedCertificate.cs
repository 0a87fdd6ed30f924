using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Appliance.Tls;

/// <summary>
/// Makes certificates for first start-up (a self-signed pair on disk until a real one is
/// configured) and for tests (in memory, optionally RSA, optionally signed by a test CA).
/// </summary>
public static class SelfSignedCertificate
{
    private const string ServerAuthenticationOid = "1.3.6.1.5.5.7.3.1";

    /// <summary>
    /// Writes an ECDSA P-256 self-signed server certificate and its PKCS#8 key as PEM.
    /// The key file gets mode 0600; both files are replaced atomically (temp file + rename).
    /// </summary>
    public static void WritePem(string certPath, string keyPath, IReadOnlyList<string> dnsNames, TimeSpan validity)
    {
        ArgumentException.ThrowIfNullOrEmpty(certPath);
        ArgumentException.ThrowIfNullOrEmpty(keyPath);

        using X509Certificate2 certificate = Create(dnsNames, validity);
        using ECDsa key = certificate.GetECDsaPrivateKey()!;

        // Key first: a crash in between leaves an old certificate with a new key, which the
        // loader reports as a mismatch, rather than a certificate nobody holds the key for.
        PemFileWriter.Write(keyPath, key.ExportPkcs8PrivateKeyPem(), PemFileWriter.PrivateKeyMode);
        PemFileWriter.Write(certPath, certificate.ExportCertificatePem(), PemFileWriter.CertificateMode);
    }

    /// <summary>
    /// Creates a certificate with its private key, in memory.
    /// </summary>
    /// <param name="dnsNames">SAN DNS names; "localhost" also adds IP 127.0.0.1 and ::1.</param>
    /// <param name="validity">Lifetime from <paramref name="notBefore"/>.</param>
    /// <param name="rsa">RSA 2048 instead of ECDSA P-256.</param>
    /// <param name="issuer">Signs with this certificate (which must have its key) instead of self-signing.</param>
    /// <param name="certificateAuthority">Makes a CA (basic constraints CA=true, keyCertSign) instead of a server certificate.</param>
    /// <param name="commonName">Subject CN; defaults to the first DNS name.</param>
    /// <param name="notBefore">Start of validity; defaults to an hour ago to absorb clock skew.</param>
    public static X509Certificate2 Create(
        IReadOnlyList<string> dnsNames,
        TimeSpan validity,
        bool rsa = false,
        X509Certificate2? issuer = null,
        bool certificateAuthority = false,
        string? commonName = null,
        DateTimeOffset? notBefore = null)
    {
        ArgumentNullException.ThrowIfNull(dnsNames);
        if (validity <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(validity), validity, "validity must be positive");
        }

        commonName ??= dnsNames.Count > 0 ? dnsNames[0] : null;
        if (commonName is null)
        {
            throw new ArgumentException("a certificate needs a DNS name or a common name", nameof(dnsNames));
        }

        using AsymmetricAlgorithm key = rsa ? RSA.Create(2048) : ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = new X500DistinguishedNameBuilder();
        subject.AddCommonName(commonName);
        CertificateRequest request = key is RSA rsaKey
            ? new CertificateRequest(subject.Build(), rsaKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            : new CertificateRequest(subject.Build(), (ECDsa)key, HashAlgorithmName.SHA256);

        if (certificateAuthority)
        {
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(
                X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        }
        else
        {
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            // keyEncipherment only matters for RSA key exchange, which TLS 1.2 clients may still pick.
            request.CertificateExtensions.Add(new X509KeyUsageExtension(
                rsa ? X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment : X509KeyUsageFlags.DigitalSignature, true));
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ServerAuthenticationOid)], false));
        }

        if (dnsNames.Count > 0)
        {
            var san = new SubjectAlternativeNameBuilder();
            foreach (string name in dnsNames)
            {
                san.AddDnsName(name);
            }

            if (dnsNames.Contains("localhost", StringComparer.OrdinalIgnoreCase))
            {
                san.AddIpAddress(IPAddress.Loopback);
                san.AddIpAddress(IPAddress.IPv6Loopback);
            }

            request.CertificateExtensions.Add(san.Build());
        }

        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));

        DateTimeOffset start = notBefore ?? DateTimeOffset.UtcNow.AddHours(-1);
        DateTimeOffset end = start + validity;
        if (issuer is null)
        {
            return request.CreateSelfSigned(start, end);
        }

        // An issued certificate cannot outlive its issuer (CertificateRequest.Create enforces it).
        DateTimeOffset issuerEnd = new(issuer.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        if (end > issuerEnd)
        {
            end = issuerEnd;
        }

        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F; // RFC 5280 §4.1.2.2: positive

        // A signature generator for the issuer's own key type, so an ECDSA CA can sign an RSA leaf.
        using ECDsa? issuerEcdsa = issuer.GetECDsaPrivateKey();
        using RSA? issuerRsa = issuerEcdsa is null ? issuer.GetRSAPrivateKey() : null;
        X509SignatureGenerator generator = issuerEcdsa is not null
            ? X509SignatureGenerator.CreateForECDsa(issuerEcdsa)
            : X509SignatureGenerator.CreateForRSA(
                issuerRsa ?? throw new ArgumentException("the issuer certificate has no ECDSA or RSA private key", nameof(issuer)),
                RSASignaturePadding.Pkcs1);
        using X509Certificate2 issued = request.Create(issuer.SubjectName, generator, start, end, serial);
        return key is RSA rsaPrivate ? issued.CopyWithPrivateKey(rsaPrivate) : issued.CopyWithPrivateKey((ECDsa)key);
    }
}

using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tls;

/// <summary>
/// A certificate ready to serve: the leaf with its private key, the intermediates, and a
/// prebuilt <see cref="SslStreamCertificateContext"/> so no handshake builds a chain.
/// Created by <see cref="PemCertificateLoader"/>, which validates before constructing.
/// </summary>
public sealed class LoadedCertificate
{
    internal const string EcPublicKeyOid = "1.2.840.10045.2.1";
    internal const string RsaPublicKeyOid = "1.2.840.113549.1.1.1";
    private const string SubjectAlternativeNameOid = "2.5.29.17";
    private const string CommonNameOid = "2.5.4.3";

    internal LoadedCertificate(
        string name,
        IReadOnlyList<string> hosts,
        X509Certificate2 leaf,
        X509Certificate2Collection chain,
        bool offline)
    {
        Name = name;
        Hosts = [.. hosts];
        Leaf = leaf;
        Chain = chain;
        NotBefore = new DateTimeOffset(leaf.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        NotAfter = new DateTimeOffset(leaf.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        KeyAlgorithm = DescribeKeyAlgorithm(leaf);
        Thumbprint = leaf.GetCertHashString(HashAlgorithmName.SHA256);
        SubjectAlternativeNames = ReadDnsNames(leaf);
        // Online (certificates from files): when the leaf names an OCSP responder, the context fetches a response
        // in the background and staples it (refreshed before it expires; the first handshakes after a load go out
        // without one). Offline for certificates made here (self-signed: no responder, nothing to fetch).
        Context = SslStreamCertificateContext.Create(leaf, chain, offline);
    }

    public string Name { get; }

    /// <summary>Host names (exact or *.wildcard) this certificate is configured to serve.</summary>
    public IReadOnlyList<string> Hosts { get; }

    /// <summary>The leaf certificate, with its private key.</summary>
    public X509Certificate2 Leaf { get; }

    /// <summary>Intermediates sent after the leaf, in file order.</summary>
    public X509Certificate2Collection Chain { get; }

    public SslStreamCertificateContext Context { get; }

    public DateTimeOffset NotBefore { get; }

    public DateTimeOffset NotAfter { get; }

    /// <summary>"ECDSA P-256", "RSA 2048", ...</summary>
    public string KeyAlgorithm { get; }

    /// <summary>SHA-256 of the DER certificate, upper-case hex.</summary>
    public string Thumbprint { get; }

    /// <summary>DNS names from the SAN extension; the subject CN only when there is no SAN.</summary>
    public IReadOnlyList<string> SubjectAlternativeNames { get; }

    public override string ToString() => $"certificate '{Name}'";

    internal static string DescribeKeyAlgorithm(X509Certificate2 certificate)
    {
        switch (certificate.GetKeyAlgorithm())
        {
            case EcPublicKeyOid:
                using (ECDsa? ecdsa = certificate.GetECDsaPublicKey())
                {
                    string? curve = ecdsa?.ExportParameters(false).Curve.Oid?.Value;
                    return curve switch
                    {
                        "1.2.840.10045.3.1.7" => "ECDSA P-256",
                        "1.3.132.0.34" => "ECDSA P-384",
                        "1.3.132.0.35" => "ECDSA P-521",
                        _ => $"ECDSA curve {curve ?? "unknown"}",
                    };
                }
            case RsaPublicKeyOid:
                using (RSA? rsa = certificate.GetRSAPublicKey())
                {
                    return $"RSA {rsa?.KeySize ?? 0}";
                }
            default:
                string oid = certificate.GetKeyAlgorithm();
                string? friendly = new Oid(oid).FriendlyName;
                return friendly is null ? oid : $"{friendly} ({oid})";
        }
    }

    private static string[] ReadDnsNames(X509Certificate2 certificate)
    {
        foreach (X509Extension extension in certificate.Extensions)
        {
            if (extension.Oid?.Value != SubjectAlternativeNameOid)
            {
                continue;
            }

            var san = extension as X509SubjectAlternativeNameExtension
                ?? new X509SubjectAlternativeNameExtension(extension.RawData, extension.Critical);
            return [.. san.EnumerateDnsNames()];
        }

        // RFC 6125 §6.4.4: the CN is a fallback only when there is no SAN at all; the first
        // one in display order is the most specific.
        foreach (X500RelativeDistinguishedName rdn in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (!rdn.HasMultipleElements && rdn.GetSingleElementType().Value == CommonNameOid
                && rdn.GetSingleElementValue() is { Length: > 0 } cn)
            {
                return [cn];
            }
        }

        return [];
    }
}

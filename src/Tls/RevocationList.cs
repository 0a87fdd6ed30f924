using System.Formats.Asn1;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Appliance.Tls;

/// <summary>
/// Certificate revocation lists (RFC 5280 §5) from a local file, for client certificates, as nginx's ssl_crl: the
/// file is read at load (PEM "X509 CRL" blocks or one DER CRL), every CRL's signature is checked against the CA that
/// issued it (which must be among the trusted CAs), and a handshake then consults memory only (no network on the
/// handshake path). Every CA that issues a certificate in a client's chain must have a CRL here, and it must not be
/// past its nextUpdate; otherwise the certificate is refused (fail closed, like OpenSSL's CRL checking).
/// </summary>
public sealed class RevocationList
{
    private const int MaxFileBytes = 64 * 1024 * 1024;
    private readonly Dictionary<string, Crl> _byIssuer; // issuer DN (DER, hex) → its CRL

    private RevocationList(Dictionary<string, Crl> byIssuer, string fingerprint)
    {
        _byIssuer = byIssuer;
        Fingerprint = fingerprint;
    }

    /// <summary>SHA-256 of the file as read: a reload with the same bytes changes nothing.</summary>
    public string Fingerprint { get; }

    /// <summary>How many serials the lists revoke, all issuers together.</summary>
    public int RevokedCount => _byIssuer.Values.Sum(c => c.Revoked.Count);

    private sealed record Crl(string Issuer, HashSet<BigInteger> Revoked, DateTimeOffset? NextUpdate);

    /// <summary>Reads and verifies the CRLs in <paramref name="bytes"/>; <see cref="FormatException"/> says what is wrong.</summary>
    public static RevocationList Load(ReadOnlySpan<byte> bytes, X509Certificate2Collection authorities)
    {
        if (bytes.Length == 0 || bytes.Length > MaxFileBytes)
        {
            throw new FormatException($"a CRL file is 1 byte to {MaxFileBytes / (1024 * 1024)} MiB");
        }

        var ders = new List<byte[]>();
        string text = Encoding.ASCII.GetString(bytes);
        if (text.Contains("-----BEGIN", StringComparison.Ordinal))
        {
            ReadOnlySpan<char> rest = text;
            while (PemEncoding.TryFind(rest, out PemFields fields))
            {
                if (rest[fields.Label].SequenceEqual("X509 CRL"))
                {
                    ders.Add(Convert.FromBase64String(rest[fields.Base64Data].ToString()));
                }

                rest = rest[fields.Location.End..];
            }

            if (ders.Count == 0)
            {
                throw new FormatException("no \"X509 CRL\" PEM block in the file");
            }
        }
        else
        {
            ders.Add(bytes.ToArray());
        }

        var byIssuer = new Dictionary<string, Crl>(StringComparer.Ordinal);
        foreach (byte[] der in ders)
        {
            Crl crl = Parse(der, authorities);
            if (!byIssuer.TryAdd(crl.Issuer, crl))
            {
                throw new FormatException("two CRLs from the same issuer");
            }
        }

        return new RevocationList(byIssuer, Convert.ToHexString(SHA256.HashData(bytes)));
    }

    /// <summary>Null when every issuing CA in <paramref name="chain"/> has a current CRL that does not list the certificate.</summary>
    public string? Check(X509Chain chain, DateTimeOffset now)
    {
        X509ChainElementCollection elements = chain.ChainElements;
        for (int i = 0; i + 1 < elements.Count; i++)
        {
            X509Certificate2 certificate = elements[i].Certificate;
            X509Certificate2 issuer = elements[i + 1].Certificate;
            if (!_byIssuer.TryGetValue(Convert.ToHexString(issuer.SubjectName.RawData), out Crl? crl))
            {
                return $"no CRL for issuer '{issuer.Subject}'";
            }

            if (crl.NextUpdate is { } next && next < now)
            {
                return $"the CRL of '{issuer.Subject}' expired at {next:yyyy-MM-dd HH:mm} UTC";
            }

            if (crl.Revoked.Contains(new BigInteger(certificate.SerialNumberBytes.Span, isUnsigned: true, isBigEndian: true)))
            {
                return $"certificate '{certificate.Subject}' is revoked (CRL of '{issuer.Subject}')";
            }
        }

        return null;
    }

    private static Crl Parse(byte[] der, X509Certificate2Collection authorities)
    {
        try
        {
            // CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING }
            AsnReader list = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
            ReadOnlyMemory<byte> tbsBytes = list.PeekEncodedValue();
            AsnReader tbs = list.ReadSequence();
            string algorithm = list.ReadSequence().ReadObjectIdentifier();
            byte[] signature = list.ReadBitString(out _);

            if (tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Integer))
            {
                tbs.ReadInteger(); // version v2
            }

            tbs.ReadSequence(); // signature (repeated inside)
            ReadOnlyMemory<byte> issuerName = tbs.ReadEncodedValue();
            string issuerKey = Convert.ToHexString(issuerName.Span);
            ReadTime(tbs); // thisUpdate
            DateTimeOffset? nextUpdate = tbs.HasData && (tbs.PeekTag().HasSameClassAndValue(Asn1Tag.UtcTime) || tbs.PeekTag().HasSameClassAndValue(Asn1Tag.GeneralizedTime))
                ? ReadTime(tbs)
                : null;
            var revoked = new HashSet<BigInteger>();
            if (tbs.HasData && tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Sequence))
            {
                AsnReader entries = tbs.ReadSequence();
                while (entries.HasData)
                {
                    AsnReader entry = entries.ReadSequence();
                    revoked.Add(entry.ReadInteger());
                }
            }

            X509Certificate2 issuer = authorities.FirstOrDefault(a => Convert.ToHexString(a.SubjectName.RawData) == issuerKey)
                ?? throw new FormatException($"the CRL's issuer '{new X500DistinguishedName(issuerName.Span).Name}' is not among the trusted CAs");
            if (!Verify(issuer, algorithm, tbsBytes.Span, signature))
            {
                throw new FormatException($"the CRL of '{issuer.Subject}' is not signed by that CA");
            }

            return new Crl(issuerKey, revoked, nextUpdate);
        }
        catch (AsnContentException e)
        {
            throw new FormatException("not a DER CRL: " + e.Message, e);
        }
        catch (CryptographicException e)
        {
            throw new FormatException("the CRL cannot be checked: " + e.Message, e);
        }
    }

    private static DateTimeOffset ReadTime(AsnReader reader) =>
        reader.PeekTag().HasSameClassAndValue(Asn1Tag.UtcTime) ? reader.ReadUtcTime() : reader.ReadGeneralizedTime();

    private static bool Verify(X509Certificate2 issuer, string algorithm, ReadOnlySpan<byte> tbs, byte[] signature)
    {
        (HashAlgorithmName hash, bool ecdsa) = algorithm switch
        {
            "1.2.840.10045.4.3.2" => (HashAlgorithmName.SHA256, true),
            "1.2.840.10045.4.3.3" => (HashAlgorithmName.SHA384, true),
            "1.2.840.10045.4.3.4" => (HashAlgorithmName.SHA512, true),
            "1.2.840.113549.1.1.11" => (HashAlgorithmName.SHA256, false),
            "1.2.840.113549.1.1.12" => (HashAlgorithmName.SHA384, false),
            "1.2.840.113549.1.1.13" => (HashAlgorithmName.SHA512, false),
            _ => throw new FormatException($"unsupported CRL signature algorithm {algorithm}"),
        };
        if (ecdsa)
        {
            using ECDsa? key = issuer.GetECDsaPublicKey();
            return key is not null && key.VerifyData(tbs, signature, hash, DSASignatureFormat.Rfc3279DerSequence);
        }

        using RSA? rsa = issuer.GetRSAPublicKey();
        return rsa is not null && rsa.VerifyData(tbs, signature, hash, RSASignaturePadding.Pkcs1);
    }
}

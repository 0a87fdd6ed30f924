using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Server;

/// <summary>
/// Who a verified client certificate names, for the policy chain and the transforms: read once per connection from
/// the certificate (<see cref="ConnectionInfo.ClientIdentity"/>), immutable after.
/// </summary>
public sealed class ClientIdentity
{
    private const string SubjectAlternativeNameOid = "2.5.29.17";

    private ClientIdentity(string subject, string issuer, string thumbprint, DateTimeOffset notAfter, string[] dns, string[] uris, string[] emails)
    {
        Subject = subject;
        Issuer = issuer;
        Thumbprint = thumbprint;
        NotAfter = notAfter;
        DnsNames = dns;
        Uris = uris;
        Emails = emails;
    }

    /// <summary>The subject distinguished name, as .NET formats it ("CN=client-a, O=Example").</summary>
    public string Subject { get; }

    /// <summary>The issuer distinguished name.</summary>
    public string Issuer { get; }

    /// <summary>SHA-256 of the DER certificate, lower-case hex (Envoy's Hash=).</summary>
    public string Thumbprint { get; }

    public DateTimeOffset NotAfter { get; }

    /// <summary>dNSName entries of the subject alternative names (RFC 5280 §4.2.1.6), in certificate order.</summary>
    public IReadOnlyList<string> DnsNames { get; }

    /// <summary>uniformResourceIdentifier entries (SPIFFE IDs live here).</summary>
    public IReadOnlyList<string> Uris { get; }

    /// <summary>rfc822Name entries.</summary>
    public IReadOnlyList<string> Emails { get; }

    public static ClientIdentity From(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var dns = new List<string>();
        var uris = new List<string>();
        var emails = new List<string>();
        foreach (X509Extension extension in certificate.Extensions)
        {
            if (extension.Oid?.Value == SubjectAlternativeNameOid)
            {
                ReadGeneralNames(extension.RawData, dns, uris, emails);
            }
        }

        return new ClientIdentity(
            certificate.Subject,
            certificate.Issuer,
            Convert.ToHexStringLower(certificate.GetCertHash(HashAlgorithmName.SHA256)),
            new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero),
            [.. dns],
            [.. uris],
            [.. emails]);
    }

    /// <summary>
    /// GeneralNames (RFC 5280 §4.2.1.6): rfc822Name [1], dNSName [2] and uniformResourceIdentifier [6] are IA5Strings
    /// under implicit context tags; other forms are skipped. A malformed extension yields what was read before it
    /// (the chain was verified already: this is description, not trust).
    /// </summary>
    private static void ReadGeneralNames(byte[] der, List<string> dns, List<string> uris, List<string> emails)
    {
        try
        {
            AsnReader names = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
            while (names.HasData)
            {
                Asn1Tag tag = names.PeekTag();
                List<string>? target = tag.TagClass != TagClass.ContextSpecific ? null : tag.TagValue switch
                {
                    1 => emails,
                    2 => dns,
                    6 => uris,
                    _ => null,
                };
                if (target is null)
                {
                    names.ReadEncodedValue();
                    continue;
                }

                target.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, new Asn1Tag(TagClass.ContextSpecific, tag.TagValue)));
            }
        }
        catch (AsnContentException)
        {
        }
    }
}

using System.Formats.Asn1;
using System.Net.Security;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tls;

/// <summary>
/// OCSP responses (RFC 6960) supplied by the operator as a file, for certificates whose responder the gateway
/// cannot reach or that name none. The DER response is checked (successful, basic, about this certificate's serial,
/// status good, not past nextUpdate) and then handed to the certificate's <see cref="SslStreamCertificateContext"/>,
/// which staples it to every handshake until it expires. .NET has no public API to give a context a response, so
/// its four private fields are set through <see cref="UnsafeAccessorAttribute"/> (AOT-safe; the types are public).
/// When the leaf names a responder, .NET's own fetching keeps running and may replace the supplied response with a
/// fresher one.
/// </summary>
public static class OcspStaple
{
    private const string BasicResponseOid = "1.3.6.1.5.5.7.48.1.1"; // id-pkix-ocsp-basic
    private const int MaxResponseBytes = 64 * 1024;

    /// <summary>What a supplied response says, once it has been found acceptable.</summary>
    public sealed record Response(byte[] Der, DateTimeOffset ThisUpdate, DateTimeOffset NextUpdate);

    /// <summary>
    /// Checks a DER OCSP response against the leaf; throws <see cref="FormatException"/> with the reason when it is
    /// malformed, unsuccessful, about another certificate, not "good", or expired.
    /// </summary>
    public static Response Read(ReadOnlySpan<byte> der, X509Certificate2 leaf, DateTimeOffset now)
    {
        if (der.Length == 0 || der.Length > MaxResponseBytes)
        {
            throw new FormatException($"an OCSP response is 1 to {MaxResponseBytes} bytes of DER");
        }

        try
        {
            // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
            var response = new AsnReader(der.ToArray(), AsnEncodingRules.DER).ReadSequence();
            OcspResponseStatus status = response.ReadEnumeratedValue<OcspResponseStatus>();
            if (status != OcspResponseStatus.Successful)
            {
                throw new FormatException($"the responder answered {status}, not successful");
            }

            AsnReader bytes = response.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0)).ReadSequence();
            if (bytes.ReadObjectIdentifier() != BasicResponseOid)
            {
                throw new FormatException("not a basic OCSP response");
            }

            // BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm, signature, certs }
            var basic = new AsnReader(bytes.ReadOctetString(), AsnEncodingRules.DER).ReadSequence();
            AsnReader data = basic.ReadSequence();
            if (data.PeekTag().HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 0)))
            {
                data.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0)); // version
            }

            data.ReadEncodedValue(); // responderID
            data.ReadGeneralizedTime(); // producedAt
            AsnReader single = data.ReadSequence().ReadSequence(); // the first SingleResponse
            AsnReader certId = single.ReadSequence();
            certId.ReadSequence(); // hashAlgorithm
            certId.ReadOctetString(); // issuerNameHash
            certId.ReadOctetString(); // issuerKeyHash
            BigInteger serial = certId.ReadInteger();
            if (serial != new BigInteger(leaf.SerialNumberBytes.Span, isUnsigned: true, isBigEndian: true))
            {
                throw new FormatException($"the response is about serial {serial:X}, not this certificate's {leaf.SerialNumber}");
            }

            Asn1Tag certStatus = single.PeekTag();
            if (!certStatus.HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 0)))
            {
                throw new FormatException(certStatus.TagValue == 1 ? "the response says the certificate is revoked" : "the response says the certificate is unknown");
            }

            single.ReadNull(new Asn1Tag(TagClass.ContextSpecific, 0));
            DateTimeOffset thisUpdate = single.ReadGeneralizedTime();
            if (!single.HasData || !single.PeekTag().HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
            {
                throw new FormatException("the response has no nextUpdate, so it would never expire");
            }

            DateTimeOffset nextUpdate = single.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)).ReadGeneralizedTime();
            if (nextUpdate <= now)
            {
                throw new FormatException($"the response expired at {nextUpdate:yyyy-MM-dd HH:mm} UTC");
            }

            return new Response(der.ToArray(), thisUpdate, nextUpdate);
        }
        catch (AsnContentException e)
        {
            throw new FormatException("not a DER OCSP response: " + e.Message, e);
        }
    }

    /// <summary>Makes the context staple <paramref name="response"/> until its nextUpdate.</summary>
    public static void Apply(SslStreamCertificateContext context, Response response)
    {
        StaplingForbidden(context) = false;
        OcspUrls(context) ??= []; // marks stapling available, so the OpenSSL context gets the status callback
        OcspResponse(context) = response.Der;
        OcspExpiration(context) = response.NextUpdate;
        // No fetch of our own before it expires (.NET still refreshes from a responder the leaf names).
        NextDownload(context) = response.NextUpdate;
    }

    /// <summary>The response the context staples now, and until when; null when none.</summary>
    public static (int Bytes, DateTimeOffset NextUpdate)? Current(SslStreamCertificateContext context)
    {
        byte[]? der = OcspResponse(context);
        DateTimeOffset expires = OcspExpiration(context);
        return der is { Length: > 0 } && expires > DateTimeOffset.UtcNow && expires != DateTimeOffset.MaxValue ? (der.Length, expires) : null;
    }

    private enum OcspResponseStatus
    {
        Successful = 0,
        MalformedRequest = 1,
        InternalError = 2,
        TryLater = 3,
        SigRequired = 5,
        Unauthorized = 6,
    }

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_ocspResponse")]
    private static extern ref byte[]? OcspResponse(SslStreamCertificateContext context);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_ocspExpiration")]
    private static extern ref DateTimeOffset OcspExpiration(SslStreamCertificateContext context);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_nextDownload")]
    private static extern ref DateTimeOffset NextDownload(SslStreamCertificateContext context);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_ocspUrls")]
    private static extern ref List<string>? OcspUrls(SslStreamCertificateContext context);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_staplingForbidden")]
    private static extern ref bool StaplingForbidden(SslStreamCertificateContext context);
}

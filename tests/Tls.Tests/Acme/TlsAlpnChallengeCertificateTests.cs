using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;
using Appliance.Tls.Acme;

namespace Appliance.Tls.Tests.Acme;

public sealed class TlsAlpnChallengeCertificateTests
{
    [Fact]
    public void Carries_the_critical_acme_identifier_with_the_key_authorization_digest_and_only_the_name()
    {
        const string keyAuthorization = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.thumbprint";
        using X509Certificate2 certificate = TlsAlpnChallengeCertificate.Create("www.example.test", keyAuthorization);

        X509Extension acme = certificate.Extensions.Single(e => e.Oid?.Value == "1.3.6.1.5.5.7.1.31");
        Assert.True(acme.Critical); // RFC 8737 §3
        var reader = new AsnReader(acme.RawData, AsnEncodingRules.DER);
        Assert.Equal(KeyAuthorization.TlsAlpnDigest(keyAuthorization), reader.ReadOctetString());
        Assert.False(reader.HasData);
        Assert.Equal(32, KeyAuthorization.TlsAlpnDigest(keyAuthorization).Length);

        var san = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Equal(["www.example.test"], san.EnumerateDnsNames());
        Assert.Equal(certificate.Subject, certificate.Issuer); // self-signed
        Assert.True(certificate.HasPrivateKey);
    }

    [Fact]
    public void Pending_challenges_are_served_until_withdrawn()
    {
        var pending = new PendingChallenges();
        Assert.False(pending.TlsAlpnPending);
        Assert.Null(pending.TlsAlpnOptions("a.test"));
        IDisposable http = pending.AddHttp01("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "ka");
        IDisposable tls = pending.AddTlsAlpn01("a.test", "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.t");
        Assert.True(pending.TryGetKeyAuthorization("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", out string ka));
        Assert.Equal("ka", ka);
        Assert.False(pending.TryGetKeyAuthorization("other", out _));
        Assert.True(pending.TlsAlpnPending);
        Assert.NotNull(pending.TlsAlpnOptions("A.TEST."));
        Assert.Equal([PendingChallenges.AcmeTls1], pending.TlsAlpnOptions("a.test")!.ApplicationProtocols!);
        Assert.Null(pending.TlsAlpnOptions("b.test"));

        http.Dispose();
        tls.Dispose();
        tls.Dispose();
        Assert.False(pending.TryGetKeyAuthorization("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", out _));
        Assert.False(pending.TlsAlpnPending);
        Assert.Null(pending.TlsAlpnOptions("a.test"));
    }
}

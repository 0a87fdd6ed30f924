using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Appliance.Server;
using Appliance.Tests.Support;
using Appliance.Tls;

namespace Appliance.Tests.Server;

/// <summary>
/// The verified client identity on a connection: read from the certificate once, and the chain check against a CA
/// set done once per connection and set, then answered from memory.
/// </summary>
public sealed class ClientIdentityTests
{
    private static readonly (X509Certificate2 Ca, ECDsa Key) s_ca = ClientCertificates.MakeCa("CN=Identity Test CA");
    private static readonly (X509Certificate2 Ca, ECDsa Key) s_otherCa = ClientCertificates.MakeCa("CN=Other CA");

    private static X509Certificate2 Client(bool clientAuth = true)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=client, O=Example", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(clientAuth ? "1.3.6.1.5.5.7.3.2" : "1.3.6.1.5.5.7.3.1")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("a.clients.test");
        san.AddEmailAddress("ops@example.test");
        san.AddUri(new Uri("spiffe://example.test/ns/a/sa/b"));
        san.AddDnsName("b.clients.test");
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        return request.Create(s_ca.Ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(10), [9, 8, 7]);
    }

    private static ConnectionInfo Connection(X509Certificate2? certificate, TlsServerOptions listener)
    {
        var info = new ConnectionInfo { Id = 1, ListenerName = "https", RemoteEndPoint = null, LocalEndPoint = null };
        if (certificate is not null)
        {
            info.SetClientCertificate(certificate, listener);
        }

        return info;
    }

    [Fact]
    public void Reads_the_names_of_the_certificate_once()
    {
        X509Certificate2 certificate = Client();
        ConnectionInfo info = Connection(certificate, new TlsServerOptions { ClientCertificateAuthorities = [s_ca.Ca] });

        ClientIdentity identity = info.ClientIdentity!;

        Assert.Same(identity, info.ClientIdentity);
        Assert.Equal("CN=client, O=Example", identity.Subject);
        Assert.Equal("CN=Identity Test CA", identity.Issuer);
        Assert.Equal(["a.clients.test", "b.clients.test"], identity.DnsNames);
        Assert.Equal(["spiffe://example.test/ns/a/sa/b"], identity.Uris);
        Assert.Equal(["ops@example.test"], identity.Emails);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(certificate.RawData)), identity.Thumbprint);
        Assert.Equal(new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero), identity.NotAfter);
    }

    [Fact]
    public void No_certificate_no_identity_and_never_trusted()
    {
        ConnectionInfo info = Connection(null, new TlsServerOptions());

        Assert.Null(info.ClientIdentity);
        Assert.False(info.IsClientCertificateTrusted(null, out string? refusal));
        Assert.Equal("no client certificate", refusal);
    }

    [Fact]
    public void The_handshakes_answer_stands_for_the_listeners_own_cas()
    {
        // The handshake checked the listener's CAs alone, so the connection keeps that answer without a chain build:
        // an emptied collection (the same set, by reference) still answers "trusted".
        X509Certificate2Collection listenerCas = [s_ca.Ca];
        ConnectionInfo info = Connection(Client(), new TlsServerOptions { ClientCertificateAuthorities = listenerCas });
        listenerCas.Clear();

        Assert.True(info.IsClientCertificateTrusted(null, out _));
    }

    [Fact]
    public void Another_ca_set_is_checked_once_per_connection()
    {
        X509Certificate2Collection routeCas = [s_otherCa.Ca];
        ConnectionInfo info = Connection(Client(), new TlsServerOptions
        {
            ClientCertificateAuthorities = [s_ca.Ca],
            AdditionalClientCertificateAuthorities = [s_otherCa.Ca],
        });

        Assert.False(info.IsClientCertificateTrusted(routeCas, out string? refusal));
        Assert.StartsWith("client certificate 'CN=client, O=Example' refused:", refusal);
        routeCas.Add(s_ca.Ca); // would now build; the connection's answer for this set is kept
        Assert.False(info.IsClientCertificateTrusted(routeCas, out _));
        // With extra CAs in the handshake, the listener's own set is checked here rather than assumed.
        Assert.True(info.IsClientCertificateTrusted(null, out _));
    }

    [Fact]
    public void A_certificate_without_client_auth_use_is_not_trusted()
    {
        ConnectionInfo info = Connection(Client(clientAuth: false), new TlsServerOptions
        {
            ClientCertificateAuthorities = [s_ca.Ca],
            AdditionalClientCertificateAuthorities = [s_otherCa.Ca],
        });

        Assert.False(info.IsClientCertificateTrusted(null, out string? refusal));
        Assert.Contains("refused", refusal);
    }
}

using System.Net.Security;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tls.Tests;

/// <summary>
/// A pinned context releases a connection's TLS record buffers while they are empty (SSL_MODE_RELEASE_BUFFERS, as
/// nginx sets it), read back from the OpenSSL context itself.
/// </summary>
public sealed class IdleBuffersTests
{
    [Fact]
    public void A_pinned_context_has_release_buffers_set()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=idle.test", key, HashAlgorithmName.SHA256);
        using X509Certificate2 made = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        using X509Certificate2 certificate = X509CertificateLoader.LoadPkcs12(made.Export(X509ContentType.Pfx), null);
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(certificate, null, offline: true),
            EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13,
        };

        using ContextPin? pin = SessionResumption.Pin(options);
        Assert.Null(SessionResumption.Unavailable);
        Assert.NotNull(pin);
        Assert.True(IdleBuffers.Available);
        Assert.Equal(0x10, IdleBuffers.Mode(pin!.Context) & 0x10);
    }
}

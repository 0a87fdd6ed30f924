using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tls.Tests.Support;

/// <summary>An SslStream client that accepts any server certificate and reports what it got.</summary>
internal static class TlsTestClient
{
    public static async Task<Outcome> ConnectAsync(
        int port,
        string? serverName,
        IReadOnlyList<SslApplicationProtocol>? applicationProtocols = null,
        SslProtocols protocols = SslProtocols.None)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port, timeout.Token);
        await using var stream = new SslStream(tcp.GetStream());
        var options = new SslClientAuthenticationOptions
        {
            // An empty target host sends no SNI.
            TargetHost = serverName ?? string.Empty,
            EnabledSslProtocols = protocols,
            ApplicationProtocols = applicationProtocols is null ? null : [.. applicationProtocols],
            RemoteCertificateValidationCallback = static (_, _, _, _) => true,
        };
        await stream.AuthenticateAsClientAsync(options, timeout.Token);

        byte[] buffer = new byte[64];
        int read = await stream.ReadAsync(buffer, timeout.Token);
        Assert.Equal("hello\n", System.Text.Encoding.ASCII.GetString(buffer, 0, read));

        X509Certificate2 remote = X509CertificateLoader.LoadCertificate(stream.RemoteCertificate!.GetRawCertData());
        return new Outcome(remote, stream.SslProtocol, stream.NegotiatedApplicationProtocol);
    }

    public sealed record Outcome(X509Certificate2 Certificate, SslProtocols Protocol, SslApplicationProtocol ApplicationProtocol)
    {
        public string Thumbprint => Certificate.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256);
    }
}

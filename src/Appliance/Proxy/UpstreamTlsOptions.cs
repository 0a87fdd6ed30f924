using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Proxy;

/// <summary>
/// TLS to a cluster's destinations: SNI and hostname verification against the system trust store or a CA
/// bundle, an optional client certificate (mTLS), and an opt-in insecure mode for tests (logged loudly).
/// </summary>
public sealed class UpstreamTlsOptions
{
    public string? ServerName { get; init; }
    public X509Certificate2Collection? TrustedCertificates { get; init; }
    public X509Certificate2? ClientCertificate { get; init; }
    public bool InsecureSkipVerify { get; init; }

    public SslClientAuthenticationOptions ClientOptions(string host) => ClientOptions(host, SslApplicationProtocol.Http11);

    /// <summary>Options for one handshake, offering <paramref name="alpn"/> (http/1.1 or h2).</summary>
    public SslClientAuthenticationOptions ClientOptions(string host, SslApplicationProtocol alpn)
    {
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = ServerName ?? host,
            EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13,
            ApplicationProtocols = [alpn],
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        if (ClientCertificate is not null)
        {
            options.ClientCertificates = [ClientCertificate];
        }

        if (InsecureSkipVerify)
        {
            options.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
        }
        else if (TrustedCertificates is { Count: > 0 } trusted)
        {
            // A CA bundle of our own: build the chain against it only (custom root trust), name check as usual.
            options.CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            options.CertificateChainPolicy.CustomTrustStore.AddRange(trusted);
        }

        return options;
    }
}

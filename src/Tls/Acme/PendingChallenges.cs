using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tls.Acme;

/// <summary>
/// The challenges an issuance is waiting on, shared with the listeners that answer them: HTTP-01 tokens
/// (RFC 8555 §8.3) for the plain listeners, and TLS-ALPN-01 certificates (RFC 8737) for the TLS listeners. Reads are
/// what connections do, so <see cref="TlsAlpnPending"/> is one volatile read and lookups take a short lock only
/// while something is pending.
/// </summary>
public sealed class PendingChallenges
{
    /// <summary>RFC 8737 §6.2: the ALPN protocol of TLS-ALPN-01 validation.</summary>
    public static readonly SslApplicationProtocol AcmeTls1 = new("acme-tls/1");

    private readonly object _lock = new();
    private readonly Dictionary<string, string> _http = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SslServerAuthenticationOptions> _tlsAlpn = new(StringComparer.OrdinalIgnoreCase);
    private volatile int _httpCount;
    private volatile int _tlsAlpnCount;

    /// <summary>Whether a TLS-ALPN-01 challenge waits: only then do TLS listeners look into ClientHellos.</summary>
    public bool TlsAlpnPending => _tlsAlpnCount > 0;

    public bool HttpPending => _httpCount > 0;

    /// <summary>The key authorization to serve at /.well-known/acme-challenge/{token}, if that token is pending.</summary>
    public bool TryGetKeyAuthorization(string token, out string keyAuthorization)
    {
        keyAuthorization = "";
        if (_httpCount == 0)
        {
            return false;
        }

        lock (_lock)
        {
            return _http.TryGetValue(token, out keyAuthorization!);
        }
    }

    /// <summary>
    /// The handshake options that answer a TLS-ALPN-01 challenge for <paramref name="serverName"/>: the validation
    /// certificate and ALPN "acme-tls/1" only (RFC 8737 §3). Null when that name has none pending.
    /// </summary>
    public SslServerAuthenticationOptions? TlsAlpnOptions(string? serverName)
    {
        if (_tlsAlpnCount == 0 || string.IsNullOrEmpty(serverName))
        {
            return null;
        }

        string name = serverName.EndsWith('.') ? serverName[..^1] : serverName;
        lock (_lock)
        {
            return _tlsAlpn.GetValueOrDefault(name);
        }
    }

    /// <summary>Serves <paramref name="keyAuthorization"/> for <paramref name="token"/> until the result is disposed.</summary>
    public IDisposable AddHttp01(string token, string keyAuthorization)
    {
        lock (_lock)
        {
            _http[token] = keyAuthorization;
            _httpCount = _http.Count;
        }

        return new Removal(() =>
        {
            lock (_lock)
            {
                if (_http.TryGetValue(token, out string? current) && current == keyAuthorization)
                {
                    _http.Remove(token);
                }

                _httpCount = _http.Count;
            }
        });
    }

    /// <summary>Answers TLS-ALPN-01 for <paramref name="name"/> until the result is disposed.</summary>
    public IDisposable AddTlsAlpn01(string name, string keyAuthorization)
    {
        X509Certificate2 certificate = TlsAlpnChallengeCertificate.Create(name, keyAuthorization);
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(certificate, null, offline: true),
            ApplicationProtocols = [AcmeTls1],
            // RFC 8737 §4: TLS 1.2 or later.
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            AllowRenegotiation = false,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        lock (_lock)
        {
            _tlsAlpn[name] = options;
            _tlsAlpnCount = _tlsAlpn.Count;
        }

        return new Removal(() =>
        {
            lock (_lock)
            {
                if (_tlsAlpn.TryGetValue(name, out SslServerAuthenticationOptions? current) && ReferenceEquals(current, options))
                {
                    _tlsAlpn.Remove(name);
                }

                _tlsAlpnCount = _tlsAlpn.Count;
            }

            // The certificate is left to the collector: a handshake that began just before may still be using it.
        });
    }

    private sealed class Removal(Action remove) : IDisposable
    {
        private Action? _remove = remove;

        public void Dispose() => Interlocked.Exchange(ref _remove, null)?.Invoke();
    }
}

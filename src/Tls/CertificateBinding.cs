using System.Net.Security;

namespace Appliance.Tls;

/// <summary>
/// A certificate and the one options object every handshake for it reuses. Reusing the
/// same options (same context, protocols and ALPN list) is what lets SslStream reuse its
/// cached OpenSSL context, and with it the session cache that resumption needs; while the
/// binding is in service it pins that context (<see cref="SessionResumption"/>).
/// </summary>
internal sealed class CertificateBinding(LoadedCertificate certificate, SslServerAuthenticationOptions options, string? owner)
{
    private IDisposable? _pin;

    public LoadedCertificate Certificate { get; } = certificate;

    public SslServerAuthenticationOptions Options { get; } = options;

    /// <summary>Who brought the certificate (<see cref="CertificateOwnership"/>); null for the operator's own.</summary>
    public string? Owner { get; } = owner;

    public bool Pinned => Volatile.Read(ref _pin) is not null;

    /// <summary>Pins once; two handshakes racing to pin the same certificate keep one pin.</summary>
    public void Pin()
    {
        if (Volatile.Read(ref _pin) is null && SessionResumption.Pin(Options) is { } pin
            && Interlocked.CompareExchange(ref _pin, pin, null) is not null)
        {
            pin.Dispose();
        }
    }

    public void Unpin() => Interlocked.Exchange(ref _pin, null)?.Dispose();

    // SniMap names the values of clashing entries in its errors.
    public override string ToString() => Certificate.ToString();
}

using System.Security.Cryptography;
using System.Text;

namespace Appliance.Tls.Acme;

/// <summary>
/// RFC 8555 §8.1: a challenge is answered with its key authorization, the token joined to the account key's
/// thumbprint. HTTP-01 serves it as is (§8.3); TLS-ALPN-01 puts its SHA-256 in a certificate (RFC 8737 §3).
/// </summary>
public static class KeyAuthorization
{
    public static string Create(string token, string accountThumbprint)
    {
        if (!AcmeResponseParser.IsToken(token))
        {
            throw new ArgumentException("not an ACME challenge token", nameof(token));
        }

        ArgumentException.ThrowIfNullOrEmpty(accountThumbprint);
        return token + "." + accountThumbprint;
    }

    /// <summary>RFC 8737 §3: the acmeIdentifier extension carries SHA-256 of the key authorization.</summary>
    public static byte[] TlsAlpnDigest(string keyAuthorization) => SHA256.HashData(Encoding.ASCII.GetBytes(keyAuthorization));
}

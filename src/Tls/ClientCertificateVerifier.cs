using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tls;

/// <summary>
/// Whether a client certificate is trusted by a set of CAs: custom root trust (the system store never vouches for
/// clients), id-kp-clientAuth, and the operator's CRLs when there are some (fail closed). One rule for the handshake
/// and for the checks a gateway repeats later against a narrower CA set (a route's, a tenant's).
/// </summary>
public static class ClientCertificateVerifier
{
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    /// <summary>Null when <paramref name="leaf"/> is trusted; otherwise why not, naming the certificate.</summary>
    public static string? Verify(X509Certificate2 leaf, X509Certificate2Collection? authorities, RevocationList? revocation, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(leaf);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck; // CRLs come from the operator's file (below), never the network
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(ClientAuthOid));
        if (authorities is not null)
        {
            chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        }

        if (!chain.Build(leaf))
        {
            string why = string.Join(", ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
            return $"client certificate '{leaf.Subject}' refused: {(why.Length > 0 ? why : "untrusted")}";
        }

        return revocation?.Check(chain, now) is { } revoked ? $"client certificate '{leaf.Subject}' refused: {revoked}" : null;
    }
}

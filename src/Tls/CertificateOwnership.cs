using System.Collections.Frozen;

namespace Appliance.Tls;

/// <summary>
/// Who owns which certificates and which server names, for a gateway where tenants bring their own domains and
/// certificates. Owners are opaque strings to this layer. A certificate with an owner is served only for names that
/// belong to the same owner or to nobody, so one owner's certificate (a wildcard, say) never answers for a name
/// another owner holds. Built once per config and shared by every listener's <see cref="CertificateStore"/>.
/// </summary>
public sealed class CertificateOwnership
{
    private readonly FrozenDictionary<string, string> _certificates;
    private readonly SniMap<string> _names;

    /// <param name="certificateOwners">Certificate name → owner; certificates not listed have none (the operator's).</param>
    /// <param name="nameOwners">
    /// Exact names and <c>*.wildcard</c> patterns → owner, matched like SNI (exact beats wildcard, a wildcard covers
    /// exactly one label). A name given twice throws <see cref="ArgumentException"/>.
    /// </param>
    public CertificateOwnership(IEnumerable<KeyValuePair<string, string>> certificateOwners, IEnumerable<KeyValuePair<string, string>> nameOwners)
    {
        ArgumentNullException.ThrowIfNull(certificateOwners);
        ArgumentNullException.ThrowIfNull(nameOwners);
        _certificates = certificateOwners.ToFrozenDictionary(StringComparer.Ordinal);
        _names = SniMap<string>.Build(nameOwners, defaultValue: null);
    }

    /// <summary>The owner of the certificate with this name, or null.</summary>
    public string? OwnerOfCertificate(string certificateName) => _certificates.GetValueOrDefault(certificateName);

    /// <summary>The owner of a server name (normalised as the SNI map does), or null when it belongs to nobody. Allocation-free.</summary>
    public string? OwnerOfName(string? serverName) => _names.TryResolve(serverName, out string? owner) ? owner : null;
}

namespace Appliance.Tls;

/// <summary>
/// Where one configured certificate lives on disk and which host names it serves.
/// <paramref name="CertificatePath"/> may hold the leaf followed by its intermediates;
/// <paramref name="ChainPath"/> is for deployments that keep the chain in a separate file;
/// <paramref name="OcspResponsePath"/> for an operator-supplied DER OCSP response to staple.
/// </summary>
public sealed record CertificateSource(
    string Name,
    IReadOnlyList<string> Hosts,
    string CertificatePath,
    string KeyPath,
    string? ChainPath,
    string? OcspResponsePath = null);

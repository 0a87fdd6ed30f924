using System.Security.Cryptography.X509Certificates;
using Appliance.Tls.Acme;

namespace Appliance.Config;

/// <summary>
/// A certificate the appliance obtains itself from an ACME server, compiled from a certificate entry's
/// <c>acme</c> block. The issued pair lives at <see cref="CertificatePath"/> and <see cref="KeyPath"/>
/// (&lt;stateDirectory&gt;/acme/&lt;name&gt;.crt|.key); the account beside them.
/// </summary>
public sealed record AcmeCertificateModel
{
    public required string Name { get; init; }
    public required IReadOnlyList<string> Hosts { get; init; }
    public required Uri Directory { get; init; }
    public string? Email { get; init; }
    public AcmeChallengeType Challenge { get; init; }
    /// <summary>The resolved caFile, or null for the system trust store.</summary>
    public string? CaFile { get; init; }
    public X509Certificate2Collection? TrustAnchors { get; init; }
    public required string CertificatePath { get; init; }
    public required string KeyPath { get; init; }
    /// <summary>&lt;stateDirectory&gt;/acme: the account key and URL, and the issued pairs.</summary>
    public required string AcmeDirectory { get; init; }

    /// <summary>Whether <paramref name="other"/> asks the same server for the same certificate the same way.</summary>
    public bool SameOrder(AcmeCertificateModel other) =>
        Name == other.Name && Hosts.SequenceEqual(other.Hosts, StringComparer.OrdinalIgnoreCase) && Directory == other.Directory
        && Email == other.Email && Challenge == other.Challenge && CaFile == other.CaFile && CertificatePath == other.CertificatePath;

    public string ChallengeName => Challenge == AcmeChallengeType.Http01 ? "http-01" : "tls-alpn-01";

    public AcmeCertificateRequest ToRequest() => new(Name, Hosts, Directory, Email, Challenge, TrustAnchors);
}

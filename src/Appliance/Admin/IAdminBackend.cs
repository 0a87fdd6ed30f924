using Appliance.Config;

namespace Appliance.Admin;

/// <summary>What the admin API can see and do; implemented by the host that owns listeners and snapshots.</summary>
public interface IAdminBackend
{
    ConfigSnapshot Snapshot { get; }

    int Revision { get; }

    DateTimeOffset StartedAt { get; }

    int ConnectionCount { get; }

    /// <summary>The last lines logged, for /v1/logs.</summary>
    Telemetry.RecentLogs Logs { get; }

    /// <summary>The state database (consumers, keys, subscriptions, usage); null until the host has opened it.</summary>
    State.StateStore? StateStore { get; }

    /// <summary>Requests per consumer not yet written to the state database; flushed before usage is read.</summary>
    Telemetry.UsageMeter? Usage { get; }

    IReadOnlyList<ListenerStatus> ListenerStatus();

    /// <summary>Validates, and unless <paramref name="dryRun"/>, persists and applies. Errors leave everything as it was.</summary>
    Task<ApplyResult> ApplyAsync(ApplianceConfig config, bool dryRun, string source);

    IReadOnlyList<ConfigRevision> Revisions();

    Task<ApplyResult> RollbackAsync(int revision);

    /// <summary>Reads the certificate and key files again (the config is unchanged); a bad file keeps the old certificate.</summary>
    Task<ApplyResult> ReloadCertificatesAsync(string reason);

    /// <summary>
    /// Replaces a configured certificate's files with an uploaded PEM bundle (certificate, chain, key), validated
    /// before anything is written, then reloads certificates. Null when no certificate of that name has files.
    /// </summary>
    Task<ApplyResult>? UploadCertificateAsync(string name, string pem);

    /// <summary>Reads the config file again (SIGHUP does the same).</summary>
    Task<ApplyResult> ReloadAsync();

    /// <summary>server.accessLog's writer (its counters for /v1/metrics).</summary>
    Telemetry.AccessLog AccessLog { get; }

    /// <summary>Opens the access log file again by its path (SIGUSR1 does the same); the path, or null when there is no access log.</summary>
    Task<string?> ReopenAccessLogAsync();

    /// <summary>Where an ACME certificate stands; null when <paramref name="certificateName"/> is not obtained by ACME.</summary>
    AcmeStatus? AcmeStatus(string certificateName);

    /// <summary>Issues an ACME certificate now and hot-loads it; null when no ACME certificate has that name.</summary>
    Task<RenewalOutcome>? RenewCertificateAsync(string certificateName);
}

/// <summary>An ACME certificate's state: "pending" (none issued yet), "valid" or "failed" (the last attempt).</summary>
public sealed record AcmeStatus(string State, string? LastError, DateTimeOffset? NextRenewal, DateTimeOffset? LastIssued, string Challenge, string Directory);

/// <summary>What a forced renewal did: the new serial and the reload's changes, or the error (the ACME problem detail).</summary>
public sealed record RenewalOutcome(bool Ok, string Detail, string? SerialNumber, IReadOnlyList<string> Changes);

public sealed record ApplyResult(bool Ok, int Revision, IReadOnlyList<ConfigError> Errors, IReadOnlyList<string> Changes);

public sealed record ConfigRevision(int Revision, DateTimeOffset AppliedAt, string Source, string Path);

/// <summary>
/// One listener as /v1/status and /metrics show it: open connections, connections closed at accept past its
/// max_connections, accepts that failed for want of a resource (EMFILE and the like), and why it no longer accepts
/// (null while it does).
/// </summary>
public readonly record struct ListenerStatus(string Name, string Address, int Connections, long Rejected, long AcceptErrors, string? Problem);

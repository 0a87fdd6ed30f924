using Appliance.Proxy;
using Appliance.Routing;
using Appliance.Tls;

namespace Appliance.Config;

/// <summary>
/// The immutable, validated form of a config that the hot path reads. A reload builds a new snapshot and
/// swaps one reference; requests in flight finish on the one they started with.
/// </summary>
public sealed class ConfigSnapshot
{
    public required ApplianceConfig Source { get; init; }
    public required IReadOnlyList<ListenerModel> Listeners { get; init; }
    public required IReadOnlyList<LoadedCertificate> Certificates { get; init; }
    /// <summary>Certificates obtained from an ACME server, for the renewer.</summary>
    public IReadOnlyList<AcmeCertificateModel> Acme { get; init; } = [];
    public required RouteTable Routes { get; init; }
    public IReadOnlyList<ClusterModel> Clusters { get; init; } = [];
    /// <summary>The ai section as compiled; null without one.</summary>
    public Ai.AiGateway? Ai { get; init; }
    public required TimeSpan ShutdownTimeout { get; init; }
    public required string StateDirectory { get; init; }
    public string? ServerHeader { get; init; }
    /// <summary>server.certificateExpiryCommand: run at each expiry warning; null for none.</summary>
    public IReadOnlyList<string>? CertificateExpiryCommand { get; init; }
    public bool InlineSocketCompletions { get; init; } = true;
    /// <summary>server.socketThreads, or the default for this machine.</summary>
    public int SocketThreads { get; init; } = DefaultSocketThreads;
    /// <summary>server.socketEngine is "epoll" (the default): connections run on our own event loops.</summary>
    public bool EpollSockets { get; init; } = true;
    /// <summary>server.ioUring: the epoll loops send each round's writes with one io_uring_enter.</summary>
    public bool IoUringSends { get; init; } = true;
    /// <summary>server.tlsRecordLayer is "evp" or "openssl": records after the handshake go to OpenSSL directly.</summary>
    public bool OpenSslRecords { get; init; } = true;

    /// <summary>server.tlsRecordLayer is "evp" (the default): a TLS 1.3 server connection's records are sealed by the appliance.</summary>
    public bool EvpRecords { get; init; } = true;

    /// <summary>
    /// Half the processors: on a box shared with other programs (a load generator, the upstream itself) fewer event
    /// threads, each with more sockets, spend less CPU per request than one per core (perf/RESULTS.md).
    /// </summary>
    public static int DefaultSocketThreads => Math.Max(1, Environment.ProcessorCount / 2);
    /// <summary>Admin socket path, or null when the admin API is disabled.</summary>
    public string? AdminSocketPath { get; init; }
    public string AdminGroup { get; init; } = "appliance-admin";
    /// <summary>Folder the config's relative paths were resolved against.</summary>
    public string BaseDirectory { get; init; } = "";
    /// <summary>server.accessLog; null when requests are not logged.</summary>
    public Telemetry.AccessLogOptions? AccessLog { get; init; }
    /// <summary>server.sessionTickets: how TLS session tickets are sealed (key files read; they are TLS files too).</summary>
    public SessionTicketSettings SessionTickets { get; init; } = SessionTicketSettings.Default;
    /// <summary>
    /// Every TLS file the compiler read (certificates, keys, chains, OCSP responses, CA bundles, CRLs, upstream client
    /// certificates, session ticket keys), full path → <see cref="FileFingerprint"/> as read: what the certificate watcher watches, and
    /// what tells a reload which of them changed.
    /// </summary>
    public IReadOnlyDictionary<string, string> TlsFiles { get; init; } = new Dictionary<string, string>();
}

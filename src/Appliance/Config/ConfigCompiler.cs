using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using Appliance.Proxy;
using Appliance.Routing;
using Appliance.Server;
using Appliance.Tls;

namespace Appliance.Config;

/// <summary>
/// Validates a config document and compiles it into a <see cref="ConfigSnapshot"/>. Every error is collected
/// with its JSON path so an operator sees all of them at once; nothing is applied unless all is well.
/// </summary>
public sealed partial class ConfigCompiler
{
    private readonly List<ConfigError> _errors = [];
    private readonly string _baseDirectory;
    private readonly bool _generateSelfSigned;
    private bool _certificatesPending;
    private ConfigSnapshot? _previous;
    private readonly HashSet<ClusterModel> _carriedOver = [];
    private IReadOnlyList<IPNetwork> _trustedProxies = [];
    private readonly List<AcmeCertificateModel> _acme = [];
    private readonly List<KeyValuePair<string, string>> _tenantNames = []; // normalised host pattern → tenant id
    private readonly Dictionary<string, X509Certificate2Collection> _tenantAuthorities = new(StringComparer.Ordinal);
    private readonly List<X509Certificate2Collection> _routeAuthorities = []; // CA sets routes check against themselves
    private readonly Dictionary<string, string> _tlsFiles = new(StringComparer.Ordinal); // TLS file → fingerprint as read

    /// <param name="baseDirectory">Relative file paths in the config are resolved against this folder.</param>
    /// <param name="generateSelfSigned">Create missing self-signed certificates (run), or only check (check-config).</param>
    public ConfigCompiler(string baseDirectory, bool generateSelfSigned)
    {
        _baseDirectory = baseDirectory;
        _generateSelfSigned = generateSelfSigned;
    }

    /// <param name="previous">The running snapshot on a hot apply: clusters whose config did not change are carried
    /// over with their warm connection pools and health state.</param>
    public static ConfigSnapshot Compile(ApplianceConfig config, string baseDirectory, bool generateSelfSigned = true, ConfigSnapshot? previous = null)
    {
        var compiler = new ConfigCompiler(baseDirectory, generateSelfSigned) { _previous = previous };
        ConfigSnapshot? snapshot = compiler.TryCompile(config);
        if (snapshot is null)
        {
            throw new ConfigException(compiler._errors);
        }

        return snapshot;
    }

    /// <summary>Only validates (no files are created); returns every error.</summary>
    public static IReadOnlyList<ConfigError> Validate(ApplianceConfig config, string baseDirectory)
    {
        var compiler = new ConfigCompiler(baseDirectory, generateSelfSigned: false);
        compiler.TryCompile(config);
        return compiler._errors;
    }

    private void Error(string path, string message) => _errors.Add(new ConfigError(path, message));

    private ConfigSnapshot? TryCompile(ApplianceConfig config)
    {
        ServerConfig server = config.Server ?? new ServerConfig();
        string stateDirectory = Resolve(server.StateDirectory ?? "state");
        TimeSpan shutdown = ParseDuration(server.ShutdownTimeout, "server.shutdownTimeout", TimeSpan.FromSeconds(30));
        if (config.Admin?.SocketPath is { Length: 0 or > 100 })
        {
            Error("admin.socketPath", "must be a path of 1 to 100 characters (sun_path limit)");
        }

        if (config.Admin?.Group is { } group && (group.Length == 0 || group.Contains(':') || group.Contains('\n')))
        {
            Error("admin.group", "is not a group name");
        }

        if (server.SocketThreads is < 1 or > 1024)
        {
            Error("server.socketThreads", "must be between 1 and 1024");
        }

        if (server.SocketEngine is not (null or "epoll" or "dotnet"))
        {
            Error("server.socketEngine", "must be \"epoll\" or \"dotnet\"");
        }

        if (server.TlsRecordLayer is not (null or "evp" or "openssl" or "sslstream"))
        {
            Error("server.tlsRecordLayer", "must be \"evp\", \"openssl\" or \"sslstream\"");
        }

        if (server.ServerHeader is { } sh && !IsValidFieldValue(sh))
        {
            Error("server.serverHeader", "must be printable ASCII");
        }

        if (server.CertificateExpiryCommand is { } hook && (hook.Count == 0 || !Path.IsPathFullyQualified(hook[0])))
        {
            Error("server.certificateExpiryCommand", "must start with the absolute path of a program");
        }

        Telemetry.AccessLogOptions? accessLog = CompileAccessLog(server.AccessLog, stateDirectory);
        SessionTicketSettings sessionTickets = CompileSessionTickets(server.SessionTickets);
        Dictionary<string, TenantConfig> tenants = CompileTenants(config.Tenants);
        List<LoadedCertificate> certificates = CompileCertificates(config.Certificates, stateDirectory);
        CertificateOwnership? ownership = CompileCertificateOwnership(config.Certificates, tenants);
        Dictionary<string, ClusterModel> clusters = CompileClusters(config.Clusters);
        _trustedProxies = CompileTrustedProxies(server.TrustedProxies);
        _ai = CompileAi(config.Ai);
        RouteTable routes = CompileRoutes(config.Routes, tenants, clusters);
        List<ListenerModel> listeners = CompileListeners(config.Listeners, config.Certificates); // after routes: their CAs
        CheckAcmeListeners(config, listeners);
        CheckRouteClientCertificates(config.Routes, listeners);
        for (int i = 0; i < listeners.Count && _errors.Count == 0 && !_certificatesPending; i++)
        {
            ListenerModel l = listeners[i];
            if (!l.Tls)
            {
                continue;
            }

            try
            {
                listeners[i] = l with
                {
                    Certificates = new CertificateStore(certificates, l.DefaultCertificate,
                        new TlsServerOptions
                        {
                            ApplicationProtocols = l.Protocols,
                            RequireSni = l.RequireSni,
                            ClientCertificates = l.ClientCertificates,
                            ClientCertificateAuthorities = l.ClientCertificateAuthorities,
                            ClientRevocationList = l.ClientRevocationList,
                            AdditionalClientCertificateAuthorities = l.AdditionalClientCertificateAuthorities,
                        },
                        ownership),
                };
            }
            catch (ArgumentException e)
            {
                Error($"listeners[{i}]", e.Message);
            }
        }

        if (_errors.Count > 0)
        {
            foreach (ClusterModel c in clusters.Values)
            {
                if (!_carriedOver.Contains(c))
                {
                    c.Dispose();
                }
            }

            return null;
        }

        return new ConfigSnapshot
        {
            Source = config,
            Listeners = listeners,
            Certificates = certificates,
            Acme = _acme,
            Routes = routes,
            Ai = _ai,
            Clusters = [.. clusters.Values],
            ShutdownTimeout = shutdown,
            StateDirectory = stateDirectory,
            ServerHeader = server.ServerHeader,
            CertificateExpiryCommand = server.CertificateExpiryCommand,
            InlineSocketCompletions = server.InlineSocketCompletions ?? true,
            SocketThreads = server.SocketThreads ?? ConfigSnapshot.DefaultSocketThreads,
            EpollSockets = server.SocketEngine is null or "epoll",
            IoUringSends = server.IoUring ?? true,
            OpenSslRecords = server.TlsRecordLayer is null or "evp" or "openssl",
            EvpRecords = server.TlsRecordLayer is null or "evp",
            AdminSocketPath = config.Admin is { Enabled: false } ? null : Resolve(config.Admin?.SocketPath ?? "/run/appliance/admin.sock"),
            AdminGroup = config.Admin?.Group ?? "appliance-admin",
            BaseDirectory = _baseDirectory,
            AccessLog = accessLog,
            SessionTickets = sessionTickets,
            TlsFiles = _tlsFiles,
        };
    }

    // ---------------- access log ----------------

    private Telemetry.AccessLogOptions? CompileAccessLog(AccessLogConfig? c, string stateDirectory)
    {
        if (c is null)
        {
            return null;
        }

        const string p = "server.accessLog";
        string path = "";
        if (string.IsNullOrWhiteSpace(c.Path) || c.Path.Contains('\0') || c.Path.EndsWith('/'))
        {
            Error($"{p}.path", "is required: the file to write (relative to the state directory)");
        }
        else
        {
            path = Path.GetFullPath(c.Path, stateDirectory);
            if (Directory.Exists(path))
            {
                Error($"{p}.path", $"'{path}' is a directory");
            }
        }

        Telemetry.AccessLogFormat format = Telemetry.AccessLogFormat.Json;
        switch (c.Format)
        {
            case null or "json":
                break;
            case "combined":
                format = Telemetry.AccessLogFormat.Combined;
                break;
            default:
                Error($"{p}.format", $"unknown format '{c.Format}': \"json\" or \"combined\"");
                break;
        }

        long maxSize = Telemetry.AccessLogOptions.DefaultMaxSize;
        if (c.MaxSize is { } size)
        {
            bool parsed = size.ValueKind switch
            {
                System.Text.Json.JsonValueKind.Number => size.TryGetInt64(out maxSize),
                System.Text.Json.JsonValueKind.String => ByteSize.TryParse(size.GetString(), out maxSize),
                _ => false,
            };
            if (!parsed || maxSize < 0)
            {
                Error($"{p}.maxSize", "must be a size: bytes, or a number with KiB, MiB or GiB (\"64MiB\"); 0 never rotates");
            }
            else if (maxSize is > 0 and < 1024)
            {
                Error($"{p}.maxSize", "must be at least 1KiB (or 0: never rotate)");
            }
        }

        int maxFiles = c.MaxFiles ?? Telemetry.AccessLogOptions.DefaultMaxFiles;
        if (maxFiles is < 1 or > 1000)
        {
            Error($"{p}.maxFiles", "must be 1 to 1000");
        }

        bool lz4 = false;
        switch (c.Compress)
        {
            case null or "none":
                break;
            case "lz4":
                lz4 = true;
                break;
            default:
                Error($"{p}.compress", $"unknown compression '{c.Compress}': \"none\" or \"lz4\"");
                break;
        }

        return new Telemetry.AccessLogOptions(path, format, maxSize, maxFiles, lz4);
    }

    // ---------------- session tickets ----------------

    private SessionTicketSettings CompileSessionTickets(SessionTicketsConfig? c)
    {
        if (c is null)
        {
            return SessionTicketSettings.Default;
        }

        const string p = "server.sessionTickets";
        TimeSpan rotate = ParseDuration(c.Rotate, $"{p}.rotate", SessionTicketSettings.Default.Rotate);
        if (rotate < TimeSpan.FromMinutes(1) || rotate > TimeSpan.FromHours(24))
        {
            Error($"{p}.rotate", "must be between 1m and 24h");
            rotate = SessionTicketSettings.Default.Rotate;
        }

        var secrets = new List<byte[]>();
        if (c.KeyFiles is { } files)
        {
            if (files.Count is 0 or > 16)
            {
                Error($"{p}.keyFiles", "must name 1 to 16 files (absent: random keys made in memory)");
                files = [];
            }

            if (c.Rotate is not null)
            {
                Error($"{p}.rotate", "applies to random keys only; with keyFiles, rotate by rewriting the files (they are watched)");
            }

            for (int i = 0; i < files.Count; i++)
            {
                if (ReadTicketKey(files[i], $"{p}.keyFiles[{i}]") is { } secret)
                {
                    secrets.Add(secret);
                }
            }
        }

        int cacheSize = c.CacheSize ?? SessionTicketSettings.DefaultCacheSize;
        if (cacheSize is < 1 or > SessionTicketSettings.MaxCacheSize)
        {
            Error($"{p}.cacheSize", "must be between 1 and 1,000,000 sessions per certificate");
            cacheSize = SessionTicketSettings.DefaultCacheSize;
        }

        int perHandshake = c.PerHandshake ?? SessionTicketSettings.DefaultPerHandshake;
        if (perHandshake is < 0 or > SessionTicketSettings.MaxPerHandshake)
        {
            Error($"{p}.perHandshake", "must be between 0 and 16 TLS 1.3 tickets (0: none, no TLS 1.3 resumption)");
            perHandshake = SessionTicketSettings.DefaultPerHandshake;
        }

        return new SessionTicketSettings(c.Enabled ?? true, secrets, rotate, c.RenewOnResumption ?? true, cacheSize, perHandshake);
    }

    /// <summary>
    /// A ticket key file: exactly 80 or 48 bytes. The size is taken from the file system before the file is opened,
    /// so a FIFO, a device or a tty (size 0) is refused without blocking on it, and a huge file is never read.
    /// </summary>
    private byte[]? ReadTicketKey(string? file, string path)
    {
        if (string.IsNullOrWhiteSpace(file) || file.Contains('\0'))
        {
            Error(path, "must be a file path");
            return null;
        }

        string full = TlsFile(file);
        try
        {
            var info = new FileInfo(full);
            if (!info.Exists)
            {
                Error(path, $"cannot read '{full}': no such file");
                return null;
            }

            if (!SessionTicketSettings.IsKeyLength(info.Length))
            {
                Error(path, $"'{full}' holds {info.Length} bytes; a ticket key is 80 random bytes (openssl rand 80 > file), or 48 as older nginx keys");
                return null;
            }

            using var stream = new FileStream(full, FileMode.Open, FileAccess.Read);
            byte[] secret = new byte[info.Length];
            stream.ReadExactly(secret);
            if (stream.ReadByte() != -1)
            {
                Error(path, $"'{full}' grew while it was read; read again once it is written whole");
                return null;
            }

            return secret;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            Error(path, $"cannot read '{full}': {e.Message}");
            return null;
        }
    }

    private string Resolve(string path) => Path.GetFullPath(path, _baseDirectory);

    /// <summary>
    /// <paramref name="path"/> resolved, with its fingerprint taken before it is read: a TLS file the running config
    /// depends on, watched from now on (a change after this moment is seen, even one during the read).
    /// </summary>
    private string TlsFile(string path)
    {
        string full = Resolve(path);
        if (!_tlsFiles.ContainsKey(full))
        {
            _tlsFiles[full] = FileFingerprint.Of(full);
        }

        return full;
    }

    // ---------------- tenants ----------------

    private Dictionary<string, TenantConfig> CompileTenants(List<TenantConfig>? tenants)
    {
        var byId = new Dictionary<string, TenantConfig>(StringComparer.Ordinal);
        var owners = new Dictionary<string, (string Tenant, string Path)>(StringComparer.Ordinal);
        for (int i = 0; i < (tenants?.Count ?? 0); i++)
        {
            TenantConfig t = tenants![i];
            string p = $"tenants[{i}]";
            if (t is null)
            {
                Error(p, "must be an object");
                continue;
            }

            if (!IsIdentifier(t.Id))
            {
                Error($"{p}.id", "is required: letters, digits, '-', '_' and '.', at most 128");
                continue;
            }

            if (!byId.TryAdd(t.Id!, t))
            {
                Error($"{p}.id", $"duplicate tenant id '{t.Id}'");
            }

            if (t.ClientCertificates is { } tc)
            {
                if (string.IsNullOrEmpty(tc.CaFile))
                {
                    Error($"{p}.clientCertificates.caFile", "is required: the CAs the tenant's client certificates chain to");
                }
                else if (LoadAuthorities(tc.CaFile, $"{p}.clientCertificates.caFile") is { } cas)
                {
                    _tenantAuthorities[t.Id!] = cas;
                }
            }

            CheckHostPatterns(t.Hosts, $"{p}.hosts");
            for (int j = 0; j < (t.Hosts?.Count ?? 0); j++)
            {
                // Normalised as the SNI map does, so "API.example.com." and "api.example.com" are one name. IP
                // literals are skipped: SNI never carries one (RFC 6066 §3).
                if (!IsHostPattern(t.Hosts![j]) || !ServerNamePattern.TryNormalize(t.Hosts[j], out string? name, out _))
                {
                    continue;
                }

                if (owners.TryGetValue(name, out (string Tenant, string Path) first))
                {
                    if (first.Tenant != t.Id)
                    {
                        Error($"{p}.hosts[{j}]", $"'{t.Hosts[j]}' is also a host of tenant '{first.Tenant}' ({first.Path}); a host belongs to one tenant");
                    }

                    continue;
                }

                owners.Add(name, (t.Id!, $"{p}.hosts[{j}]"));
                _tenantNames.Add(new(name, t.Id!));
            }
        }

        return byId;
    }

    /// <summary>
    /// certificates[].tenant: a known tenant, and every host of the certificate is one of the tenant's names as SNI
    /// resolves them (exact beats wildcard; a wildcard host covers one label, never the apex, RFC 6125 §6.4.3).
    /// Null when no certificate names a tenant: the stores then skip ownership altogether.
    /// </summary>
    private CertificateOwnership? CompileCertificateOwnership(List<CertificateConfig>? certificates, Dictionary<string, TenantConfig> tenants)
    {
        var owned = new List<KeyValuePair<string, string>>();
        SniMap<string>? names = null;
        for (int i = 0; i < (certificates?.Count ?? 0); i++)
        {
            if (certificates![i] is not { Tenant: { } tenant } c)
            {
                continue;
            }

            string p = $"certificates[{i}]";
            if (!tenants.ContainsKey(tenant))
            {
                Error($"{p}.tenant", $"no tenant with id '{tenant}'");
                continue;
            }

            try
            {
                names ??= SniMap<string>.Build(_tenantNames, defaultValue: null);
            }
            catch (ArgumentException)
            {
                return null; // a host given to two tenants, reported with the tenants
            }

            for (int j = 0; j < (c.Hosts?.Count ?? 0); j++)
            {
                if (!ServerNamePattern.TryNormalize(c.Hosts![j], out string? host, out _))
                {
                    continue; // reported with the hosts
                }

                // "*.example.com" resolves through its "*" label like any one-label name under example.com.
                if (!names.TryResolve(host, out string? owner))
                {
                    Error($"{p}.hosts[{j}]", $"'{c.Hosts[j]}' is not a host of tenant '{tenant}' (a wildcard host covers exactly one label, not the apex)");
                }
                else if (owner != tenant)
                {
                    Error($"{p}.hosts[{j}]", $"'{c.Hosts[j]}' is a host of tenant '{owner}', not of '{tenant}'");
                }
            }

            if (c.Name is not null)
            {
                owned.Add(new(c.Name, tenant));
            }
        }

        if (owned.Count == 0 || _errors.Count > 0)
        {
            return null;
        }

        return new CertificateOwnership(owned, _tenantNames);
    }

    // ---------------- certificates ----------------

    private List<LoadedCertificate> CompileCertificates(List<CertificateConfig>? certificates, string stateDirectory)
    {
        var loaded = new List<LoadedCertificate>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < (certificates?.Count ?? 0); i++)
        {
            CertificateConfig c = certificates![i];
            string p = $"certificates[{i}]";
            if (c is null)
            {
                Error(p, "must be an object");
                continue;
            }

            if (!IsIdentifier(c.Name))
            {
                Error($"{p}.name", "is required: letters, digits, '-', '_' and '.'");
                continue;
            }

            if (!names.Add(c.Name!))
            {
                Error($"{p}.name", $"duplicate certificate name '{c.Name}'");
            }

            if (c.Hosts is null || c.Hosts.Count == 0)
            {
                Error($"{p}.hosts", "needs at least one host name");
            }
            else
            {
                for (int j = 0; j < c.Hosts.Count; j++)
                {
                    // The SNI map's own rules, so the config is refused with the same reason the map would give.
                    if (!ServerNamePattern.TryNormalize(c.Hosts[j], out _, out string? reason))
                    {
                        Error($"{p}.hosts[{j}]", reason ?? "invalid host name");
                    }
                }
            }

            if (c.Acme is null)
            {
                if (string.IsNullOrWhiteSpace(c.CertificatePath))
                {
                    Error($"{p}.certificatePath", "is required (or an 'acme' block)");
                }

                if (string.IsNullOrWhiteSpace(c.KeyPath))
                {
                    Error($"{p}.keyPath", "is required (or an 'acme' block)");
                }
            }
            else if (string.IsNullOrWhiteSpace(c.CertificatePath) != string.IsNullOrWhiteSpace(c.KeyPath))
            {
                Error($"{p}.certificatePath", "certificatePath and keyPath go together (with 'acme' they are served until the first issuance)");
            }

            AcmeCertificateModel? acme = c.Acme is null ? null : CompileAcme(c, p, stateDirectory);
            if (_errors.Count > 0)
            {
                continue;
            }

            if (acme is not null)
            {
                _acme.Add(acme);
                if (LoadAcmeCertificate(c, acme, p) is { } served)
                {
                    loaded.Add(served);
                    continue;
                }

                if (_errors.Count > 0 || string.IsNullOrWhiteSpace(c.CertificatePath))
                {
                    continue; // a stand-in is pending (check-config) or could not be made
                }
            }

            string certPath = Resolve(c.CertificatePath!);
            string keyPath = Resolve(c.KeyPath!);
            string? chainPath = c.ChainPath is null ? null : Resolve(c.ChainPath);
            string? ocspPath = c.OcspResponseFile is null ? null : Resolve(c.OcspResponseFile);
            if (c.SelfSigned && (!File.Exists(certPath) || !File.Exists(keyPath)))
            {
                if (!_generateSelfSigned)
                {
                    _certificatesPending = true;
                    continue; // made on first start
                }

                try
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(certPath)!);
                    Directory.CreateDirectory(Path.GetDirectoryName(keyPath)!);
                    SelfSignedCertificate.WritePem(certPath, keyPath,
                        c.Hosts!.Select(h => h.StartsWith("*.", StringComparison.Ordinal) ? h : h).ToArray(), TimeSpan.FromDays(365));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
                {
                    Error($"{p}.certificatePath", $"cannot create a self-signed certificate: {e.Message}");
                    continue;
                }
            }

            foreach (string? file in new[] { certPath, keyPath, chainPath, ocspPath })
            {
                if (file is not null)
                {
                    TlsFile(file);
                }
            }

            try
            {
                loaded.Add(Unchanged(PemCertificateLoader.Load(new CertificateSource(c.Name!, c.Hosts!, certPath, keyPath, chainPath, ocspPath)), ocspPath));
            }
            catch (CertificateLoadException e)
            {
                Error($"{p}.certificatePath", e.Message);
            }
        }

        return loaded;
    }

    /// <summary>
    /// The acme block: an https directory (RFC 8555 §6.1), a challenge this appliance can answer, and names it can
    /// prove. Wildcards are refused: CAs validate them with dns-01 only (RFC 8555 §7.1.3, as Let's Encrypt does).
    /// </summary>
    private AcmeCertificateModel? CompileAcme(CertificateConfig c, string p, string stateDirectory)
    {
        AcmeConfig a = c.Acme!;
        int before = _errors.Count;
        Uri? directory = null;
        if (string.IsNullOrWhiteSpace(a.Directory))
        {
            Error($"{p}.acme.directory", "is required: the ACME server's directory URL");
        }
        else if (!Uri.TryCreate(a.Directory, UriKind.Absolute, out directory) || directory.Scheme != Uri.UriSchemeHttps || directory.Host.Length == 0)
        {
            Error($"{p}.acme.directory", $"'{a.Directory}' is not an https URL (RFC 8555 §6.1: ACME runs over HTTPS)");
        }

        if (a.Email is { } email && (email.Length > 254 || email.Count(ch => ch == '@') != 1 || email.StartsWith('@') || email.EndsWith('@')
            || email.Any(ch => char.IsWhiteSpace(ch) || char.IsControl(ch) || ch is ',' or ':' or '<' or '>')))
        {
            Error($"{p}.acme.email", $"'{email}' is not an email address");
        }

        Tls.Acme.AcmeChallengeType challenge = Tls.Acme.AcmeChallengeType.Http01;
        switch (a.Challenge)
        {
            case null or "http-01":
                break;
            case "tls-alpn-01":
                challenge = Tls.Acme.AcmeChallengeType.TlsAlpn01;
                break;
            default:
                Error($"{p}.acme.challenge", $"'{a.Challenge}' is not \"http-01\" or \"tls-alpn-01\"");
                break;
        }

        var hosts = new List<string>();
        for (int j = 0; j < (c.Hosts?.Count ?? 0); j++)
        {
            if (!ServerNamePattern.TryNormalize(c.Hosts![j], out string? host, out _))
            {
                continue; // reported with the hosts
            }

            if (host.StartsWith("*.", StringComparison.Ordinal))
            {
                Error($"{p}.hosts[{j}]", $"'{c.Hosts[j]}' is a wildcard: http-01 and tls-alpn-01 cannot prove wildcards (RFC 8555 §7.1.3: CAs want dns-01 for them); list the names, or use certificatePath/keyPath for a wildcard certificate");
                continue;
            }

            if (!hosts.Contains(host))
            {
                hosts.Add(host);
            }
        }

        System.Security.Cryptography.X509Certificates.X509Certificate2Collection? anchors = null;
        string? caFile = null;
        if (a.CaFile is not null)
        {
            caFile = Resolve(a.CaFile);
            anchors = [];
            try
            {
                anchors.ImportFromPemFile(caFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                Error($"{p}.acme.caFile", $"cannot read '{a.CaFile}': {e.Message}");
            }

            if (anchors.Count == 0 && _errors.Count == before)
            {
                Error($"{p}.acme.caFile", $"'{a.CaFile}' holds no certificate");
            }
        }

        if (_errors.Count > before || hosts.Count == 0)
        {
            return null;
        }

        string folder = Path.Combine(stateDirectory, "acme");
        return new AcmeCertificateModel
        {
            Name = c.Name!,
            Hosts = hosts,
            Directory = directory!,
            Email = a.Email,
            Challenge = challenge,
            CaFile = caFile,
            TrustAnchors = anchors,
            CertificatePath = Path.Combine(folder, c.Name + ".crt"),
            KeyPath = Path.Combine(folder, c.Name + ".key"),
            AcmeDirectory = folder,
        };
    }

    /// <summary>
    /// What an ACME certificate serves: the issued pair once there is one (an expired or damaged one is skipped: the
    /// renewer issues again); else the configured files; else a self-signed stand-in made on start, so the listeners
    /// can start before the first issuance. Null when the configured files should be loaded (or nothing can be yet).
    /// </summary>
    private LoadedCertificate? LoadAcmeCertificate(CertificateConfig c, AcmeCertificateModel acme, string p)
    {
        if (File.Exists(acme.CertificatePath) && File.Exists(acme.KeyPath))
        {
            try
            {
                return PemCertificateLoader.Load(new CertificateSource(c.Name!, c.Hosts!, acme.CertificatePath, acme.KeyPath, null));
            }
            catch (CertificateLoadException)
            {
                // Served from what follows until the renewer replaces it (it checks the pair the same way).
            }
        }

        if (!string.IsNullOrWhiteSpace(c.CertificatePath))
        {
            return null;
        }

        string certPath = Path.Combine(acme.AcmeDirectory, c.Name + ".self-signed.crt");
        string keyPath = Path.Combine(acme.AcmeDirectory, c.Name + ".self-signed.key");
        var source = new CertificateSource(c.Name!, c.Hosts!, certPath, keyPath, null);
        if (File.Exists(certPath) && File.Exists(keyPath))
        {
            try
            {
                LoadedCertificate standIn = PemCertificateLoader.Load(source);
                if (acme.Hosts.All(h => standIn.SubjectAlternativeNames.Contains(h, StringComparer.OrdinalIgnoreCase)))
                {
                    return standIn;
                }
            }
            catch (CertificateLoadException)
            {
                // expired or damaged: made again below
            }
        }

        if (!_generateSelfSigned)
        {
            _certificatesPending = true;
            return null;
        }

        try
        {
            Tls.Acme.AcmeAccountStore.CreatePrivateDirectory(acme.AcmeDirectory);
            SelfSignedCertificate.WritePem(certPath, keyPath, acme.Hosts, TimeSpan.FromDays(90));
            return PemCertificateLoader.Load(source);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or CertificateLoadException)
        {
            Error($"{p}.acme", $"cannot create the self-signed stand-in served until the first issuance: {e.Message}");
            return null;
        }
    }

    /// <summary>A challenge needs a listener to answer it: http-01 a plain one, tls-alpn-01 a TLS one.</summary>
    private void CheckAcmeListeners(ApplianceConfig config, List<ListenerModel> listeners)
    {
        if (listeners.Count == 0)
        {
            return;
        }

        for (int i = 0; i < (config.Certificates?.Count ?? 0); i++)
        {
            string? challenge = config.Certificates![i]?.Acme is { } a ? a.Challenge ?? "http-01" : null;
            if (challenge == "http-01" && !listeners.Any(l => !l.Tls))
            {
                Error($"certificates[{i}].acme.challenge", "http-01 is answered on a plain (tls: false) listener, and there is none; add one (port 80) or use tls-alpn-01");
            }
            else if (challenge == "tls-alpn-01" && !listeners.Any(l => l.Tls))
            {
                Error($"certificates[{i}].acme.challenge", "tls-alpn-01 is answered on a TLS listener, and there is none; add one (port 443) or use http-01");
            }
        }
    }

    // ---------------- listeners ----------------

    private byte[]? CompileHsts(HstsConfig? h, string p)
    {
        if (h is null)
        {
            return null;
        }

        TimeSpan maxAge = ParseDuration(h.MaxAge, $"{p}.maxAge", TimeSpan.FromDays(365));
        if (h.Preload && (!h.IncludeSubDomains || maxAge < TimeSpan.FromDays(365)))
        {
            Error($"{p}.preload", "preload lists require includeSubDomains and a maxAge of at least 365d");
        }

        return Encoding.ASCII.GetBytes($"max-age={(long)maxAge.TotalSeconds}{(h.IncludeSubDomains ? "; includeSubDomains" : "")}{(h.Preload ? "; preload" : "")}");
    }

    private (Tls.ClientCertificateMode, System.Security.Cryptography.X509Certificates.X509Certificate2Collection?) CompileClientCertificates(
        ClientCertificatesConfig? c, string p, bool tls)
    {
        if (c is null || ParseClientCertificateMode(c.Mode, p) is not { } mode || mode == Tls.ClientCertificateMode.Off)
        {
            return (Tls.ClientCertificateMode.Off, null);
        }

        if (!tls)
        {
            Error($"{p}.mode", "client certificates need a TLS listener");
            return (mode, null);
        }

        if (string.IsNullOrEmpty(c.CaFile))
        {
            Error($"{p}.caFile", "is required: the CAs client certificates must chain to");
            return (mode, null);
        }

        return (mode, LoadAuthorities(c.CaFile, $"{p}.caFile"));
    }

    /// <summary>A clientCertificates.mode: off (or absent), optional or required; null once an unknown one is reported.</summary>
    private Tls.ClientCertificateMode? ParseClientCertificateMode(string? mode, string p)
    {
        switch (mode)
        {
            case null or "off":
                return Tls.ClientCertificateMode.Off;
            case "optional":
                return Tls.ClientCertificateMode.Optional;
            case "required":
                return Tls.ClientCertificateMode.Required;
            default:
                Error($"{p}.mode", $"'{mode}' is not off, optional or required");
                return null;
        }
    }

    /// <summary>A PEM bundle of CAs (client certificate trust); null, with the error reported, when unreadable or empty.</summary>
    private X509Certificate2Collection? LoadAuthorities(string file, string path)
    {
        var cas = new X509Certificate2Collection();
        try
        {
            cas.ImportFromPemFile(TlsFile(file));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            Error(path, $"cannot read '{file}': {e.Message}");
            return null;
        }

        if (cas.Count == 0)
        {
            Error(path, $"'{file}' holds no certificate");
            return null;
        }

        return cas;
    }

    /// <summary>
    /// routes[].clientCertificates: the mode, and the CAs the route checks against (its caFile, else its tenant's for a
    /// route that asks for certificates; null: the listener's).
    /// </summary>
    private (Tls.ClientCertificateMode, X509Certificate2Collection?) CompileRouteClientCertificates(RouteConfig r, string p)
    {
        RouteClientCertificatesConfig? c = r.ClientCertificates;
        if (c is null || ParseClientCertificateMode(c.Mode, p) is not { } mode)
        {
            return (Tls.ClientCertificateMode.Off, null);
        }

        if (mode == Tls.ClientCertificateMode.Off)
        {
            if (c.CaFile is not null)
            {
                Error($"{p}.caFile", "applies to mode optional or required only");
            }

            return (mode, null);
        }

        X509Certificate2Collection? cas = c.CaFile is null ? null
            : c.CaFile.Length == 0 ? ErrorNull($"{p}.caFile", "is empty: name a PEM bundle of CAs, or leave it out for the tenant's or the listener's")
            : LoadAuthorities(c.CaFile, $"{p}.caFile");
        cas ??= r.Tenant is not null && c.CaFile is null ? _tenantAuthorities.GetValueOrDefault(r.Tenant) : null;
        if (cas is not null && !_routeAuthorities.Contains(cas))
        {
            _routeAuthorities.Add(cas);
        }

        return (mode, cas);
    }

    private X509Certificate2Collection? ErrorNull(string path, string message)
    {
        Error(path, message);
        return null;
    }

    /// <summary>
    /// A route that checks client certificates needs a listener that asks for them in the handshake: a client sends
    /// one only when asked (the TLS CertificateRequest), and a route cannot ask. Every TLS listener serves every
    /// route, so one TLS listener with clientCertificates on (optional is the nginx way: ssl_verify_client optional)
    /// is enough; the route's CAs are then accepted in that listener's handshake too.
    /// </summary>
    private void CheckRouteClientCertificates(List<RouteConfig>? routes, List<ListenerModel> listeners)
    {
        if (listeners.Count == 0 || listeners.Any(l => l.Tls && l.ClientCertificates != Tls.ClientCertificateMode.Off))
        {
            return;
        }

        for (int i = 0; i < (routes?.Count ?? 0); i++)
        {
            if (routes![i]?.ClientCertificates?.Mode is "optional" or "required")
            {
                Error($"routes[{i}].clientCertificates.mode", $"'{routes[i]!.ClientCertificates!.Mode}' needs a TLS listener that asks for client certificates, and none does: set a listener's clientCertificates.mode to \"optional\" (or \"required\") with its caFile");
            }
        }
    }

    private List<ListenerModel> CompileListeners(List<ListenerConfig>? listeners, List<CertificateConfig>? certificates)
    {
        var result = new List<ListenerModel>();
        if (listeners is null || listeners.Count == 0)
        {
            Error("listeners", "at least one listener is required");
            return result;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        var endpoints = new HashSet<IPEndPoint>();
        var certificateNames = new HashSet<string>((certificates ?? []).Where(c => c?.Name is not null).Select(c => c.Name!), StringComparer.Ordinal);
        for (int i = 0; i < listeners.Count; i++)
        {
            ListenerConfig l = listeners[i];
            string p = $"listeners[{i}]";
            if (l is null)
            {
                Error(p, "must be an object");
                continue;
            }

            int before = _errors.Count;
            string name = l.Name ?? $"listener{i}";
            if (!IsIdentifier(name))
            {
                Error($"{p}.name", "letters, digits, '-', '_' and '.' only");
            }
            else if (!names.Add(name))
            {
                Error($"{p}.name", $"duplicate listener name '{name}'");
            }

            IPEndPoint? endPoint = null;
            if (string.IsNullOrWhiteSpace(l.Address))
            {
                Error($"{p}.address", "is required, e.g. \"127.0.0.1:8443\" or \"[::]:443\"");
            }
            else if (!TryParseEndPoint(l.Address, out endPoint))
            {
                Error($"{p}.address", $"'{l.Address}' is not ip:port (IPv6 in brackets, '*' for any address)");
            }
            else if (endPoint!.Port != 0 && !endpoints.Add(endPoint))
            {
                Error($"{p}.address", $"{l.Address} is used by another listener");
            }

            var protocols = new List<SslApplicationProtocol>();
            // TLS listeners offer h2 and http/1.1 by ALPN; plain ones speak HTTP/1.1 unless "h2" (prior knowledge) is listed.
            List<string> requested = l.Protocols ?? (l.Tls ? ["h2", "http/1.1"] : ["http/1.1"]);
            if (requested.Count == 0)
            {
                Error($"{p}.protocols", "needs at least one protocol");
            }

            for (int j = 0; j < requested.Count; j++)
            {
                switch (requested[j])
                {
                    case "http/1.1":
                        protocols.Add(SslApplicationProtocol.Http11);
                        break;
                    case "h2":
                        protocols.Add(SslApplicationProtocol.Http2);
                        break;
                    default:
                        Error($"{p}.protocols[{j}]", $"unknown protocol '{requested[j]}'; expected \"h2\" or \"http/1.1\"");
                        break;
                }
            }

            if (l.Tls)
            {
                if (certificateNames.Count == 0)
                {
                    Error($"{p}.tls", "a TLS listener needs at least one entry in 'certificates'");
                }

                if (l.RedirectToHttps)
                {
                    Error($"{p}.redirectToHttps", "only a plain (tls: false) listener can redirect to https");
                }
            }

            if (l.DefaultCertificate is not null && !certificateNames.Contains(l.DefaultCertificate))
            {
                Error($"{p}.defaultCertificate", $"no certificate named '{l.DefaultCertificate}'");
            }

            if (l.HttpsPort is { } hp && hp is < 1 or > 65535)
            {
                Error($"{p}.httpsPort", "must be 1-65535");
            }

            if (l.Backlog is { } bl && bl is < 1 or > 65535)
            {
                Error($"{p}.backlog", "must be 1-65535");
            }

            ServerLimits limits = CompileLimits(l.Limits, $"{p}.limits");
            int maxConnections = l.Limits?.MaxConnections ?? 100_000;
            if (maxConnections < 1)
            {
                Error($"{p}.limits.maxConnections", "must be at least 1");
            }

            (Tls.ClientCertificateMode mtls, System.Security.Cryptography.X509Certificates.X509Certificate2Collection? clientCas) =
                CompileClientCertificates(l.ClientCertificates, $"listeners[{i}].clientCertificates", l.Tls);
            if (_errors.Count > before)
            {
                continue;
            }

            // Routes' and tenants' CAs complete the handshake too (the route decides per request); the CRL file may
            // hold their CRLs, and must, since the check fails closed.
            X509Certificate2Collection? additional = mtls != Tls.ClientCertificateMode.Off && _routeAuthorities.Count > 0
                ? [.. _routeAuthorities.SelectMany(c => c)]
                : null;
            result.Add(new ListenerModel
            {
                ClientCertificates = mtls,
                ClientCertificateAuthorities = clientCas,
                AdditionalClientCertificateAuthorities = additional,
                ClientRevocationList = CompileRevocationList(l.ClientCertificates,
                    additional is null || clientCas is null ? clientCas : [.. clientCas, .. additional], $"listeners[{i}].clientCertificates.crlFile"),
                Name = name,
                EndPoint = endPoint!,
                Tls = l.Tls,
                Protocols = protocols,
                RedirectToHttps = l.RedirectToHttps,
                HttpsPort = l.HttpsPort ?? 443,
                DefaultCertificate = l.DefaultCertificate ?? (certificates is { Count: > 0 } ? certificates[0]?.Name : null),
                RequireSni = l.RequireSni,
                Backlog = l.Backlog ?? 511,
                ReusePort = l.ReusePort,
                MaxConnections = maxConnections,
                Limits = limits,
            });
        }

        return result;
    }

    private ServerLimits CompileLimits(ListenerLimitsConfig? c, string p)
    {
        var d = new ServerLimits();
        if (c is null)
        {
            return d;
        }

        int lineSize = Positive(c.MaxRequestLineSize, $"{p}.maxRequestLineSize", d.Http1.MaxRequestLineBytes, 64, 1024 * 1024);
        int headerSize = Positive(c.MaxRequestHeadersSize, $"{p}.maxRequestHeadersSize", d.Http1.MaxHeaderBytes, 256, 16 * 1024 * 1024);
        int headerCount = Positive(c.MaxRequestHeaderCount, $"{p}.maxRequestHeaderCount", d.Http1.MaxHeaderCount, 1, 10_000);
        if (c.MaxRequestBodySize is < 0)
        {
            Error($"{p}.maxRequestBodySize", "must be 0 or more");
        }

        return d with
        {
            HandshakeTimeout = ParseDuration(c.HandshakeTimeout, $"{p}.handshakeTimeout", d.HandshakeTimeout),
            RequestHeadersTimeout = ParseDuration(c.RequestHeadersTimeout, $"{p}.requestHeadersTimeout", d.RequestHeadersTimeout),
            KeepAliveTimeout = ParseDuration(c.KeepAliveTimeout, $"{p}.keepAliveTimeout", d.KeepAliveTimeout),
            MinRequestBodyRate = c.MinRequestBodyRate is { } rate ? (rate < 0 ? ErrorValue($"{p}.minRequestBodyRate", "must be 0 or more", 0) : rate) : d.MinRequestBodyRate,
            MinRequestBodyRateGracePeriod = ParseDuration(c.MinRequestBodyRateGracePeriod, $"{p}.minRequestBodyRateGracePeriod", d.MinRequestBodyRateGracePeriod),
            MaxRequestBodySize = c.MaxRequestBodySize ?? d.MaxRequestBodySize,
            MaxRequestsPerConnection = Positive(c.MaxRequestsPerConnection, $"{p}.maxRequestsPerConnection", d.MaxRequestsPerConnection, 1, int.MaxValue),
            Http1 = new Http1ParserLimits
            {
                MaxRequestLineBytes = lineSize,
                MaxHeaderBytes = headerSize,
                MaxHeaderCount = headerCount,
            },
            Http2 = CompileHttp2Limits(c.Http2, $"{p}.http2"),
        };
    }

    private Http2Limits CompileHttp2Limits(Http2LimitsConfig? c, string p)
    {
        var d = new Http2Limits();
        if (c is null)
        {
            return d;
        }

        return new Http2Limits
        {
            MaxConcurrentStreams = Positive(c.MaxConcurrentStreams, $"{p}.maxConcurrentStreams", d.MaxConcurrentStreams, 1, 100_000),
            // RFC 9113 §6.5.2: windows up to 2^31-1, frames 16 KiB to 16 MiB.
            InitialStreamWindowSize = Positive(c.InitialStreamWindowSize, $"{p}.initialStreamWindowSize", d.InitialStreamWindowSize, 1, int.MaxValue),
            InitialConnectionWindowSize = Positive(c.InitialConnectionWindowSize, $"{p}.initialConnectionWindowSize", d.InitialConnectionWindowSize, 65_535, int.MaxValue),
            MaxFrameSize = Positive(c.MaxFrameSize, $"{p}.maxFrameSize", d.MaxFrameSize, 16_384, 16_777_215),
            HeaderTableSize = Positive(c.HeaderTableSize, $"{p}.headerTableSize", d.HeaderTableSize, 0, 1024 * 1024),
            MaxResetsPerInterval = Positive(c.MaxResetsPerInterval, $"{p}.maxResetsPerInterval", d.MaxResetsPerInterval, 1, int.MaxValue),
            MaxContinuationFrames = Positive(c.MaxContinuationFrames, $"{p}.maxContinuationFrames", d.MaxContinuationFrames, 1, 10_000),
            MaxControlFramesPerInterval = Positive(c.MaxControlFramesPerInterval, $"{p}.maxControlFramesPerInterval", d.MaxControlFramesPerInterval, 1, int.MaxValue),
            MaxEmptyDataFramesPerInterval = Positive(c.MaxEmptyDataFramesPerInterval, $"{p}.maxEmptyDataFramesPerInterval", d.MaxEmptyDataFramesPerInterval, 1, int.MaxValue),
            FloodInterval = ParseDuration(c.FloodInterval, $"{p}.floodInterval", d.FloodInterval),
            MaxQueuedOutputBytes = Positive(c.MaxQueuedOutputBytes, $"{p}.maxQueuedOutputBytes", d.MaxQueuedOutputBytes, 16 * 1024, int.MaxValue),
            StreamSendTimeout = ParseDuration(c.StreamSendTimeout, $"{p}.streamSendTimeout", d.StreamSendTimeout),
        };
    }

    private int ErrorValue(string path, string message, int value)
    {
        Error(path, message);
        return value;
    }

    private int Positive(int? value, string path, int fallback, int min, int max)
    {
        if (value is null)
        {
            return fallback;
        }

        if (value < min || value > max)
        {
            Error(path, $"must be between {min} and {max}");
            return fallback;
        }

        return value.Value;
    }

    private TimeSpan ParseDuration(string? text, string path, TimeSpan fallback)
    {
        if (text is null)
        {
            return fallback;
        }

        if (!Duration.TryParse(text, out TimeSpan value) || value <= TimeSpan.Zero)
        {
            Error(path, $"'{text}' is not a positive duration like \"500ms\", \"10s\", \"5m\"");
            return fallback;
        }

        return value;
    }

    internal static bool TryParseEndPoint(string text, out IPEndPoint? endPoint)
    {
        endPoint = null;
        text = text.Trim();
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            return false;
        }

        string host = text[..colon];
        if (!int.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, null, out int port) || port > 65535)
        {
            return false;
        }

        IPAddress? address;
        if (host == "*")
        {
            address = IPAddress.IPv6Any;
        }
        else if (host.StartsWith('[') && host.EndsWith(']'))
        {
            if (!IPAddress.TryParse(host[1..^1], out address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                return false;
            }
        }
        else if (!IPAddress.TryParse(host, out address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
        {
            return false; // names are not resolved: a listener binds an address
        }

        endPoint = new IPEndPoint(address, port);
        return true;
    }

    // ---------------- routes ----------------

    private RouteTable CompileRoutes(List<RouteConfig>? routes, Dictionary<string, TenantConfig> tenants, Dictionary<string, ClusterModel> clusters)
    {
        var models = new List<RouteModel>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < (routes?.Count ?? 0); i++)
        {
            RouteConfig r = routes![i];
            string p = $"routes[{i}]";
            if (r is null)
            {
                Error(p, "must be an object");
                continue;
            }

            int before = _errors.Count;
            if (!IsIdentifier(r.Id))
            {
                Error($"{p}.id", "is required: letters, digits, '-', '_' and '.'");
            }
            else if (!ids.Add(r.Id!))
            {
                Error($"{p}.id", $"duplicate route id '{r.Id}'");
            }

            if (r.Tenant is not null && !tenants.ContainsKey(r.Tenant))
            {
                Error($"{p}.tenant", $"no tenant with id '{r.Tenant}'");
            }

            RouteMatchConfig match = r.Match ?? new RouteMatchConfig();
            CheckHostPatterns(match.Hosts, $"{p}.match.hosts");
            PathTemplate? path = PathTemplate.MatchAll;
            if (match.Path is not null && match.PathPrefix is not null)
            {
                Error($"{p}.match", "give either 'path' or 'pathPrefix', not both");
            }
            else if (match.Path is not null)
            {
                path = PathTemplate.TryParse(match.Path, out string? error);
                if (path is null)
                {
                    Error($"{p}.match.path", error!);
                }
            }
            else if (match.PathPrefix is not null)
            {
                path = PathTemplate.TryParsePrefix(match.PathPrefix, out string? error);
                if (path is null)
                {
                    Error($"{p}.match.pathPrefix", error!);
                }
            }

            uint mask = 0;
            var custom = new List<byte[]>();
            for (int j = 0; j < (match.Methods?.Count ?? 0); j++)
            {
                string m = match.Methods![j];
                byte[] bytes = Encoding.ASCII.GetBytes(m ?? "");
                if (string.IsNullOrEmpty(m) || HttpCharacters.IndexOfInvalidTokenChar(bytes) >= 0 || m.Any(c => c > 127))
                {
                    Error($"{p}.match.methods[{j}]", $"'{m}' is not a method token");
                    continue;
                }

                HttpMethod method = HttpMethods.FromBytes(bytes);
                if (method == HttpMethod.Custom)
                {
                    custom.Add(bytes);
                }
                else
                {
                    mask |= 1u << (int)method;
                }
            }

            if (r.Transforms is not null && r.Cluster is null)
            {
                Error($"{p}.transforms", "only routes with a 'cluster' have transforms");
            }

            int handlers = (r.Direct is null ? 0 : 1) + (r.Redirect is null ? 0 : 1) + (r.Cluster is null ? 0 : 1) + (r.Ai is null ? 0 : 1);
            RouteHandler? handler = null;
            if (handlers != 1)
            {
                Error(p, "needs exactly one handler: 'direct', 'redirect', 'cluster' or 'ai'");
            }
            else if (r.Ai is { } ai)
            {
                handler = CompileAiRoute(ai, p);
            }
            else if (r.Direct is { } direct)
            {
                handler = CompileDirect(direct, $"{p}.direct");
            }
            else if (r.Redirect is { } redirect)
            {
                if (redirect.Status is not (301 or 302 or 303 or 307 or 308))
                {
                    Error($"{p}.redirect.status", "must be 301, 302, 303, 307 or 308");
                }

                if (string.IsNullOrEmpty(redirect.Location))
                {
                    Error($"{p}.redirect.location", "is required");
                }
                else if (!IsValidFieldValue(redirect.Location))
                {
                    Error($"{p}.redirect.location", "must be printable ASCII (percent-encode the rest)");
                }
                else if (path is not null)
                {
                    handler = RedirectHandler.TryCreate(redirect.Status, redirect.Location, path.ParameterNames, out string? error);
                    if (handler is null)
                    {
                        Error($"{p}.redirect.location", error!);
                    }
                }
            }
            else if (r.Cluster is not null)
            {
                if (clusters.TryGetValue(r.Cluster, out ClusterModel? cluster))
                {
                    ProxyTransforms? transforms = CompileTransforms(r.Transforms, $"{p}.transforms");
                    handler = transforms is null ? null : new ProxyHandler(cluster, transforms);
                }
                else
                {
                    Error($"{p}.cluster", $"no cluster with id '{r.Cluster}'");
                }
            }

            (Tls.ClientCertificateMode clientCertificates, X509Certificate2Collection? clientCas) =
                CompileRouteClientCertificates(r, $"{p}.clientCertificates");
            Policies.PolicyChain? policies = CompilePolicies(r.Policies, r.Id, r.Tenant, $"{p}.policies");
            if (_errors.Count > before || handler is null || path is null)
            {
                continue;
            }

            models.Add(new RouteModel
            {
                ClientCertificates = clientCertificates,
                ClientCertificateAuthorities = clientCas,
                Id = r.Id!,
                Tenant = r.Tenant,
                Order = r.Order,
                Index = i,
                Hosts = match.Hosts?.Select(h => h.ToLowerInvariant().TrimEnd('.')).ToArray() ?? [],
                Path = path,
                MethodMask = mask,
                CustomMethods = custom.ToArray(),
                Handler = handler,
                Hsts = CompileHsts(r.Hsts, $"{p}.hsts"),
                AccessLog = r.AccessLog ?? true,
                Policies = policies,
            });
        }

        return new RouteTable(models);
    }

    private Dictionary<string, ClusterModel> CompileClusters(List<ClusterConfig>? clusters)
    {
        var result = new Dictionary<string, ClusterModel>(StringComparer.Ordinal);
        for (int i = 0; i < (clusters?.Count ?? 0); i++)
        {
            ClusterConfig c = clusters![i];
            string p = $"clusters[{i}]";
            if (c is null)
            {
                Error(p, "must be an object");
                continue;
            }

            int before = _errors.Count;
            if (!IsIdentifier(c.Id))
            {
                Error($"{p}.id", "is required: letters, digits, '-', '_' and '.'");
            }
            else if (result.ContainsKey(c.Id!))
            {
                Error($"{p}.id", $"duplicate cluster id '{c.Id}'");
            }

            LoadBalancingPolicy policy = LoadBalancingPolicy.RoundRobin;
            switch (c.LoadBalancing)
            {
                case null or "roundRobin":
                    break;
                case "leastRequests":
                    policy = LoadBalancingPolicy.LeastRequests;
                    break;
                case "powerOfTwoChoices":
                    policy = LoadBalancingPolicy.PowerOfTwoChoices;
                    break;
                case "consistentHash":
                    policy = LoadBalancingPolicy.ConsistentHash;
                    break;
                default:
                    Error($"{p}.loadBalancing", $"'{c.LoadBalancing}' is not roundRobin, leastRequests, powerOfTwoChoices or consistentHash");
                    break;
            }

            var budgetDefaults = new RetryBudget();
            var retryBudget = new RetryBudget
            {
                Percent = Positive(c.RetryBudget?.Percent, $"{p}.retryBudget.percent", budgetDefaults.Percent, 0, 100),
                MinRetryConcurrency = Positive(c.RetryBudget?.MinRetryConcurrency, $"{p}.retryBudget.minRetryConcurrency", budgetDefaults.MinRetryConcurrency, 0, 100_000),
            };
            UpstreamProtocol protocol = UpstreamProtocol.Http11;
            switch (c.Protocol)
            {
                case null or "http1":
                    break;
                case "http2":
                    protocol = UpstreamProtocol.Http2;
                    break;
                default:
                    Error($"{p}.protocol", $"'{c.Protocol}' is not http1 or http2");
                    break;
            }

            HashKey? hashKey = HashKey.Parse(c.HashOn);
            if (hashKey is null)
            {
                Error($"{p}.hashOn", $"'{c.HashOn}' is not clientIp, header:NAME or cookie:NAME");
            }

            (ActiveHealthOptions? active, PassiveHealthOptions passive) = CompileHealth(c.HealthCheck, $"{p}.healthCheck");

            var defaults = new UpstreamTimeouts();
            var timeouts = new UpstreamTimeouts
            {
                Connect = ParseDuration(c.Timeouts?.Connect, $"{p}.timeouts.connect", defaults.Connect),
                ResponseHeaders = ParseDuration(c.Timeouts?.ResponseHeaders, $"{p}.timeouts.responseHeaders", defaults.ResponseHeaders),
                Idle = ParseDuration(c.Timeouts?.Idle, $"{p}.timeouts.idle", defaults.Idle),
                TunnelIdle = ParseDuration(c.Timeouts?.TunnelIdle, $"{p}.timeouts.tunnelIdle", defaults.TunnelIdle),
                Total = c.Timeouts?.Total is null ? TimeSpan.Zero : ParseDuration(c.Timeouts.Total, $"{p}.timeouts.total", TimeSpan.Zero),
            };
            int maxConnections = Positive(c.MaxConnectionsPerDestination, $"{p}.maxConnectionsPerDestination", 1024, 1, 1_000_000);
            int maxPending = Positive(c.MaxPendingRequestsPerDestination, $"{p}.maxPendingRequestsPerDestination", 1024, 0, 1_000_000);
            if (c.Destinations is null || c.Destinations.Count == 0)
            {
                Error($"{p}.destinations", "needs at least one destination");
            }

            var parsed = new List<(string Address, string Host, int Port, int Weight)>();
            for (int j = 0; j < (c.Destinations?.Count ?? 0); j++)
            {
                DestinationConfig? d = c.Destinations![j];
                string dp = $"{p}.destinations[{j}]";
                if (d?.Address is null || !TrySplitHostPort(d.Address, out string host, out int port))
                {
                    Error($"{dp}.address", $"'{d?.Address}' is not host:port");
                    continue;
                }

                if (d.Weight is < 1 or > 1000)
                {
                    Error($"{dp}.weight", "must be between 1 and 1000");
                    continue;
                }

                parsed.Add((d.Address, host, port, d.Weight));
            }

            if (_errors.Count > before)
            {
                continue;
            }

            UpstreamTlsOptions? tls = CompileUpstreamTls(c.Tls, $"{p}.tls");
            if (_errors.Count > before)
            {
                continue;
            }

            if (Unchanged(c) is { } running)
            {
                result[c.Id!] = running; // same config: keep its pools and health
                _carriedOver.Add(running);
                continue;
            }

            DestinationModel[] destinations = [.. parsed.Select(d => new DestinationModel(d.Address, d.Host, d.Port, d.Weight, maxConnections, timeouts, tls, protocol, maxPending))];
            result[c.Id!] = new ClusterModel(c.Id!, destinations, policy, timeouts, hashKey, passive, active) { Tls = tls, Protocol = protocol, RetryBudget = retryBudget };
        }

        return result;
    }

    private IReadOnlyList<IPNetwork> CompileTrustedProxies(List<string>? cidrs)
    {
        var result = new List<IPNetwork>();
        for (int i = 0; i < (cidrs?.Count ?? 0); i++)
        {
            string text = cidrs![i] ?? "";
            // Lenient as it always was: "10.0.0.1/8" is taken as 10.0.0.0/8 (the access lists refuse it as ambiguous).
            if (IPNetwork.TryParse(text.Contains('/') ? text : text + (text.Contains(':') ? "/128" : "/32"), out IPNetwork network))
            {
                result.Add(network);
            }
            else
            {
                Error($"server.trustedProxies[{i}]", $"'{text}' is not an address or CIDR (10.0.0.0/8, ::1)");
            }
        }

        return result;
    }

    private ProxyTransforms? CompileTransforms(TransformsConfig? t, string p)
    {
        if (t is null)
        {
            return _trustedProxies.Count == 0 ? ProxyTransforms.Default : new ProxyTransforms { TrustedProxies = _trustedProxies };
        }

        int before = _errors.Count;
        foreach ((string? value, string field) in new[] { (t.StripPrefix, "stripPrefix"), (t.AddPrefix, "addPrefix") })
        {
            if (value is not null && (!value.StartsWith('/') || value.Any(ch => ch <= ' ' || ch >= 127 || ch is '?' or '#')))
            {
                Error($"{p}.{field}", "must start with '/' and hold only visible ASCII without '?' or '#'");
            }
        }

        ForwardedMode mode = ForwardedMode.Set;
        switch (t.XForwarded)
        {
            case null or "set":
                break;
            case "append":
                mode = ForwardedMode.Append;
                break;
            case "off":
                mode = ForwardedMode.Off;
                break;
            default:
                Error($"{p}.xForwarded", $"'{t.XForwarded}' is not set, append or off");
                break;
        }

        foreach ((string? name, string field) in new[] { (t.ClientCertificateHeader, "clientCertificateHeader"), (t.ConsumerHeader, "consumerHeader"), (t.SubjectHeader, "subjectHeader") })
        {
            if (name is not null)
            {
                CheckField(name, "", $"{p}.{field}");
            }
        }

        var request = CompileHeaderTransforms(t.RequestHeaders, $"{p}.requestHeaders");
        var response = CompileHeaderTransforms(t.ResponseHeaders, $"{p}.responseHeaders");
        if (_errors.Count > before)
        {
            return null;
        }

        return new ProxyTransforms
        {
            StripPrefix = Encoding.ASCII.GetBytes(t.StripPrefix?.TrimEnd('/') ?? ""),
            AddPrefix = Encoding.ASCII.GetBytes(t.AddPrefix ?? ""),
            RequestSet = request.Set,
            RequestAdd = request.Add,
            RequestRemove = request.Remove,
            ResponseSet = response.Set,
            ResponseAdd = response.Add,
            ResponseRemove = response.Remove,
            ClientCertificateHeader = t.ClientCertificateHeader is { Length: > 0 } h ? Encoding.ASCII.GetBytes(h) : null,
            ConsumerHeader = t.ConsumerHeader is { Length: > 0 } consumer ? Encoding.ASCII.GetBytes(consumer) : null,
            SubjectHeader = t.SubjectHeader is { Length: > 0 } subject ? Encoding.ASCII.GetBytes(subject) : null,
            XForwarded = mode,
            Forwarded = t.Forwarded,
            TrustedProxies = _trustedProxies,
        };
    }

    private ((byte[], byte[])[] Set, (byte[], byte[])[] Add, byte[][] Remove) CompileHeaderTransforms(HeaderTransformsConfig? h, string p)
    {
        if (h is null)
        {
            return ([], [], []);
        }

        (byte[], byte[])[] Pairs(Dictionary<string, string>? map, string field) =>
            [.. (map ?? []).Where(kv => CheckField(kv.Key, kv.Value, $"{p}.{field}.{kv.Key}"))
                .Select(kv => (Encoding.ASCII.GetBytes(kv.Key), Encoding.ASCII.GetBytes(kv.Value)))];

        var remove = new List<byte[]>();
        for (int i = 0; i < (h.Remove?.Count ?? 0); i++)
        {
            if (CheckField(h.Remove![i], "", $"{p}.remove[{i}]"))
            {
                remove.Add(Encoding.ASCII.GetBytes(h.Remove[i]));
            }
        }

        return (Pairs(h.Set, "set"), Pairs(h.Add, "add"), [.. remove]);
    }

    private bool CheckField(string name, string value, string path)
    {
        if (!IsHeaderName(name))
        {
            Error(path, "is not a valid header name");
            return false;
        }

        if (!IsValidFieldValue(value))
        {
            Error(path, "value must be printable ASCII");
            return false;
        }

        if (KnownHeaders.Lookup(Encoding.ASCII.GetBytes(name)) is KnownHeader.ContentLength or KnownHeader.TransferEncoding
            or KnownHeader.Connection or KnownHeader.Host or KnownHeader.Upgrade or KnownHeader.TE or KnownHeader.KeepAlive)
        {
            Error(path, "framing and connection fields are managed by the proxy");
            return false;
        }

        return true;
    }

    /// <summary>
    /// The running cluster with the same id, the same config and the same upstream TLS files (CA bundle, client
    /// certificate and key, as fingerprinted when read), if any: a rotated client certificate makes a new cluster.
    /// </summary>
    private ClusterModel? Unchanged(ClusterConfig c)
    {
        if (_previous is null)
        {
            return null;
        }

        ClusterConfig? before = _previous.Source.Clusters?.FirstOrDefault(x => x?.Id == c.Id);
        if (before is null || ConfigLoader.SerializeFragment(before) != ConfigLoader.SerializeFragment(c))
        {
            return null;
        }

        foreach (string? file in new[] { c.Tls?.CaFile, c.Tls?.ClientCertificate, c.Tls?.ClientKey })
        {
            if (file is null)
            {
                continue;
            }

            string full = Resolve(file);
            if (!_previous.TlsFiles.TryGetValue(full, out string? then) || _tlsFiles.GetValueOrDefault(full) != then)
            {
                return null;
            }
        }

        return _previous.Clusters.FirstOrDefault(x => x.Id == c.Id);
    }

    private UpstreamTlsOptions? CompileUpstreamTls(UpstreamTlsConfig? t, string p)
    {
        if (t is null)
        {
            return null;
        }

        System.Security.Cryptography.X509Certificates.X509Certificate2Collection? trusted = null;
        if (t.CaFile is not null)
        {
            try
            {
                trusted = [];
                trusted.ImportFromPemFile(TlsFile(t.CaFile));
                if (trusted.Count == 0)
                {
                    Error($"{p}.caFile", "holds no certificate");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                Error($"{p}.caFile", $"cannot read the CA bundle: {e.Message}");
            }
        }

        System.Security.Cryptography.X509Certificates.X509Certificate2? client = null;
        if ((t.ClientCertificate is null) != (t.ClientKey is null))
        {
            Error($"{p}.clientCertificate", "clientCertificate and clientKey go together");
        }
        else if (t.ClientCertificate is not null)
        {
            try
            {
                client = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(TlsFile(t.ClientCertificate), TlsFile(t.ClientKey!));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                Error($"{p}.clientCertificate", $"cannot load the client certificate: {e.Message}");
            }
        }

        if (t.ServerName is not null && !IsHostPattern(t.ServerName))
        {
            Error($"{p}.serverName", $"'{t.ServerName}' is not a host name");
        }

        return new UpstreamTlsOptions
        {
            ServerName = t.ServerName,
            TrustedCertificates = trusted,
            ClientCertificate = client,
            InsecureSkipVerify = t.InsecureSkipVerify,
        };
    }

    private (ActiveHealthOptions?, PassiveHealthOptions) CompileHealth(HealthCheckConfig? h, string p)
    {
        var passiveDefaults = new PassiveHealthOptions();
        PassiveHealthOptions passive = h?.Passive is not { } pc ? passiveDefaults : new PassiveHealthOptions
        {
            ConsecutiveFailures = Positive(pc.ConsecutiveFailures, $"{p}.passive.consecutiveFailures", passiveDefaults.ConsecutiveFailures, 0, 10_000),
            EjectionTime = ParseDuration(pc.EjectionTime, $"{p}.passive.ejectionTime", passiveDefaults.EjectionTime),
            MaxEjectionPercent = Positive(pc.MaxEjectionPercent, $"{p}.passive.maxEjectionPercent", passiveDefaults.MaxEjectionPercent, 0, 100),
            FailurePercentage = Positive(pc.FailurePercentage, $"{p}.passive.failurePercentage", passiveDefaults.FailurePercentage, 0, 100),
            FailurePercentageMinimumRequests = Positive(pc.FailurePercentageMinimumRequests, $"{p}.passive.failurePercentageMinimumRequests",
                passiveDefaults.FailurePercentageMinimumRequests, 1, 1_000_000),
            FailurePercentageInterval = ParseDuration(pc.FailurePercentageInterval, $"{p}.passive.failurePercentageInterval", passiveDefaults.FailurePercentageInterval),
        };
        if (h?.Active is not { } a)
        {
            return (null, passive);
        }

        var d = new ActiveHealthOptions();
        int min = d.MinStatus, max = d.MaxStatus;
        if (a.ExpectedStatus is { } expected)
        {
            string[] parts = expected.Split('-');
            if (parts.Length is < 1 or > 2 || !int.TryParse(parts[0], out min) || !int.TryParse(parts[^1], out max) || min < 100 || max > 599 || min > max)
            {
                Error($"{p}.active.expectedStatus", $"'{expected}' is not a status or range like \"200-399\"");
            }
        }

        if (a.Path is { } path && (!path.StartsWith('/') || path.Any(ch => ch <= ' ' || ch >= 127)))
        {
            Error($"{p}.active.path", "must start with '/' and hold only visible ASCII");
        }

        return (new ActiveHealthOptions
        {
            Interval = ParseDuration(a.Interval, $"{p}.active.interval", d.Interval),
            Timeout = ParseDuration(a.Timeout, $"{p}.active.timeout", d.Timeout),
            Path = a.Path ?? d.Path,
            MinStatus = min,
            MaxStatus = max,
            HealthyThreshold = Positive(a.HealthyThreshold, $"{p}.active.healthyThreshold", d.HealthyThreshold, 1, 100),
            UnhealthyThreshold = Positive(a.UnhealthyThreshold, $"{p}.active.unhealthyThreshold", d.UnhealthyThreshold, 1, 100),
        }, passive);
    }

    internal static bool TrySplitHostPort(string address, out string host, out int port)
    {
        host = "";
        port = 0;
        int colon = address.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(address.AsSpan(colon + 1), System.Globalization.NumberStyles.None, null, out port) || port is < 1 or > 65535)
        {
            return false;
        }

        host = address[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            return IPAddress.TryParse(host[1..^1], out _);
        }

        return !host.Contains(':') && (IPAddress.TryParse(host, out _) || IsHostPattern(host) && !host.StartsWith('*'));
    }

    private DirectResponseHandler? CompileDirect(DirectResponseConfig d, string p)
    {
        int before = _errors.Count;
        if (d.Status is < 200 or > 599)
        {
            Error($"{p}.status", "must be between 200 and 599");
        }

        if (d.ContentType is not null && !IsValidFieldValue(d.ContentType))
        {
            Error($"{p}.contentType", "must be printable ASCII");
        }

        foreach ((string name, string value) in d.Headers ?? [])
        {
            if (!IsHeaderName(name))
            {
                Error($"{p}.headers.{name}", "is not a valid header name");
            }
            else if (!IsValidFieldValue(value))
            {
                Error($"{p}.headers.{name}", "value must be printable ASCII");
            }
            else if (KnownHeaders.Lookup(Encoding.ASCII.GetBytes(name)) is KnownHeader.ContentLength or KnownHeader.TransferEncoding or KnownHeader.Connection)
            {
                Error($"{p}.headers.{name}", "framing headers are set by the server");
            }
        }

        return _errors.Count > before ? null : new DirectResponseHandler(d.Status, d.ContentType, d.Body, d.Headers);
    }

    // ---------------- shared checks ----------------

    private void CheckHostPatterns(List<string>? hosts, string path)
    {
        for (int i = 0; i < (hosts?.Count ?? 0); i++)
        {
            string h = hosts![i];
            if (!IsHostPattern(h))
            {
                Error($"{path}[{i}]", $"'{h}' is not a host name or '*.example.com' wildcard");
            }
        }
    }

    internal static bool IsHostPattern(string? host)
    {
        if (string.IsNullOrEmpty(host) || host.Length > 253)
        {
            return false;
        }

        string name = host.StartsWith("*.", StringComparison.Ordinal) ? host[2..] : host;
        name = name.TrimEnd('.');
        if (name.Length == 0)
        {
            return false;
        }

        if (IPAddress.TryParse(name.Trim('[', ']'), out _))
        {
            return !host.StartsWith('*');
        }

        foreach (string label in name.Split('.'))
        {
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-'
                || !label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-' || c == '_'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A field name: a non-empty token (RFC 9110 §5.1), ASCII only.</summary>
    private static bool IsHeaderName(string name) =>
        name.Length > 0 && !name.Any(c => c > 127) && HttpCharacters.IndexOfInvalidTokenChar(Encoding.ASCII.GetBytes(name)) < 0;

    private static bool IsIdentifier(string? id) =>
        !string.IsNullOrEmpty(id) && id.Length <= 128 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private static bool IsValidFieldValue(string value) => value.All(c => c is >= ' ' and < (char)127 or '\t');

    /// <summary>
    /// A certificate whose files did not change keeps the object the running config serves: its TLS context, with the
    /// OCSP staple it fetched, carries over a reload instead of starting again without one. A supplied OCSP file is
    /// read fresh each time (it may be the only thing that changed), so those are not carried over.
    /// </summary>
    private LoadedCertificate Unchanged(LoadedCertificate fresh, string? ocspPath)
    {
        if (ocspPath is not null || _previous?.Certificates.FirstOrDefault(p => p.Name == fresh.Name) is not { } before
            || before.Thumbprint != fresh.Thumbprint
            || !before.Hosts.SequenceEqual(fresh.Hosts, StringComparer.Ordinal)
            || !before.Chain.Select(x => x.Thumbprint).SequenceEqual(fresh.Chain.Select(x => x.Thumbprint), StringComparer.Ordinal))
        {
            return fresh;
        }

        return before;
    }

    private Tls.RevocationList? CompileRevocationList(ClientCertificatesConfig? c, System.Security.Cryptography.X509Certificates.X509Certificate2Collection? cas, string path)
    {
        if (c?.CrlFile is not { } file)
        {
            return null;
        }

        if (cas is null)
        {
            Error(path, "needs client certificates on (mode optional or required) with a caFile");
            return null;
        }

        try
        {
            return Tls.RevocationList.Load(File.ReadAllBytes(TlsFile(file)), cas);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            Error(path, $"'{file}': {e.Message}");
            return null;
        }
    }
}

using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Appliance.Admin;
using Appliance.Config;
using Appliance.Routing;
using Appliance.Server;
using Appliance.State;
using Appliance.Telemetry;
using Appliance.Transport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Appliance.Hosting;

/// <summary>
/// Owns the listeners and the running config snapshot. Binds the listeners of the config and the admin socket;
/// applies a new config hot (validate fully, persist, swap one reference: new requests see it, in-flight ones
/// finish on the old one; added listeners are bound, removed ones drain, unchanged ones keep their sockets and
/// connections); on stop (SIGTERM) stops accepting, lets in-flight requests finish within
/// server.shutdownTimeout, then closes what is left. The state database is opened before anything binds and
/// closed after the last connection is gone.
/// </summary>
public sealed class GatewayHost : IHostedService, IAdminBackend, IDisposable
{
    private readonly ILogger _logger;
    private readonly ConnectionRegistry _registry;
    private readonly Dictionary<string, (SocketListener Socket, ListenerRuntime Runtime, ListenerModel Model)> _listeners = [];
    private readonly SemaphoreSlim _applyLock = new(1, 1);
    private readonly string? _configPath;
    private readonly RouteDispatcher _routes;
    private readonly Tls.Acme.PendingChallenges _challenges = new();
    private CertificateRenewer? _renewer;
    private SocketListener? _admin;
    private ConfigRevisionStore? _revisions;
    private CertificateWatcher? _certificateWatcher;
    private StateStore? _state;
    private readonly Policies.PolicyEnvironment _policies = new();
    private PosixSignalRegistration? _sighup;
    private PosixSignalRegistration? _sigusr1;
    private readonly object _signalGate = new();
    private bool _signalsLive; // the start has finished: signals act at once
    private bool _reloadAsked; // a SIGHUP came during the start
    private bool _reopenAsked; // a SIGUSR1 came during the start
    private readonly AccessLog _accessLog;
    private readonly SystemdNotifier _systemd;
    private readonly SocketActivation _activation;
    private Watchdog? _watchdog;
    private volatile ConfigSnapshot _snapshot;
    private int _revision;

    public GatewayHost(ConfigSource source, ILoggerFactory loggers, ServiceManager? service = null)
    {
        _systemd = service?.Notifier ?? new SystemdNotifier(null);
        _activation = service?.Activation ?? SocketActivation.Parse(null, null, null, 0, _ => throw new InvalidOperationException());
        _logger = Logs.Tee(loggers.CreateLogger("appliance"));
        _snapshot = source.Initial;
        _configPath = source.Path;
        _registry = new ConnectionRegistry(static now => DateHeader.Update(DateTimeOffset.UtcNow));
        _routes = new RouteDispatcher(() => _snapshot.Routes, _logger, _policies);
        _accessLog = new AccessLog(_logger);
    }

    /// <summary>server.accessLog: the completed requests' log, reconfigured by each apply.</summary>
    public AccessLog AccessLog => _accessLog;

    public ConfigSnapshot Snapshot => _snapshot;

    /// <summary>The ACME challenges the listeners answer while an issuance waits on them.</summary>
    internal Tls.Acme.PendingChallenges AcmeChallenges => _challenges;

    /// <summary>What was logged lately (for the admin API's /v1/logs).</summary>
    public Telemetry.RecentLogs Logs { get; } = new();

    public int Revision => Volatile.Read(ref _revision);

    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;

    public int ConnectionCount => _registry.Count;

    public IReadOnlyList<SocketListener> Listeners
    {
        get
        {
            lock (_listeners)
            {
                return [.. _listeners.Values.Select(l => l.Socket)];
            }
        }
    }

    /// <summary>
    /// The runtime state (tenants, consumers, keys, subscriptions, usage) at &lt;stateDirectory&gt;/state.db;
    /// open from start until stop. The state directory is read once at start: a reload that changes it takes
    /// effect at the next start.
    /// </summary>
    public StateStore State => _state ?? throw new InvalidOperationException("the gateway has not started");

    StateStore? IAdminBackend.StateStore => _state;

    UsageMeter? IAdminBackend.Usage => _policies.Usage;

    /// <summary>The admin socket listener, when enabled.</summary>
    public SocketListener? AdminListener => _admin;

    /// <summary>Every live connection (tests).</summary>
    internal ConnectionRegistry Registry => _registry;

    public IReadOnlyList<ListenerStatus> ListenerStatus()
    {
        lock (_listeners)
        {
            return [.. _listeners.Values.Select(l => new ListenerStatus(l.Model.Name, l.Socket.LocalEndPoint.ToString() ?? "",
                l.Socket.ActiveConnections, l.Socket.RejectedConnections, l.Socket.AcceptErrors, l.Socket.AcceptLoopProblem))];
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // First, so that no moment of the start leaves SIGHUP or SIGUSR1 at their default action, which terminates
        // the process (a logrotate postrotate or a scripted reload that lands while the service restarts). Inherited
        // as ignored (nohup), they would never reach the handlers: they are taken back first.
        bool hupWasIgnored = SignalDisposition.Unignore(SigHup);
        bool usr1WasIgnored = SignalDisposition.Unignore(SigUsr1);
        _sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true; // SIGHUP reloads; it must not terminate
            OnSignal(reload: true);
        });

        // SIGUSR1 reopens the access log, as logrotate's postrotate asks nginx to (no PosixSignal name: its raw number).
        _sigusr1 = PosixSignalRegistration.Create((PosixSignal)SigUsr1, context =>
        {
            context.Cancel = true;
            OnSignal(reload: false);
        });

        if (hupWasIgnored || usr1WasIgnored)
        {
            _logger.LogInformation("signals: {Signals} inherited as ignored (nohup?); handled as usual", hupWasIgnored && usr1WasIgnored ? "SIGHUP and SIGUSR1" : hupWasIgnored ? "SIGHUP" : "SIGUSR1");
        }

        ConfigSnapshot snapshot = _snapshot;
        OpenState(snapshot);
        try
        {
            _accessLog.Configure(snapshot.AccessLog);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogCritical("access log: cannot open {Path}: {Error}", snapshot.AccessLog?.Path, e.Message);
            throw;
        }

        SyncTenants(snapshot);
        if (Tls.TlsRecordStream.PrepareProtection() is { } unprotected) // before the first certificate's context
        {
            _logger.LogWarning("tls: TLS 1.3 records stay on OpenSSL's record layer: {Reason}", unprotected);
        }

        Tls.SessionTickets.Configure(snapshot.SessionTickets);
        foreach (ListenerModel model in snapshot.Listeners)
        {
            Bind(model, snapshot);
        }

        foreach (Proxy.ClusterModel cluster in snapshot.Clusters)
        {
            cluster.Start(_logger);
        }

        if (snapshot.AdminSocketPath is { } adminPath)
        {
            StartAdmin(adminPath, snapshot.AdminGroup);
        }

        if (Tls.SessionResumption.Unavailable is { } why)
        {
            _logger.LogWarning("tls: {Reason}", why);
        }

        _logger.LogInformation("tls: session tickets: {Tickets}", Tls.SessionTickets.Describe());
        if (Tls.TlsRecordStream.ProtectUsable)
        {
            _logger.LogInformation("tls: TLS 1.3 records sealed by the appliance; traffic secrets {How}", Tls.TlsRecordStream.DescribeProtection());
        }

        _certificateWatcher = new CertificateWatcher(ReloadCertificatesAsync, _logger);
        _certificateWatcher.Watch(snapshot);
        _certificateWatcher.WarnBeforeExpiry();
        _revisions = new ConfigRevisionStore(Path.Combine(snapshot.StateDirectory, "config-revisions"));
        _revision = _revisions.Record(snapshot.Source, _configPath is null ? "embedded default" : "start: " + _configPath);
        lock (_listeners)
        {
            foreach ((SocketListener socket, _, _) in _listeners.Values)
            {
                socket.Start();
            }
        }

        // After the listeners accept: the challenges are answered on them.
        _renewer = new CertificateRenewer(_challenges, ReloadCertificatesAsync, _logger);
        _renewer.Update(snapshot);

        foreach (string unclaimed in _activation.CloseUnclaimed())
        {
            _logger.LogWarning("systemd passed a socket named '{Name}' that no listener claims; closed", unclaimed);
        }

        _logger.LogInformation("appliance {Version} ready: {Listeners} listener(s), {Routes} route(s), {Certificates} certificate(s), config revision {Revision}",
            Program.Version, snapshot.Listeners.Count, snapshot.Routes.Routes.Count, snapshot.Certificates.Count, _revision);
        if (_systemd.Enabled)
        {
            _systemd.Ready(StatusLine());
            TimeSpan? interval = Watchdog.IntervalFromEnvironment();
            _watchdog = new Watchdog(_systemd.Send, WatchdogProblem, StatusLine, Watchdog.QueueToThreadPool, _logger);
            _watchdog.Start(interval);
            if (interval is { } i)
            {
                _logger.LogInformation("systemd watchdog: every {Interval}", Duration.Format(i / 4));
            }
        }

        // Ready (and READY=1 sent): from now on a signal acts at once, and one that came during the start acts now.
        bool reloadAsked, reopenAsked;
        lock (_signalGate)
        {
            _signalsLive = true;
            (reloadAsked, reopenAsked) = (_reloadAsked, _reopenAsked);
        }

        if (reloadAsked)
        {
            ActOnSignal(reload: true);
        }

        if (reopenAsked)
        {
            ActOnSignal(reload: false);
        }

        return Task.CompletedTask;
    }

    private string StatusLine() => $"{_registry.Count} connection(s), config revision {Revision}";

    /// <summary>What keeps the watchdog from pinging besides the thread pool: a stuck event loop, or an accept loop that ended.</summary>
    private string? WatchdogProblem() => SocketEngine.CheckLoops() ?? AcceptLoopProblem();

    private string? AcceptLoopProblem()
    {
        lock (_listeners)
        {
            foreach ((SocketListener socket, _, _) in _listeners.Values)
            {
                if (socket.AcceptLoopProblem is { } problem)
                {
                    return problem;
                }
            }
        }

        return _admin?.AcceptLoopProblem;
    }

    private void OpenState(ConfigSnapshot snapshot)
    {
        string path = Path.Combine(snapshot.StateDirectory, StateStore.FileName);
        try
        {
            _state = new StateStore(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogCritical("state: {Error}", e.Message); // the message names the file
            throw;
        }

        _logger.LogInformation("state: {Path} (schema version {Version})", _state.Path, _state.SchemaVersion);
        _state.HandlerFailed = e => _logger.LogError("state: after a write, the in-memory copy failed: {Error}; API keys are refused until it can be read again", e.Message);
        _policies.Consumers = new Policies.ConsumerDirectory(_state); // API keys and subscriptions, in memory for the policies
        _policies.Usage = new UsageMeter(_state, onFailure: (e, lost) =>
        {
            if (lost)
            {
                _logger.LogError("state: usage counts could not be written at stop ({Error}); they are lost", e.Message);
            }
            else
            {
                _logger.LogWarning("state: usage could not be written or read ({Error}); counts are kept for the next try, quotas let requests through meanwhile", e.Message);
            }
        });
        if (_policies.Consumers.Problem is { } problem)
        {
            _logger.LogError("state: API keys cannot be read ({Error}); every key is refused until they can", problem);
        }
        else
        {
            _logger.LogInformation("state: {Keys} API key(s) held for the routes' apiKey policies", _policies.Consumers.KeyCount);
        }
    }

    /// <summary>
    /// Tenants live in the config (DESIGN.md); the database keeps a copy of each so consumers, keys and
    /// subscriptions can belong to one. Created and updated as the config says; one that left the config is
    /// removed, unless consumers still belong to it (then it stays, and a warning says so).
    /// </summary>
    private void SyncTenants(ConfigSnapshot snapshot)
    {
        if (_state is not { } store)
        {
            return;
        }

        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (TenantConfig t in snapshot.Source.Tenants ?? [])
        {
            if (t.Id is null)
            {
                continue;
            }

            wanted.Add(t.Id);
            try
            {
                if (store.GetTenant(t.Id) is null)
                {
                    store.CreateTenant(t.Id, t.Id, t.Hosts);
                }
                else
                {
                    store.UpdateTenant(t.Id, domains: t.Hosts ?? []);
                }
            }
            catch (StateException e)
            {
                _logger.LogWarning("state: tenant {Tenant} not copied to the database: {Error}", t.Id, e.Message);
            }
        }

        string? after = null;
        var gone = new List<string>();
        do
        {
            Page<Tenant> page = store.ListTenants(500, after);
            gone.AddRange(page.Items.Select(t => t.Id).Where(id => !wanted.Contains(id)));
            after = page.Next;
        }
        while (after is not null);

        foreach (string id in gone)
        {
            try
            {
                store.DeleteTenant(id);
            }
            catch (StateException e) when (e.Kind == StateErrorKind.Conflict)
            {
                _logger.LogWarning("state: tenant {Tenant} left the config but keeps its consumers in the database", id);
            }
        }
    }

    private void Bind(ListenerModel model, ConfigSnapshot snapshot)
    {
        var runtime = new ListenerRuntime(model.Name, BuildState(model, snapshot));
        SocketListener listener;
        var options = new SocketListenerOptions(model.Name, model.EndPoint, model.Backlog, model.ReusePort, model.MaxConnections);
        Func<Socket, SocketListener, Task> accepted = (socket, l) => new HttpConnection(socket, l, runtime, _registry, _logger).RunAsync();
        try
        {
            listener = _activation.Take(model.Name) is { } passed
                ? SocketListener.Adopt(options, passed, accepted, _logger)
                : SocketListener.Bind(options, accepted, _logger);
        }
        catch (SocketException e)
        {
            _logger.LogCritical("listener {Name}: cannot bind {EndPoint}: {Error}", model.Name, model.EndPoint, e.Message);
            throw;
        }

        lock (_listeners)
        {
            _listeners[model.Name] = (listener, runtime, model);
        }

        _logger.LogInformation("listener {Name}: {Scheme}://{EndPoint}{Redirect}{Passed}", model.Name, model.Tls ? "https" : "http",
            listener.LocalEndPoint, model.RedirectToHttps ? $" (redirects to https port {model.HttpsPort})" : "",
            listener.Inherited ? " (socket passed by systemd)" : "");
    }

    private void StartAdmin(string path, string group)
    {
        var dispatcher = new AdminDispatcher(this, group, _logger);
        var limits = new ServerLimits { MaxRequestBodySize = AdminDispatcher.MaxBodyBytes, KeepAliveTimeout = TimeSpan.FromSeconds(30) };
        var runtime = new ListenerRuntime("admin", new ListenerRuntime.State(null, limits, dispatcher, Http2Enabled: false));
        var options = new SocketListenerOptions("admin", new UnixDomainSocketEndPoint(path), 64, false, 256);
        Func<Socket, SocketListener, Task> accepted = (socket, l) => new HttpConnection(socket, l, runtime, _registry, _logger).RunAsync();
        if (_activation.Take("admin") is { } passed)
        {
            // systemd made the socket file with the unit's SocketMode/SocketGroup; it is not ours to chmod or unlink.
            _admin = SocketListener.Adopt(options, passed, accepted, _logger);
            _admin.Start();
            _logger.LogInformation("admin API: unix:{Path} (socket passed by systemd)", _admin.LocalEndPoint);
            return;
        }

        UnixSocketFile.PrepareForBind(path);
        _admin = SocketListener.Bind(options, accepted, _logger);
        if (UnixSocketFile.SetPermissions(path, group) is { } warning)
        {
            _logger.LogWarning("admin: {Warning}", warning);
        }

        _admin.Start();
        _logger.LogInformation("admin API: unix:{Path} (mode 0660, group {Group})", path, group);
    }

    private ListenerRuntime.State BuildState(ListenerModel model, ConfigSnapshot snapshot)
    {
        IRequestDispatcher dispatcher = model.RedirectToHttps ? new HttpsRedirectDispatcher(model.HttpsPort) : _routes;
        if (!model.Tls && snapshot.Acme.Any(a => a.Challenge == Tls.Acme.AcmeChallengeType.Http01))
        {
            dispatcher = new AcmeChallengeDispatcher(dispatcher, _challenges); // before routes and the HTTPS redirect
        }

        return new ListenerRuntime.State(model.Certificates, model.Limits, dispatcher,
            Http2Enabled: model.Protocols.Contains(System.Net.Security.SslApplicationProtocol.Http2),
            AcmeChallenges: model.Tls && snapshot.Acme.Any(a => a.Challenge == Tls.Acme.AcmeChallengeType.TlsAlpn01) ? _challenges : null,
            AccessLog: _accessLog);
    }

    // ---------------- hot apply ----------------

    public async Task<ApplyResult> ApplyAsync(ApplianceConfig config, bool dryRun, string source)
    {
        await _applyLock.WaitAsync().ConfigureAwait(false);
        try
        {
            ConfigSnapshot old = _snapshot;
            string baseDirectory = old.BaseDirectory.Length > 0 ? old.BaseDirectory : Environment.CurrentDirectory;
            if (dryRun)
            {
                IReadOnlyList<ConfigError> errors = ConfigCompiler.Validate(config, baseDirectory);
                return new ApplyResult(errors.Count == 0, _revision, errors, errors.Count == 0 ? Diff(old, config) : []);
            }

            ConfigSnapshot next;
            try
            {
                next = ConfigCompiler.Compile(config, baseDirectory, previous: old);
            }
            catch (ConfigException e)
            {
                return new ApplyResult(false, _revision, e.Errors, []);
            }

            List<string> changes = Diff(old, config);
            try
            {
                _accessLog.Configure(next.AccessLog); // new requests use it at once; queued lines go to the old file
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                DisposeNewClusters(old, next);
                return new ApplyResult(false, _revision, [new ConfigError("server.accessLog.path", "cannot open: " + e.Message)], []);
            }

            if (!Equals(old.AccessLog, next.AccessLog))
            {
                changes.Add(next.AccessLog is null ? "access log off" : $"access log {next.AccessLog.Path}");
            }

            try
            {
                await SwapListenersAsync(next).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                RestoreAccessLog(old);
                return new ApplyResult(false, _revision, [new ConfigError("listeners", "cannot bind: " + e.Message)], []);
            }

            if (_configPath is not null)
            {
                AtomicFile.Write(_configPath, ConfigLoader.Serialize(config));
            }

            int revision = _revisions?.Record(config, source) ?? _revision + 1;
            Volatile.Write(ref _revision, revision);
            ServerHeader.Configure(next.ServerHeader);
            Tls.SessionTickets.Configure(next.SessionTickets);
            StartClusters(next);
            _snapshot = next; // the one reference new requests read
            SyncTenants(next);
            _certificateWatcher?.Watch(next);
            _renewer?.Update(next);
            RetireClusters(old, next);

            _logger.LogInformation("config revision {Revision} applied ({Source}): {Changes}", revision, source,
                changes.Count == 0 ? "no changes" : string.Join("; ", changes));
            return new ApplyResult(true, revision, [], changes);
        }
        finally
        {
            _applyLock.Release();
        }
    }

    private void RestoreAccessLog(ConfigSnapshot old)
    {
        try
        {
            _accessLog.Configure(old.AccessLog);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogError("access log: cannot reopen {Path}: {Error}", old.AccessLog?.Path, e.Message);
        }
    }

    /// <summary>Health probes of <paramref name="next"/>'s clusters run (a carried-over cluster's keep running).</summary>
    private void StartClusters(ConfigSnapshot next)
    {
        foreach (Proxy.ClusterModel cluster in next.Clusters)
        {
            cluster.Start(_logger);
        }
    }

    /// <summary>The clusters of <paramref name="old"/> that <paramref name="next"/> does not carry over are disposed.</summary>
    private static void RetireClusters(ConfigSnapshot old, ConfigSnapshot next)
    {
        foreach (Proxy.ClusterModel cluster in old.Clusters)
        {
            if (!next.Clusters.Contains(cluster))
            {
                cluster.Dispose(); // idle upstream connections close now; busy ones when their request ends
            }
        }
    }

    private static void DisposeNewClusters(ConfigSnapshot old, ConfigSnapshot next)
    {
        foreach (Proxy.ClusterModel cluster in next.Clusters)
        {
            if (!old.Clusters.Contains(cluster))
            {
                cluster.Dispose();
            }
        }
    }

    /// <summary>POST /v1/access-log/reopen, ctl access-log reopen and SIGUSR1: the file's path is opened again.</summary>
    public async Task<string?> ReopenAccessLogAsync() => await _accessLog.ReopenAsync().ConfigureAwait(false);

    private const int SigHup = 1; // Linux
    private const int SigUsr1 = 10; // Linux

    private async Task ReopenAccessLogForSignalAsync()
    {
        try
        {
            await _accessLog.ReopenAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogError("access log: SIGUSR1: cannot reopen {Path}: {Error}", _snapshot.AccessLog?.Path, e.Message);
        }
    }

    private async Task SwapListenersAsync(ConfigSnapshot next)
    {
        var wanted = next.Listeners.ToDictionary(l => l.Name, StringComparer.Ordinal);
        List<(SocketListener Socket, ListenerRuntime Runtime, ListenerModel Model)> current;
        lock (_listeners)
        {
            current = [.. _listeners.Values];
        }

        // Bind what is new first, so a port that cannot be bound fails the apply before anything changed.
        var added = new List<string>();
        foreach (ListenerModel model in next.Listeners)
        {
            if (current.Any(c => c.Model.Name == model.Name && c.Model.SameSocket(model)))
            {
                continue;
            }

            if (current.Any(c => c.Model.Name != model.Name && c.Model.SameSocket(model) && wanted.ContainsKey(c.Model.Name)))
            {
                throw new SocketException((int)SocketError.AddressAlreadyInUse);
            }

            // A listener whose address changed is replaced: unbind the old one first to free the port if needed.
            if (current.FirstOrDefault(c => c.Model.Name == model.Name) is { Socket: not null } replaced)
            {
                await RemoveListenerAsync(replaced.Model.Name).ConfigureAwait(false);
            }

            Bind(model, next);
            added.Add(model.Name);
        }

        lock (_listeners)
        {
            foreach (string name in added)
            {
                _listeners[name].Socket.Start();
            }

            foreach ((SocketListener socket, ListenerRuntime runtime, ListenerModel model) in _listeners.Values.ToList())
            {
                if (!wanted.TryGetValue(model.Name, out ListenerModel? updated))
                {
                    continue;
                }

                if (!added.Contains(model.Name))
                {
                    runtime.Update(BuildState(updated, next)); // same socket and connections; new certificates, limits
                    _listeners[model.Name] = (socket, runtime, updated);
                }
            }
        }

        foreach ((_, _, ListenerModel model) in current)
        {
            if (!wanted.ContainsKey(model.Name))
            {
                await RemoveListenerAsync(model.Name).ConfigureAwait(false);
            }
        }

    }

    private async Task RemoveListenerAsync(string name)
    {
        (SocketListener Socket, ListenerRuntime Runtime, ListenerModel Model) entry;
        lock (_listeners)
        {
            if (!_listeners.Remove(name, out entry))
            {
                return;
            }
        }

        await entry.Socket.DisposeAsync().ConfigureAwait(false);
        entry.Runtime.Close();
        _registry.RequestClose(name); // its connections finish what they are doing, then close
        _logger.LogInformation("listener {Name}: removed; its connections drain", name);
    }

    private static List<string> Diff(ConfigSnapshot old, ApplianceConfig next)
    {
        var changes = new List<string>();
        ApplianceConfig a = old.Source;
        Compare("listener", a.Listeners?.Select(l => (l.Name ?? "", ConfigLoader.SerializeFragment(l))), next.Listeners?.Select(l => (l.Name ?? "", ConfigLoader.SerializeFragment(l))), changes);
        Compare("route", a.Routes?.Select(r => (r.Id ?? "", ConfigLoader.SerializeFragment(r))), next.Routes?.Select(r => (r.Id ?? "", ConfigLoader.SerializeFragment(r))), changes);
        Compare("cluster", a.Clusters?.Select(c => (c.Id ?? "", ConfigLoader.SerializeFragment(c))), next.Clusters?.Select(c => (c.Id ?? "", ConfigLoader.SerializeFragment(c))), changes);
        Compare("certificate", a.Certificates?.Select(c => (c.Name ?? "", ConfigLoader.SerializeFragment(c))), next.Certificates?.Select(c => (c.Name ?? "", ConfigLoader.SerializeFragment(c))), changes);
        Compare("tenant", a.Tenants?.Select(t => (t.Id ?? "", ConfigLoader.SerializeFragment(t))), next.Tenants?.Select(t => (t.Id ?? "", ConfigLoader.SerializeFragment(t))), changes);
        if (ConfigLoader.SerializeFragment(a.Server?.SessionTickets) != ConfigLoader.SerializeFragment(next.Server?.SessionTickets))
        {
            changes.Add("session tickets changed");
        }

        return changes;
    }

    private static void Compare(string kind, IEnumerable<(string Key, string Json)>? before, IEnumerable<(string Key, string Json)>? after, List<string> changes)
    {
        Dictionary<string, string> b = (before ?? []).GroupBy(x => x.Key).ToDictionary(g => g.Key, g => g.First().Json);
        Dictionary<string, string> n = (after ?? []).GroupBy(x => x.Key).ToDictionary(g => g.Key, g => g.First().Json);
        foreach (string key in n.Keys.Except(b.Keys).Order(StringComparer.Ordinal))
        {
            changes.Add($"{kind} {key} added");
        }

        foreach (string key in b.Keys.Except(n.Keys).Order(StringComparer.Ordinal))
        {
            changes.Add($"{kind} {key} removed");
        }

        foreach (string key in n.Keys.Intersect(b.Keys).Order(StringComparer.Ordinal))
        {
            if (b[key] != n[key])
            {
                changes.Add($"{kind} {key} changed");
            }
        }
    }

    public IReadOnlyList<ConfigRevision> Revisions() => _revisions?.List() ?? [];

    public async Task<ApplyResult> RollbackAsync(int revision)
    {
        ApplianceConfig? config = _revisions?.Load(revision);
        if (config is null)
        {
            return new ApplyResult(false, _revision, [new ConfigError("revision", $"no stored revision {revision}")], []);
        }

        return await ApplyAsync(config, dryRun: false, $"rollback to revision {revision}").ConfigureAwait(false);
    }

    /// <summary>
    /// Reads the running config's TLS files again (the config itself is unchanged: no new revision): certificates,
    /// keys and chains, OCSP responses, client CA bundles and CRLs, upstream CA bundles and client certificates. Every
    /// one is validated as at start (key matches, chain, validity, CA bundles not empty); if any is refused, all keep
    /// serving what was loaded before. Listeners get the new material for new handshakes, a cluster whose upstream TLS
    /// files changed is rebuilt (new upstream connections use them; open ones finish their requests); connections
    /// already open are untouched. Called by the file watcher, POST /v1/certificates/reload and ctl certs reload.
    /// </summary>
    public async Task<ApplyResult> ReloadCertificatesAsync(string reason)
    {
        await _applyLock.WaitAsync().ConfigureAwait(false);
        try
        {
            ConfigSnapshot old = _snapshot;
            string baseDirectory = old.BaseDirectory.Length > 0 ? old.BaseDirectory : Environment.CurrentDirectory;
            ConfigSnapshot next;
            try
            {
                next = ConfigCompiler.Compile(old.Source, baseDirectory, previous: old);
            }
            catch (ConfigException e)
            {
                LimitCounters.Increment("certificate_reload_refused");
                _logger.LogWarning("certificates: reload refused ({Reason}); the loaded certificates keep serving: {Errors}", reason,
                    string.Join("; ", e.Errors));
                return new ApplyResult(false, _revision, e.Errors, []);
            }

            var changes = new List<string>();
            foreach (Tls.LoadedCertificate c in next.Certificates)
            {
                Tls.LoadedCertificate? before = old.Certificates.FirstOrDefault(o => o.Name == c.Name);
                if (before is null || before.Thumbprint != c.Thumbprint)
                {
                    changes.Add($"certificate {c.Name}: serial {before?.Leaf.SerialNumber ?? "none"} → {c.Leaf.SerialNumber}, valid until {c.NotAfter:yyyy-MM-dd}");
                }
            }

            foreach (ListenerModel l in next.Listeners)
            {
                string? before = old.Listeners.FirstOrDefault(o => o.Name == l.Name)?.ClientRevocationList?.Fingerprint;
                if (l.ClientRevocationList is { } crl && crl.Fingerprint != before)
                {
                    changes.Add($"listener {l.Name}: client CRLs reloaded ({crl.RevokedCount} revoked)");
                }
            }

            foreach (Proxy.ClusterModel cluster in next.Clusters)
            {
                if (!old.Clusters.Contains(cluster))
                {
                    changes.Add($"cluster {cluster.Id}: upstream TLS files reloaded"); // the compiler keeps a cluster unless they changed
                }
            }

            // CA bundles have no line of their own above: any file that changed is named.
            string[] files = [.. next.TlsFiles.Where(kv => !old.TlsFiles.TryGetValue(kv.Key, out string? before) || before != kv.Value).Select(kv => kv.Key)];
            if (files.Length > 0)
            {
                changes.Add("files re-read: " + string.Join(", ", files));
            }

            if (!next.SessionTickets.Equals(old.SessionTickets))
            {
                changes.Add($"session ticket keys: {next.SessionTickets}");
            }

            _certificateWatcher?.Watch(next); // new fingerprints either way: the same change is not reloaded twice
            if (changes.Count == 0)
            {
                return new ApplyResult(true, _revision, [], []);
            }

            await SwapListenersAsync(next).ConfigureAwait(false);
            Tls.SessionTickets.Configure(next.SessionTickets);
            StartClusters(next);
            _snapshot = next;
            RetireClusters(old, next);
            _logger.LogInformation("certificates reloaded ({Reason}): {Changes}", reason, string.Join("; ", changes));
            return new ApplyResult(true, _revision, [], changes);
        }
        finally
        {
            _applyLock.Release();
        }
    }

    public Task<ApplyResult>? UploadCertificateAsync(string name, string pem)
    {
        ConfigSnapshot s = _snapshot;
        CertificateConfig? c = s.Source.Certificates?.FirstOrDefault(x => x.Name == name);
        if (c?.CertificatePath is null || c.KeyPath is null)
        {
            return null;
        }

        string baseDirectory = s.BaseDirectory.Length > 0 ? s.BaseDirectory : Environment.CurrentDirectory;
        return UploadAsync(c, Path.GetFullPath(c.CertificatePath, baseDirectory), Path.GetFullPath(c.KeyPath, baseDirectory), pem);
    }

    private async Task<ApplyResult> UploadAsync(CertificateConfig c, string certPath, string keyPath, string pem)
    {
        // Certificates (leaf first, then its chain) go to the certificate file, the one private key to the key file.
        var blocks = System.Text.RegularExpressions.Regex.Matches(pem, @"-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----");
        string certificates = string.Concat(blocks.Where(b => b.Groups[1].Value == "CERTIFICATE").Select(b => b.Value + "\n"));
        string[] keys = [.. blocks.Where(b => b.Groups[1].Value.EndsWith("PRIVATE KEY", StringComparison.Ordinal)).Select(b => b.Value + "\n")];
        if (certificates.Length == 0 || keys.Length != 1)
        {
            return new ApplyResult(false, _revision, [new ConfigError("pem", "expected PEM certificates (leaf first) and exactly one private key")], []);
        }

        // Validated from side files first: a bad upload never touches what is served.
        string tmpCert = certPath + ".upload", tmpKey = keyPath + ".upload";
        try
        {
            AtomicFile.Write(tmpCert, certificates);
            AtomicFile.Write(tmpKey, keys[0], UnixFileMode.UserRead | UnixFileMode.UserWrite);
            Tls.PemCertificateLoader.Load(new Tls.CertificateSource(c.Name!, c.Hosts ?? [], tmpCert, tmpKey, null));
        }
        catch (Exception e) when (e is Tls.CertificateLoadException or IOException or UnauthorizedAccessException)
        {
            File.Delete(tmpCert);
            File.Delete(tmpKey);
            _logger.LogWarning("certificates: upload for {Name} refused: {Error}", c.Name, e.Message);
            return new ApplyResult(false, _revision, [new ConfigError("pem", e.Message)], []);
        }

        File.Delete(tmpCert);
        File.Delete(tmpKey);
        AtomicFile.Write(keyPath, keys[0], UnixFileMode.UserRead | UnixFileMode.UserWrite);
        AtomicFile.Write(certPath, certificates);
        return await ReloadCertificatesAsync($"admin upload: {c.Name}").ConfigureAwait(false);
    }

    public AcmeStatus? AcmeStatus(string certificateName) => _renewer?.Status(certificateName);

    public Task<RenewalOutcome>? RenewCertificateAsync(string certificateName) => _renewer?.RenewNowAsync(certificateName);

    public async Task<ApplyResult> ReloadAsync()
    {
        if (_configPath is null)
        {
            return new ApplyResult(false, _revision, [new ConfigError("", "running on the embedded default: there is no config file to reload")], []);
        }

        ApplianceConfig config;
        try
        {
            config = ConfigLoader.LoadFile(_configPath);
        }
        catch (ConfigException e)
        {
            _logger.LogWarning("reload: {File} refused, running config kept: {Errors}", _configPath, string.Join("; ", e.Errors));
            return new ApplyResult(false, _revision, e.Errors, []);
        }

        ApplyResult result = await ApplyAsync(config, dryRun: false, "reload: " + _configPath).ConfigureAwait(false);
        if (!result.Ok)
        {
            _logger.LogWarning("reload: {File} refused, running config kept: {Errors}", _configPath, string.Join("; ", result.Errors));
        }

        return result;
    }

    /// <summary>A SIGHUP (reload) or SIGUSR1 (reopen the access log): acted on at once once started, else when the start ends.</summary>
    private void OnSignal(bool reload)
    {
        lock (_signalGate)
        {
            if (!_signalsLive)
            {
                if (reload)
                {
                    _reloadAsked = true;
                }
                else
                {
                    _reopenAsked = true;
                }

                _logger.LogInformation("{Signal} during the start: acted on once it is ready", reload ? "SIGHUP" : "SIGUSR1");
                return;
            }
        }

        ActOnSignal(reload);
    }

    private void ActOnSignal(bool reload) => _ = reload ? ReloadForSignalAsync() : ReopenAccessLogForSignalAsync();

    /// <summary>SIGHUP (systemctl reload): tells systemd a reload is under way and when it is done.</summary>
    private async Task ReloadForSignalAsync()
    {
        _systemd.Reloading();
        ApplyResult result = await ReloadAsync().ConfigureAwait(false);
        _systemd.Ready(result.Ok ? StatusLine() : $"reload refused, revision {Revision} kept: {string.Join("; ", result.Errors)}");
    }

    // ---------------- stop ----------------

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _systemd.Stopping($"draining {_registry.Count} connection(s), up to {Duration.Format(_snapshot.ShutdownTimeout)}");
        _sighup?.Dispose();
        _sigusr1?.Dispose();
        _certificateWatcher?.Dispose();
        _renewer?.Dispose();
        List<SocketListener> sockets;
        lock (_listeners)
        {
            sockets = [.. _listeners.Values.Select(l => l.Socket)];
        }

        foreach (SocketListener listener in sockets)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }

        if (_admin is not null)
        {
            await _admin.DisposeAsync().ConfigureAwait(false);
            if (!_admin.Inherited && _snapshot.AdminSocketPath is { } path)
            {
                File.Delete(path);
            }
        }

        _registry.RequestCloseAll();
        _logger.LogInformation("stopping: no new connections; waiting up to {Timeout} for {Count} connection(s)",
            Duration.Format(_snapshot.ShutdownTimeout), _registry.Count);
        using var deadline = new CancellationTokenSource(_snapshot.ShutdownTimeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        await _registry.DrainAsync(linked.Token).ConfigureAwait(false);
        _registry.Dispose();
        await _accessLog.DisposeAsync().ConfigureAwait(false); // after the drain: every queued line is written
        _policies.Usage?.Dispose(); // after the drain: every counted request is written
        _policies.Consumers?.Dispose();
        _state?.Dispose(); // after the drain: requests still running may write to it
        _watchdog?.Dispose(); // pings kept coming through the drain
        _logger.LogInformation("stopped");
    }

    /// <summary>Closes the state database if the host is torn down without a stop (a start that failed part way).</summary>
    public void Dispose()
    {
        _certificateWatcher?.Dispose();
        _renewer?.Dispose();
        _policies.Usage?.Dispose();
        _state?.Dispose();
    }
}

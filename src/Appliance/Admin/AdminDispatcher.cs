using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Appliance.Config;
using Appliance.Protocol.Http1;
using Appliance.Server;
using Appliance.Telemetry;
using Appliance.Transport;
using Microsoft.Extensions.Logging;

namespace Appliance.Admin;

/// <summary>
/// The admin REST API (/v1/...) on the Unix socket. Every connection is checked against SO_PEERCRED first:
/// root, the service's own user and members of the admin group are served; anyone else gets 403 and a log
/// line with their uid and pid. Errors are RFC 9457 problem+json naming the offending field.
/// </summary>
public sealed class AdminDispatcher : IRequestDispatcher
{
    public const int MaxBodyBytes = 16 * 1024 * 1024;

    private readonly IAdminBackend _backend;
    private readonly ILogger _logger;
    private readonly uint _ownUid = UnixSocketFile.GetEuid();
    private readonly uint? _adminGid;
    private readonly ConfigResources _resources;
    private readonly StateResources _state;

    public AdminDispatcher(IAdminBackend backend, string adminGroup, ILogger logger)
    {
        _backend = backend;
        _logger = logger;
        _adminGid = UnixSocketFile.LookupGroup(adminGroup);
        _resources = new ConfigResources(backend);
        _state = new StateResources(backend);
    }

    public ValueTask DispatchAsync(RequestContext context) => HandleAsync(context);

    private bool Authorized(PeerCredentials? peer)
    {
        if (peer is not { } p)
        {
            return false;
        }

        if (p.Uid == 0 || p.Uid == _ownUid)
        {
            return true;
        }

        return _adminGid is { } gid && p.Groups().Contains(gid);
    }

    private async ValueTask HandleAsync(RequestContext c)
    {
        // Socket continuations run inline on the epoll threads; compiling a config (certificates, fsyncs) must
        // not stall the connections that share this thread, so admin work moves to the thread pool.
        await Task.Yield();
        if (!Authorized(c.Connection.Peer))
        {
            LimitCounters.Increment("admin_forbidden");
            _logger.LogWarning("admin: refused uid {Uid} pid {Pid} ({Method} {Path})",
                c.Connection.Peer?.Uid, c.Connection.Peer?.Pid, Encoding.ASCII.GetString(c.MethodToken), c.PathString);
            await Json(c, 403, AdminJson.Problem(403, "Forbidden", "not root, the service user, or a member of the admin group")).ConfigureAwait(false);
            return;
        }

        string path = c.PathString;
        string method = Encoding.ASCII.GetString(c.MethodToken);
        string query = Encoding.ASCII.GetString(c.Query);
        try
        {
            if (method == "PUT" && path.StartsWith("/v1/certificates/", StringComparison.Ordinal) && path.EndsWith("/pem", StringComparison.Ordinal))
            {
                await UploadCertificateAsync(c, Uri.UnescapeDataString(path["/v1/certificates/".Length..^"/pem".Length])).ConfigureAwait(false);
                return;
            }

            if (method == "POST" && path.StartsWith("/v1/certificates/", StringComparison.Ordinal) && path.EndsWith("/renew", StringComparison.Ordinal))
            {
                await RenewCertificateAsync(c, Uri.UnescapeDataString(path["/v1/certificates/".Length..^"/renew".Length])).ConfigureAwait(false);
                return;
            }

            switch (method, path)
            {
                case ("GET", "/v1/status"):
                    await Json(c, 200, Status()).ConfigureAwait(false);
                    return;
                case ("GET", "/v1/config"):
                    await Json(c, 200, Encoding.UTF8.GetBytes(ConfigLoader.Serialize(_backend.Snapshot.Source))).ConfigureAwait(false);
                    return;
                case ("PUT", "/v1/config"):
                case ("POST", "/v1/config"):
                    await ApplyAsync(c, dryRun: query.Contains("dryRun=true", StringComparison.OrdinalIgnoreCase)).ConfigureAwait(false);
                    return;
                case ("GET", "/v1/config/revisions"):
                    await Json(c, 200, RevisionsJson(query)).ConfigureAwait(false);
                    return;
                case ("POST", "/v1/config/rollback"):
                    await RollbackAsync(c, query).ConfigureAwait(false);
                    return;
                case ("POST", "/v1/reload"):
                    await Respond(c, await _backend.ReloadAsync().ConfigureAwait(false)).ConfigureAwait(false);
                    return;
                case ("POST", "/v1/access-log/reopen"):
                    await ReopenAccessLogAsync(c).ConfigureAwait(false);
                    return;
                case ("GET", "/v1/routes"):
                    await Json(c, 200, RoutesJson(Page.From(query))).ConfigureAwait(false);
                    return;
                case ("GET", "/v1/clusters"):
                    await Json(c, 200, ClustersJson(Page.From(query))).ConfigureAwait(false);
                    return;
                case ("GET", "/v1/certificates"):
                    await Json(c, 200, CertificatesJson(Page.From(query))).ConfigureAwait(false);
                    return;
                case ("POST", "/v1/certificates/reload"):
                    await Respond(c, await _backend.ReloadCertificatesAsync("admin api").ConfigureAwait(false)).ConfigureAwait(false);
                    return;
                case ("GET", "/v1/logs"):
                    await LogsAsync(c, query).ConfigureAwait(false);
                    return;
                case ("GET", "/v1/tls/session-tickets"):
                    await Json(c, 200, SessionTicketsJson()).ConfigureAwait(false);
                    return;
                case ("POST", "/v1/tls/session-tickets/rotate"):
                    await RotateSessionTicketsAsync(c, query).ConfigureAwait(false);
                    return;
                case ("GET", "/v1/metrics"):
                    await Text(c, 200, "text/plain; version=0.0.4; charset=utf-8", Metrics()).ConfigureAwait(false);
                    return;
            }

            if (await _resources.TryHandleAsync(c, method, path, query, ReadBodyAsync).ConfigureAwait(false)
                || await _state.TryHandleAsync(c, method, path, query, ReadBodyAsync).ConfigureAwait(false))
            {
                return;
            }

            bool known = path is "/v1/status" or "/v1/config" or "/v1/config/revisions" or "/v1/config/rollback" or "/v1/reload"
                or "/v1/routes" or "/v1/clusters" or "/v1/certificates" or "/v1/tenants" or "/v1/listeners" or "/v1/metrics" or "/v1/logs"
                or "/v1/access-log/reopen" or "/v1/tls/session-tickets" or "/v1/tls/session-tickets/rotate";
            await Json(c, known ? 405 : 404, AdminJson.Problem(known ? 405 : 404, known ? "Method Not Allowed" : "Not Found",
                known ? $"{method} is not supported on {path}" : $"no admin endpoint {path}")).ConfigureAwait(false);
        }
        catch (BadRequestException)
        {
            throw;
        }
        catch (Exception e) when (e is not IOException and not OperationCanceledException)
        {
            _logger.LogError(e, "admin: {Method} {Path} failed", method, path);
            await Json(c, 500, AdminJson.Problem(500, "Internal Server Error", e.Message)).ConfigureAwait(false);
        }
    }

    /// <summary>How session tickets are sealed: counts and times, never a key or a key's name.</summary>
    private static byte[] SessionTicketsJson()
    {
        Tls.SessionTicketStatus t = Tls.SessionTickets.Status();
        return AdminJson.Write(w =>
        {
            w.WriteStartObject();
            w.WriteBoolean("ownKeys", t.Available); // false: OpenSSL's own keys (the appliance could not reach it)
            w.WriteBoolean("enabled", t.Enabled);
            w.WriteString("source", t.FromFiles ? "keyFiles" : "generated");
            w.WriteNumber("keys", t.Keys);
            if (t.Rotate is { } rotate)
            {
                w.WriteNumber("rotateSeconds", (long)rotate.TotalSeconds);
            }

            w.WriteString("newestKeySince", t.NewestKeySince);
            w.WriteNumber("certificateContexts", t.Contexts);
            w.WriteBoolean("renewOnResumption", t.RenewOnResumption);
            w.WriteNumber("perHandshake", t.PerHandshake);
            w.WriteNumber("cacheSize", t.CacheSize);
            w.WriteNumber("cachedSessions", t.CachedSessions);
            w.WriteNumber("cacheFullEvictions", t.CacheFullEvictions);
            w.WriteEndObject();
        });
    }

    /// <summary>
    /// A new generated key seals from now on; the older ones still open tickets, unless <c>?revoke=true</c> drops them
    /// (a key suspected to have leaked: every outstanding ticket then needs a full handshake). 409 when the keys come
    /// from files.
    /// </summary>
    private async ValueTask RotateSessionTicketsAsync(RequestContext c, string query)
    {
        string? revokeValue = QueryValues(query, "revoke").LastOrDefault();
        if (revokeValue is not (null or "true" or "false"))
        {
            await Json(c, 400, AdminJson.Problem(400, "Bad Request", "revoke must be true or false")).ConfigureAwait(false);
            return;
        }

        bool revoke = revokeValue == "true";
        if (!Tls.SessionTickets.Rotate(revoke))
        {
            await Json(c, 409, AdminJson.Problem(409, "Conflict",
                "the session ticket keys come from server.sessionTickets.keyFiles: rotate them by rewriting the files")).ConfigureAwait(false);
            return;
        }

        _logger.LogInformation("tls: session ticket keys {Action} (admin api): {Tickets}", revoke ? "revoked" : "rotated", Tls.SessionTickets.Describe());
        await Json(c, 200, SessionTicketsJson()).ConfigureAwait(false);
    }

    /// <summary>Opens the access log by its path again (after logrotate moved it): 200 with the path, 404 when there is none.</summary>
    private async ValueTask ReopenAccessLogAsync(RequestContext c)
    {
        string? path;
        try
        {
            path = await _backend.ReopenAccessLogAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await Json(c, 500, AdminJson.Problem(500, "Internal Server Error", $"cannot reopen the access log: {e.Message}")).ConfigureAwait(false);
            return;
        }

        if (path is null)
        {
            await Json(c, 404, AdminJson.Problem(404, "Not Found", "no access log is configured (server.accessLog)")).ConfigureAwait(false);
            return;
        }

        await Json(c, 200, AdminJson.Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("reopened", path);
            w.WriteEndObject();
        })).ConfigureAwait(false);
    }

    private async ValueTask UploadCertificateAsync(RequestContext c, string name)
    {
        byte[]? body = await ReadBodyAsync(c).ConfigureAwait(false);
        if (body is null)
        {
            await Json(c, 413, AdminJson.Problem(413, "Content Too Large", $"at most {MaxBodyBytes} bytes")).ConfigureAwait(false);
            return;
        }

        Task<ApplyResult>? upload = _backend.UploadCertificateAsync(name, Encoding.UTF8.GetString(body));
        if (upload is null)
        {
            await Json(c, 404, AdminJson.Problem(404, "Not Found", $"no certificate '{name}' with certificatePath and keyPath in the config")).ConfigureAwait(false);
            return;
        }

        await Respond(c, await upload.ConfigureAwait(false)).ConfigureAwait(false);
    }

    /// <summary>
    /// Issues an ACME certificate now (after any issuance under way) and hot-loads it: 200 with the new serial and
    /// the reload's changes, 422 with the ACME problem detail when the CA refused or validation failed.
    /// </summary>
    private async ValueTask RenewCertificateAsync(RequestContext c, string name)
    {
        Task<RenewalOutcome>? renewal = _backend.RenewCertificateAsync(name);
        if (renewal is null)
        {
            await Json(c, 404, AdminJson.Problem(404, "Not Found", $"no certificate '{name}' with an 'acme' block in the config")).ConfigureAwait(false);
            return;
        }

        RenewalOutcome outcome = await renewal.ConfigureAwait(false);
        if (!outcome.Ok)
        {
            await Json(c, 422, AdminJson.Problem(422, "Unprocessable Content", $"renewal of '{name}' failed: {outcome.Detail}",
                [new ConfigError($"certificates.{name}.acme", outcome.Detail)])).ConfigureAwait(false);
            return;
        }

        await Json(c, 200, AdminJson.Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("renewed", name);
            w.WriteString("serial", outcome.SerialNumber);
            w.WriteString("detail", outcome.Detail);
            w.WriteStrings("changes", outcome.Changes);
            w.WriteEndObject();
        })).ConfigureAwait(false);
    }

    /// <summary>
    /// The last <c>lines</c> (default 100) lines logged, as text; with <c>follow=true</c> the response stays open and
    /// every new line follows as it is logged (chunked), until the client goes away or the appliance stops.
    /// </summary>
    private async ValueTask LogsAsync(RequestContext c, string query)
    {
        int lines = Math.Clamp(QueryInt(query, "lines", 100), 0, 100_000);
        bool follow = query.Contains("follow=true", StringComparison.OrdinalIgnoreCase);
        Telemetry.RecentLogs logs = _backend.Logs;
        var batch = new List<string>();
        long next = logs.Read(Math.Max(0, logs.Next - lines), batch);
        c.ResponseHeaders.Add(Protocol.Headers.KnownHeader.CacheControl, "Cache-Control"u8, "no-store"u8);
        if (!follow)
        {
            byte[] text = Encoding.UTF8.GetBytes(string.Concat(batch.Select(l => l + "\n")));
            await c.RespondAsync(200, "text/plain; charset=utf-8"u8, text).ConfigureAwait(false);
            return;
        }

        c.StatusCode = 200;
        c.ResponseHeaders.Add(Protocol.Headers.KnownHeader.ContentType, "Content-Type"u8, "text/plain; charset=utf-8"u8);

        while (true)
        {
            Task appended = logs.Appended; // taken before reading, so a line logged in between is not missed
            if (batch.Count > 0)
            {
                await c.WriteAsync(Encoding.UTF8.GetBytes(string.Concat(batch.Select(l => l + "\n")))).ConfigureAwait(false);
                batch.Clear();
            }

            await c.FlushAsync().ConfigureAwait(false);
            await appended.ConfigureAwait(false);
            next = logs.Read(next, batch);
        }
    }

    private async ValueTask ApplyAsync(RequestContext c, bool dryRun)
    {
        byte[]? body = await ReadBodyAsync(c).ConfigureAwait(false);
        if (body is null)
        {
            await Json(c, 413, AdminJson.Problem(413, "Content Too Large", $"a config is at most {MaxBodyBytes} bytes")).ConfigureAwait(false);
            return;
        }

        ApplianceConfig config;
        try
        {
            config = ConfigLoader.Parse(body);
        }
        catch (ConfigException e)
        {
            await Json(c, 400, AdminJson.Problem(400, "Bad Request", "the config document is not valid JSON of the expected shape", e.Errors)).ConfigureAwait(false);
            return;
        }

        ApplyResult result = await _backend.ApplyAsync(config, dryRun, "admin api").ConfigureAwait(false);
        await Respond(c, result, dryRun).ConfigureAwait(false);
    }

    private async ValueTask RollbackAsync(RequestContext c, string query)
    {
        _ = int.TryParse(QueryValues(query, "revision").LastOrDefault(), out int revision);

        if (revision <= 0)
        {
            await Json(c, 400, AdminJson.Problem(400, "Bad Request", "query parameter 'revision' (a positive number) is required",
                [new ConfigError("revision", "required")])).ConfigureAwait(false);
            return;
        }

        await Respond(c, await _backend.RollbackAsync(revision).ConfigureAwait(false)).ConfigureAwait(false);
    }

    private static ValueTask Respond(RequestContext c, ApplyResult result, bool dryRun = false)
    {
        if (!result.Ok)
        {
            return Json(c, 422, AdminJson.Problem(422, "Unprocessable Content", "the config was refused; the running config is unchanged", result.Errors));
        }

        return Json(c, 200, AdminJson.Write(w =>
        {
            w.WriteStartObject();
            w.WriteBoolean("applied", !dryRun);
            w.WriteNumber("revision", result.Revision);
            w.WriteStrings("changes", result.Changes);
            w.WriteEndObject();
        }));
    }

    /// <summary>The whole body, or null past <see cref="MaxBodyBytes"/>.</summary>
    private static async ValueTask<byte[]?> ReadBodyAsync(RequestContext c)
    {
        if (c.Body.Length > MaxBodyBytes)
        {
            return null;
        }

        var buffer = new ArrayBufferWriter<byte>(c.Body.Length > 0 ? (int)c.Body.Length : 4096);
        while (true)
        {
            ReadResult read = await c.Body.ReadAsync().ConfigureAwait(false);
            if (buffer.WrittenCount + read.Buffer.Length > MaxBodyBytes)
            {
                c.Body.AdvanceTo(read.Buffer.End);
                c.CloseConnection = true; // the rest of an oversized body is not worth reading
                return null;
            }

            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                buffer.Write(segment.Span);
            }

            c.Body.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted || c.Body.IsComplete)
            {
                return buffer.WrittenSpan.ToArray();
            }
        }
    }

    private byte[] Status() => AdminJson.Write(w =>
    {
        ConfigSnapshot s = _backend.Snapshot;
        w.WriteStartObject();
        w.WriteString("version", Hosting.Program.Version);
        w.WriteString("startedAt", _backend.StartedAt);
        w.WriteNumber("uptimeSeconds", (long)(DateTimeOffset.UtcNow - _backend.StartedAt).TotalSeconds);
        w.WriteNumber("configRevision", _backend.Revision);
        w.WriteNumber("connections", _backend.ConnectionCount);
        w.WriteNumber("routes", s.Routes.Routes.Count);
        w.WriteNumber("clusters", s.Clusters.Count);
        w.WriteNumber("certificates", s.Certificates.Count);
        w.WriteStartArray("listeners");
        foreach (ListenerStatus l in _backend.ListenerStatus())
        {
            w.WriteStartObject();
            w.WriteString("name", l.Name);
            w.WriteString("address", l.Address);
            w.WriteNumber("connections", l.Connections);
            w.WriteNumber("rejectedConnections", l.Rejected);
            w.WriteNumber("acceptErrors", l.AcceptErrors);
            if (l.Problem is { } problem)
            {
                w.WriteString("problem", problem);
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    });

    private byte[] RevisionsJson(string query)
    {
        int offset = QueryInt(query, "offset", 0);
        int limit = Math.Clamp(QueryInt(query, "limit", 50), 1, 500);
        IReadOnlyList<ConfigRevision> all = _backend.Revisions();
        return AdminJson.Write(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("total", all.Count);
            w.WriteNumber("offset", offset);
            w.WriteNumber("limit", limit);
            w.WriteStartArray("items");
            foreach (ConfigRevision r in all.Reverse().Skip(offset).Take(limit))
            {
                w.WriteStartObject();
                w.WriteNumber("revision", r.Revision);
                w.WriteString("appliedAt", r.AppliedAt);
                w.WriteString("source", r.Source);
                w.WriteBoolean("current", r.Revision == _backend.Revision);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });
    }

    internal static int QueryInt(string query, string name, int fallback)
    {
        foreach (string value in QueryValues(query, name))
        {
            if (int.TryParse(value, out int v) && v >= 0)
            {
                return v;
            }
        }

        return fallback;
    }

    /// <summary>Every value of one query parameter, in order (raw: the admin API's parameters are plain tokens).</summary>
    internal static IEnumerable<string> QueryValues(string query, string name)
    {
        foreach (string part in query.TrimStart('?').Split('&'))
        {
            if (part.Length > name.Length && part[name.Length] == '=' && part.StartsWith(name, StringComparison.Ordinal))
            {
                yield return part[(name.Length + 1)..];
            }
        }
    }

    /// <summary>?offset=&amp;limit= of a list (default 0 and 100, at most 1000); lists answer with total, offset and limit.</summary>
    private readonly record struct Page(int Offset, int Limit)
    {
        public static Page From(string query) => new(QueryInt(query, "offset", 0), Math.Clamp(QueryInt(query, "limit", 100), 1, 1000));

        public IEnumerable<T> Of<T>(IReadOnlyList<T> all, Utf8JsonWriter w)
        {
            w.WriteNumber("total", all.Count);
            w.WriteNumber("offset", Offset);
            w.WriteNumber("limit", Limit);
            return all.Skip(Offset).Take(Limit);
        }
    }

    private byte[] RoutesJson(Page page) => AdminJson.Write(w =>
    {
        w.WriteStartObject();
        IEnumerable<Routing.RouteModel> routes = page.Of(_backend.Snapshot.Routes.Routes, w);
        w.WriteStartArray("items");
        foreach (Routing.RouteModel r in routes)
        {
            w.WriteStartObject();
            w.WriteString("id", r.Id);
            if (r.Tenant is not null) w.WriteString("tenant", r.Tenant);
            w.WriteNumber("order", r.Order);
            w.WriteStartArray("hosts");
            foreach (string h in r.Hosts) w.WriteStringValue(h);
            w.WriteEndArray();
            w.WriteString("path", r.Path.Text);
            w.WriteString("handler", r.Handler switch
            {
                Routing.DirectResponseHandler => "direct",
                Routing.RedirectHandler => "redirect",
                Proxy.ProxyHandler p => "cluster:" + p.Cluster.Id,
                Ai.AiHandler => "ai",
                _ => r.Handler.GetType().Name,
            });
            if (r.Policies is { } chain)
            {
                w.WriteStartArray("policies");
                foreach (Policies.RequestPolicy policy in chain.Policies)
                {
                    w.WriteStartObject();
                    w.WriteString("name", policy.Name);
                    w.WriteNumber("refusals", policy.Refusals);
                    if (policy is Policies.RateLimitPolicy limit)
                    {
                        w.WriteNumber("keys", limit.Table.Count);
                        w.WriteNumber("maxKeys", limit.Table.MaxKeys);
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    });

    private byte[] ClustersJson(Page page) => AdminJson.Write(w =>
    {
        w.WriteStartObject();
        IEnumerable<Proxy.ClusterModel> clusters = page.Of(_backend.Snapshot.Clusters, w);
        w.WriteStartArray("items");
        foreach (Proxy.ClusterModel cl in clusters)
        {
            w.WriteStartObject();
            w.WriteString("id", cl.Id);
            w.WriteString("loadBalancing", cl.Policy.ToString());
            w.WriteStartArray("destinations");
            foreach (Proxy.DestinationModel d in cl.Destinations)
            {
                w.WriteStartObject();
                w.WriteString("address", d.Address);
                w.WriteNumber("weight", d.Weight);
                w.WriteNumber("inFlight", d.InFlight);
                w.WriteNumber("openConnections", d.OpenConnections);
                w.WriteNumber("pendingRequests", d.PendingRequests);
                w.WriteNumber("latencyEwmaMs", Math.Round(d.LatencyEwmaMilliseconds, 3));
                w.WriteBoolean("available", d.Health.IsAvailable);
                w.WriteBoolean("activeHealthy", d.Health.ActiveHealthy);
                w.WriteBoolean("ejected", d.Health.IsEjected);
                w.WriteNumber("ejections", d.Health.Ejections);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    });

    private byte[] CertificatesJson(Page page) => AdminJson.Write(w =>
    {
        w.WriteStartObject();
        IEnumerable<Tls.LoadedCertificate> certificates = page.Of(_backend.Snapshot.Certificates, w);
        w.WriteStartArray("items");
        foreach (Tls.LoadedCertificate cert in certificates)
        {
            w.WriteStartObject();
            w.WriteString("name", cert.Name);
            w.WriteStrings("hosts", cert.Hosts);
            w.WriteString("subject", cert.Leaf.Subject);
            w.WriteString("issuer", cert.Leaf.Issuer);
            w.WriteString("notAfter", cert.NotAfter);
            w.WriteNumber("daysLeft", Math.Floor((cert.NotAfter - DateTimeOffset.UtcNow).TotalDays));
            w.WriteString("keyAlgorithm", cert.KeyAlgorithm);
            w.WriteString("serial", cert.Leaf.SerialNumber);
            w.WriteString("sha256", cert.Thumbprint);
            w.WriteStartObject("ocsp");
            (int Bytes, DateTimeOffset NextUpdate)? staple = Tls.OcspStaple.Current(cert.Context);
            w.WriteBoolean("stapled", staple is not null);
            if (staple is { } s)
            {
                w.WriteNumber("bytes", s.Bytes);
                w.WriteString("nextUpdate", s.NextUpdate);
            }

            w.WriteEndObject();
            if (_backend.AcmeStatus(cert.Name) is { } acme)
            {
                w.WriteStartObject("acme");
                w.WriteString("state", acme.State);
                w.WriteString("challenge", acme.Challenge);
                w.WriteString("directory", acme.Directory);
                if (acme.NextRenewal is { } next) w.WriteString("nextRenewal", next);
                if (acme.LastIssued is { } issued) w.WriteString("lastIssued", issued);
                if (acme.LastError is { } error) w.WriteString("lastError", error);
                w.WriteEndObject();
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    });

    private string Metrics()
    {
        var sb = new StringBuilder();
        Sample(sb, "appliance_connections", "gauge", "Open client connections.", _backend.ConnectionCount);
        Sample(sb, "appliance_config_revision", "gauge", "Revision of the running config.", _backend.Revision);
        sb.Append("# HELP tls_certificate_expiry_seconds Seconds until a served certificate expires (negative: expired).\n# TYPE tls_certificate_expiry_seconds gauge\n");
        foreach (Tls.LoadedCertificate cert in _backend.Snapshot.Certificates)
        {
            sb.Append("tls_certificate_expiry_seconds{name=\"").Append(cert.Name).Append("\"} ")
                .Append((long)(cert.NotAfter - DateTimeOffset.UtcNow).TotalSeconds).Append('\n');
        }

        sb.Append("# HELP tls_handshakes_total TLS handshakes by outcome (resumed: a session ID, ticket or PSK was accepted).\n# TYPE tls_handshakes_total counter\n");
        foreach ((string result, long count) in TlsHandshakeCounters.Snapshot())
        {
            sb.Append("tls_handshakes_total{result=\"").Append(result).Append("\"} ").Append(count).Append('\n');
        }

        Tls.SessionTicketStatus tickets = Tls.SessionTickets.Status();
        Sample(sb, "tls_session_cache_sessions", "gauge", "Sessions the server's TLS session caches hold (every certificate's).", tickets.CachedSessions);
        Sample(sb, "tls_session_cache_evictions_total", "counter",
            "Sessions the TLS session caches let go for want of room (server.sessionTickets.cacheSize; a certificate reloaded starts its count again).",
            tickets.CacheFullEvictions);
        sb.Append("# HELP tls_record_layer_connections_total TLS connections by who ran their records after the handshake (server.tlsRecordLayer).\n# TYPE tls_record_layer_connections_total counter\n");
        foreach ((string layer, long count) in TlsHandshakeCounters.RecordLayers())
        {
            sb.Append("tls_record_layer_connections_total{layer=\"").Append(layer).Append("\"} ").Append(count).Append('\n');
        }

        sb.Append("# HELP appliance_limit_trips_total Requests or connections refused by a limit, by reason.\n# TYPE appliance_limit_trips_total counter\n");
        foreach ((string reason, long count) in LimitCounters.Snapshot().OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            sb.Append("appliance_limit_trips_total{reason=\"").Append(reason).Append("\"} ").Append(count).Append('\n');
        }

        AccessLog accessLog = _backend.AccessLog;
        Sample(sb, "access_log_lines_total", "counter", "Access log lines queued for the file.", accessLog.Lines);
        Sample(sb, "access_log_dropped_total", "counter", "Access log lines dropped: the writer's queue was full, or the file could not be written.", accessLog.Dropped);
        Sample(sb, "dotnet_gc_allocated_bytes_total", "counter", "Bytes allocated on the managed heap since start.", GC.GetTotalAllocatedBytes(precise: false));
        sb.Append("# HELP dotnet_gc_collections_total Garbage collections by generation.\n# TYPE dotnet_gc_collections_total counter\n");
        for (int gen = 0; gen <= GC.MaxGeneration; gen++)
        {
            sb.Append("dotnet_gc_collections_total{generation=\"").Append(gen).Append("\"} ").Append(GC.CollectionCount(gen)).Append('\n');
        }

        GCMemoryInfo gc = GC.GetGCMemoryInfo();
        Sample(sb, "dotnet_gc_heap_size_bytes", "gauge", "Managed heap size after the last garbage collection, live objects and fragmentation.", gc.HeapSizeBytes);
        Sample(sb, "dotnet_gc_committed_bytes", "gauge", "Memory the garbage collector has committed.", gc.TotalCommittedBytes);
        Sample(sb, "dotnet_gc_total_memory_bytes", "gauge", "Managed bytes in use now, garbage not yet collected included.", GC.GetTotalMemory(forceFullCollection: false));
        Sample(sb, "process_resident_memory_bytes", "gauge", "Resident set size.", Environment.WorkingSet);
        IReadOnlyList<ListenerStatus> listeners = _backend.ListenerStatus();
        ListenerSamples(sb, listeners, "appliance_listener_connections", "gauge", "Open connections per listener.", l => l.Connections);
        ListenerSamples(sb, listeners, "appliance_listener_rejected_connections_total", "counter",
            "Connections closed at accept because the listener was at its maxConnections.", l => l.Rejected);
        ListenerSamples(sb, listeners, "appliance_listener_accept_errors_total", "counter",
            "Accepts that failed and left their connection queued (EMFILE, ENFILE, ENOBUFS, ENOMEM and the like); the listener pauses 50 ms after each.", l => l.AcceptErrors);
        PolicySamples(sb, _backend.Snapshot.Routes.Routes);
        AiSamples(sb, _backend.Snapshot.Ai?.Counters);
        return sb.ToString();
    }

    /// <summary>Per model of the ai section: attempts sent to its provider, those the provider failed, tokens.</summary>
    private static void AiSamples(StringBuilder sb, Ai.AiCounters? counters)
    {
        if (counters is null)
        {
            return;
        }

        KeyValuePair<string, Ai.ModelCounters>[] models = counters.Models.ToArray();
        ModelSamples(sb, models, "appliance_ai_requests_total", "Requests sent to a model's provider (fallbacks count for the model they went to).", m => m.Attempts);
        ModelSamples(sb, models, "appliance_ai_provider_failures_total", "Requests a model's provider failed before answering: unreachable, timeout, 408, 429, 5xx, refused key.", m => m.ProviderFailures);
        sb.Append("# HELP appliance_ai_tokens_total Tokens a model's answers cost, as its provider counted them.\n# TYPE appliance_ai_tokens_total counter\n");
        foreach ((string model, Ai.ModelCounters m) in models)
        {
            sb.Append("appliance_ai_tokens_total{model=\"").Append(LabelValue(model)).Append("\",type=\"input\"} ").Append(m.InputTokens).Append('\n');
            sb.Append("appliance_ai_tokens_total{model=\"").Append(LabelValue(model)).Append("\",type=\"output\"} ").Append(m.OutputTokens).Append('\n');
        }

        sb.Append("# HELP appliance_ai_cost_total What a model's answers cost by its price (ai.models[].cost), in the prices' currency; 0 without a price.\n# TYPE appliance_ai_cost_total counter\n");
        foreach ((string model, Ai.ModelCounters m) in models)
        {
            sb.Append("appliance_ai_cost_total{model=\"").Append(LabelValue(model)).Append("\"} ").Append(Ai.ModelCost.Format(m.CostNanos)).Append('\n');
        }
    }

    private static void ModelSamples(StringBuilder sb, KeyValuePair<string, Ai.ModelCounters>[] models, string name, string help, Func<Ai.ModelCounters, long> value)
    {
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(" counter\n");
        foreach ((string model, Ai.ModelCounters m) in models)
        {
            sb.Append(name).Append("{model=\"").Append(LabelValue(model)).Append("\"} ").Append(value(m)).Append('\n');
        }
    }

    /// <summary>A Prometheus label value: backslash, quote and newline escaped (model names are free text).</summary>
    private static string LabelValue(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>Refusals per route and policy, and each rate limit's table: keys held, new keys refused when it was full.</summary>
    private static void PolicySamples(StringBuilder sb, IReadOnlyList<Routing.RouteModel> routes)
    {
        sb.Append("# HELP appliance_policy_refusals_total Requests a route's policy refused, by route and policy.\n# TYPE appliance_policy_refusals_total counter\n");
        foreach (Routing.RouteModel route in routes)
        {
            foreach (Policies.RequestPolicy policy in route.Policies?.Policies ?? [])
            {
                sb.Append("appliance_policy_refusals_total{route=\"").Append(route.Id).Append("\",policy=\"").Append(policy.Name).Append("\"} ")
                    .Append(policy.Refusals).Append('\n');
            }
        }

        RouteSamples(sb, routes, "appliance_rate_limit_keys", "gauge", "Keys a route's rate limit holds now (of its maxKeys).", t => t.Count);
        RouteSamples(sb, routes, "appliance_rate_limit_table_full_total", "counter", "Requests with a new key that a route's rate limit refused because its table was full.", t => t.Full);
    }

    private static void RouteSamples(StringBuilder sb, IReadOnlyList<Routing.RouteModel> routes, string name, string type, string help, Func<Policies.RateLimitTable, long> value)
    {
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        foreach (Routing.RouteModel route in routes)
        {
            if (route.Policies?.Find<Policies.RateLimitPolicy>() is { } limit)
            {
                sb.Append(name).Append("{route=\"").Append(route.Id).Append("\"} ").Append(value(limit.Table)).Append('\n');
            }
        }
    }

    private static void ListenerSamples(StringBuilder sb, IReadOnlyList<ListenerStatus> listeners, string name, string type, string help, Func<ListenerStatus, long> value)
    {
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        foreach (ListenerStatus l in listeners)
        {
            sb.Append(name).Append("{listener=\"").Append(l.Name).Append("\"} ").Append(value(l)).Append('\n');
        }
    }

    /// <summary>A metric with one sample and no labels, in Prometheus text: its HELP and TYPE lines, then the value.</summary>
    private static void Sample(StringBuilder sb, string name, string type, string help, long value) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(' ').Append(type).Append('\n')
            .Append(name).Append(' ').Append(value).Append('\n');

    internal static ValueTask Json(RequestContext c, int status, byte[] body) =>
        c.RespondAsync(status, status >= 400 ? "application/problem+json"u8 : "application/json"u8, body);

    private static ValueTask Text(RequestContext c, int status, string contentType, string body) =>
        c.RespondAsync(status, Encoding.ASCII.GetBytes(contentType), Encoding.UTF8.GetBytes(body));
}

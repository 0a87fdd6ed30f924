using System.Text;
using System.Text.Json.Serialization.Metadata;
using Appliance.Config;
using Appliance.Server;

namespace Appliance.Admin;

/// <summary>
/// Routes, clusters, certificates, tenants and listeners as REST resources over the running config:
/// <c>GET /v1/{kind}/{id}</c> gives the entry as the config holds it (what PUT takes back), <c>POST /v1/{kind}</c>
/// creates (409 when the id exists), <c>PUT /v1/{kind}/{id}</c> creates or replaces, <c>DELETE /v1/{kind}/{id}</c>
/// removes. Each change is a whole new config, validated and applied like <c>PUT /v1/config</c> (a new revision,
/// rollback possible); <c>?dryRun=true</c> validates only. Changes are serialised, so two admins cannot lose each
/// other's edits.
/// </summary>
internal sealed class ConfigResources(IAdminBackend backend)
{
    private readonly SemaphoreSlim _edit = new(1, 1);

    /// <summary>One kind of entry: where it lives in the config and how it is named.</summary>
    internal abstract class Kind(string name)
    {
        public string Name { get; } = name;

        public abstract int IndexOf(ApplianceConfig config, string id);

        public abstract int Count(ApplianceConfig config);

        public abstract byte[] Serialize(ApplianceConfig config, int index);

        /// <summary>
        /// Parses an entry into the config (its id is set to <paramref name="id"/> when absent, or must match it);
        /// true when it replaced an entry with the same id.
        /// </summary>
        public abstract bool Put(ApplianceConfig config, byte[] json, string? id, out string entryId);

        public abstract void Remove(ApplianceConfig config, int index);
    }

    private sealed class Kind<T>(string name, JsonTypeInfo<T> type, Func<ApplianceConfig, List<T>?> get, Action<ApplianceConfig, List<T>> set,
        Func<T, string?> id, Action<T, string> setId, string idField) : Kind(name)
        where T : class
    {
        public override int IndexOf(ApplianceConfig config, string entryId) => get(config)?.FindIndex(e => id(e) == entryId) ?? -1;

        public override int Count(ApplianceConfig config) => get(config)?.Count ?? 0;

        public override byte[] Serialize(ApplianceConfig config, int index) =>
            System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(get(config)![index], type);

        public override bool Put(ApplianceConfig config, byte[] json, string? entryId, out string finalId)
        {
            T entry = ConfigLoader.ParseFragment(json, type, Name);
            string? bodyId = id(entry);
            if (entryId is not null && bodyId is not null && bodyId != entryId)
            {
                throw new ConfigException([new ConfigError($"{Name}.{idField}", $"'{bodyId}' differs from '{entryId}' in the path")]);
            }

            string chosen = entryId ?? bodyId ?? throw new ConfigException([new ConfigError($"{Name}.{idField}", "is required")]);
            finalId = chosen;
            setId(entry, chosen);
            List<T> list = get(config) ?? [];
            set(config, list);
            int at = list.FindIndex(e => id(e) == chosen);
            if (at >= 0)
            {
                list[at] = entry;
                return true;
            }

            list.Add(entry);
            return false;
        }

        public override void Remove(ApplianceConfig config, int index) => get(config)!.RemoveAt(index);
    }

    private static readonly Dictionary<string, Kind> s_kinds = new(StringComparer.Ordinal)
    {
        ["routes"] = new Kind<RouteConfig>("routes", ConfigJsonContext.Default.RouteConfig, c => c.Routes, (c, l) => c.Routes = l,
            e => e.Id, (e, v) => e.Id = v, "id"),
        ["clusters"] = new Kind<ClusterConfig>("clusters", ConfigJsonContext.Default.ClusterConfig, c => c.Clusters, (c, l) => c.Clusters = l,
            e => e.Id, (e, v) => e.Id = v, "id"),
        ["certificates"] = new Kind<CertificateConfig>("certificates", ConfigJsonContext.Default.CertificateConfig, c => c.Certificates,
            (c, l) => c.Certificates = l, e => e.Name, (e, v) => e.Name = v, "name"),
        ["tenants"] = new Kind<TenantConfig>("tenants", ConfigJsonContext.Default.TenantConfig, c => c.Tenants, (c, l) => c.Tenants = l,
            e => e.Id, (e, v) => e.Id = v, "id"),
        ["listeners"] = new Kind<ListenerConfig>("listeners", ConfigJsonContext.Default.ListenerConfig, c => c.Listeners, (c, l) => c.Listeners = l,
            e => e.Name, (e, v) => e.Name = v, "name"),
    };

    public static bool IsKind(string name) => s_kinds.ContainsKey(name);

    /// <summary>Handles <c>/v1/{kind}/{id}</c> and <c>POST /v1/{kind}</c>; false when the path is not one of them.</summary>
    public async ValueTask<bool> TryHandleAsync(RequestContext c, string method, string path, string query, Func<RequestContext, ValueTask<byte[]?>> readBody)
    {
        // "/v1/routes/api" or "/v1/routes"
        string[] parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length is < 2 or > 3 || parts[0] != "v1" || !s_kinds.TryGetValue(parts[1], out Kind? kind)
            || (parts.Length == 2 && method is not ("POST" or "GET")))
        {
            return false;
        }

        if (parts.Length == 2 && method == "GET")
        {
            // The config entries of a kind (routes, clusters and certificates have a runtime view before this).
            ApplianceConfig source = backend.Snapshot.Source;
            int count = kind.Count(source);
            int offset = AdminDispatcher.QueryInt(query, "offset", 0);
            int limit = Math.Clamp(AdminDispatcher.QueryInt(query, "limit", 100), 1, 1000);
            await AdminDispatcher.Json(c, 200, AdminJson.Write(w =>
            {
                w.WriteStartObject();
                w.WriteNumber("total", count);
                w.WriteNumber("offset", offset);
                w.WriteNumber("limit", limit);
                w.WriteStartArray("items");
                for (int i = offset; i < count && i < offset + limit; i++)
                {
                    w.WriteRawValue(kind.Serialize(source, i));
                }

                w.WriteEndArray();
                w.WriteEndObject();
            })).ConfigureAwait(false);
            return true;
        }

        string? id = parts.Length == 3 ? Uri.UnescapeDataString(parts[2]) : null;
        bool dryRun = query.Contains("dryRun=true", StringComparison.OrdinalIgnoreCase);
        switch (method)
        {
            case "GET" when id is not null:
            {
                ApplianceConfig config = backend.Snapshot.Source;
                int at = kind.IndexOf(config, id);
                await (at < 0 ? NotFound(c, kind, id) : AdminDispatcher.Json(c, 200, kind.Serialize(config, at))).ConfigureAwait(false);
                return true;
            }

            case "POST" or "PUT":
            {
                byte[]? body = await readBody(c).ConfigureAwait(false);
                if (body is null)
                {
                    await AdminDispatcher.Json(c, 413, AdminJson.Problem(413, "Content Too Large", $"at most {AdminDispatcher.MaxBodyBytes} bytes")).ConfigureAwait(false);
                    return true;
                }

                await EditAsync(c, kind, dryRun, config =>
                {
                    if (method == "POST" && id is not null)
                    {
                        return (405, "POST creates in the collection: use PUT to create or replace one by id");
                    }

                    bool existed = kind.Put(config, body, id, out string finalId);
                    if (method == "POST" && existed)
                    {
                        return (409, $"{kind.Name} '{finalId}' exists: PUT /v1/{kind.Name}/{finalId} replaces it");
                    }

                    return (existed ? 200 : 201, finalId);
                }).ConfigureAwait(false);
                return true;
            }

            case "DELETE" when id is not null:
                await EditAsync(c, kind, dryRun, config =>
                {
                    int at = kind.IndexOf(config, id);
                    if (at < 0)
                    {
                        return (404, $"no {kind.Name} entry '{id}'");
                    }

                    kind.Remove(config, at);
                    return (200, id);
                }).ConfigureAwait(false);
                return true;

            default:
                await AdminDispatcher.Json(c, 405, AdminJson.Problem(405, "Method Not Allowed", $"{method} is not supported on {path}")).ConfigureAwait(false);
                return true;
        }
    }

    /// <summary>
    /// Copies the running config, lets <paramref name="change"/> edit it (returning a status and the entry id, or an
    /// error status and its detail), then validates and applies it. A refused config leaves the running one as it was.
    /// </summary>
    private async ValueTask EditAsync(RequestContext c, Kind kind, bool dryRun, Func<ApplianceConfig, (int Status, string IdOrDetail)> change)
    {
        await _edit.WaitAsync().ConfigureAwait(false);
        try
        {
            ApplianceConfig config = ConfigLoader.Parse(Encoding.UTF8.GetBytes(ConfigLoader.Serialize(backend.Snapshot.Source)));
            int status;
            string idOrDetail;
            try
            {
                (status, idOrDetail) = change(config);
            }
            catch (ConfigException e)
            {
                await AdminDispatcher.Json(c, 400, AdminJson.Problem(400, "Bad Request", $"not a valid {kind.Name} entry", e.Errors)).ConfigureAwait(false);
                return;
            }

            if (status >= 400)
            {
                string title = status switch { 404 => "Not Found", 405 => "Method Not Allowed", _ => "Conflict" };
                await AdminDispatcher.Json(c, status, AdminJson.Problem(status, title, idOrDetail)).ConfigureAwait(false);
                return;
            }

            ApplyResult result = await backend.ApplyAsync(config, dryRun, $"admin api: {kind.Name}/{idOrDetail}").ConfigureAwait(false);
            if (!result.Ok)
            {
                await AdminDispatcher.Json(c, 422, AdminJson.Problem(422, "Unprocessable Content",
                    "the change would make the config invalid; the running config is unchanged", result.Errors)).ConfigureAwait(false);
                return;
            }

            int at = kind.IndexOf(config, idOrDetail);
            byte[] entry = at >= 0 ? kind.Serialize(config, at) : "null"u8.ToArray();
            await AdminDispatcher.Json(c, dryRun ? 200 : status, AdminJson.Write(w =>
            {
                w.WriteStartObject();
                w.WriteBoolean("applied", !dryRun);
                w.WriteNumber("revision", result.Revision);
                w.WritePropertyName(kind.Name[..^1]);
                w.WriteRawValue(entry);
                w.WriteStrings("changes", result.Changes);
                w.WriteEndObject();
            })).ConfigureAwait(false);
        }
        finally
        {
            _edit.Release();
        }
    }

    private static ValueTask NotFound(RequestContext c, Kind kind, string id) =>
        AdminDispatcher.Json(c, 404, AdminJson.Problem(404, "Not Found", $"no {kind.Name} entry '{id}'"));
}

using System.Text.Json;
using Appliance.Config;
using Appliance.Server;
using Appliance.State;

namespace Appliance.Admin;

/// <summary>
/// What admin actions create at run time, from the state database: consumers (of a tenant), their API keys (the
/// secret shown once, at creation), subscriptions to APIs with their approval, and usage. Lists are keyset-paged
/// (<c>?limit=&amp;after=</c>, the answer's <c>next</c> is the following cursor). Bodies are small JSON objects read
/// strictly: unknown fields and wrong types are refused with the field's path.
/// </summary>
internal sealed class StateResources(IAdminBackend backend)
{
    /// <summary>Handles the paths below /v1 it owns; false for any other.</summary>
    public async ValueTask<bool> TryHandleAsync(RequestContext c, string method, string path, string query, Func<RequestContext, ValueTask<byte[]?>> readBody)
    {
        string[] p = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (p.Length < 2 || p[0] != "v1" || p[1] is not ("consumers" or "keys" or "subscriptions"))
        {
            return false;
        }

        StateStore? store = backend.StateStore;
        if (store is null)
        {
            await AdminDispatcher.Json(c, 503, AdminJson.Problem(503, "Service Unavailable", "the state database is not open")).ConfigureAwait(false);
            return true;
        }

        try
        {
            (int status, byte[] body) = (method, p[1], p.Length) switch
            {
                ("GET", "consumers", 2) => (200, ConsumersJson(store.ListConsumers(Required(query, "tenant"), Limit(query), After(query)))),
                ("POST", "consumers", 2) => await CreateConsumerAsync(c, store, readBody).ConfigureAwait(false),
                ("GET", "consumers", 3) => (200, One(store.GetConsumer(p[2]), "consumer", p[2], ConsumerJson)),
                ("PUT", "consumers", 3) => await UpdateConsumerAsync(c, store, p[2], readBody).ConfigureAwait(false),
                ("DELETE", "consumers", 3) => Deleted(() => store.DeleteConsumer(p[2])),
                ("GET", "consumers", 4) when p[3] == "keys" => (200, KeysJson(store.ListApiKeys(p[2], Limit(query), After(query)))),
                ("POST", "consumers", 4) when p[3] == "keys" => await CreateKeyAsync(c, store, p[2], readBody).ConfigureAwait(false),
                ("GET", "consumers", 4) when p[3] == "usage" => (200, UsageJson(ReadUsage(store, p[2], Param(query, "from"), Param(query, "to")))),
                ("GET", "keys", 3) => (200, One(store.GetApiKey(p[2]), "key", p[2], KeyJson)),
                ("DELETE", "keys", 3) => (200, Write(w => KeyJson(w, store.RevokeApiKey(p[2])))), // revoked, kept for the record
                ("GET", "subscriptions", 2) => (200, SubscriptionsJson(store.ListSubscriptions(Param(query, "consumer"), Status(query), Limit(query), After(query)))),
                ("POST", "subscriptions", 2) => await CreateSubscriptionAsync(c, store, readBody).ConfigureAwait(false),
                ("GET", "subscriptions", 3) => (200, One(store.GetSubscription(p[2]), "subscription", p[2], SubscriptionJson)),
                ("POST", "subscriptions", 4) when p[3] == "approve" => (200, Write(w => SubscriptionJson(w, store.ApproveSubscription(p[2], DecidedBy(c))))),
                ("POST", "subscriptions", 4) when p[3] == "reject" => (200, Write(w => SubscriptionJson(w, store.RejectSubscription(p[2], DecidedBy(c))))),
                ("DELETE", "subscriptions", 3) => Deleted(() => store.DeleteSubscription(p[2])),
                _ => (405, AdminJson.Problem(405, "Method Not Allowed", $"{method} is not supported on {path}")),
            };
            await AdminDispatcher.Json(c, status, body).ConfigureAwait(false);
        }
        catch (StateException e)
        {
            (int status, string title) = e.Kind switch
            {
                StateErrorKind.NotFound => (404, "Not Found"),
                StateErrorKind.Conflict => (409, "Conflict"),
                _ => (400, "Bad Request"),
            };
            await AdminDispatcher.Json(c, status, AdminJson.Problem(status, title, e.Detail, [e.ToError()])).ConfigureAwait(false);
        }
        catch (BodyException e)
        {
            await AdminDispatcher.Json(c, e.Status, AdminJson.Problem(e.Status, e.Status switch { 413 => "Content Too Large", 503 => "Service Unavailable", _ => "Bad Request" }, e.Message,
                e.Field is null ? null : [new ConfigError(e.Field, e.Message)])).ConfigureAwait(false);
        }

        return true;
    }

    /// <summary>A consumer's usage with the requests counted since the last flush written first, so the answer is current.</summary>
    private IReadOnlyList<UsageRecord> ReadUsage(StateStore store, string consumerId, string? from, string? to)
    {
        if (backend.Usage?.Flush() == false)
        {
            throw new BodyException(503, "usage", "the requests counted since the last write could not be written to the state database; try again (the log says why)");
        }

        return store.GetUsage(consumerId, from, to);
    }

    private async ValueTask<(int, byte[])> CreateConsumerAsync(RequestContext c, StateStore store, Func<RequestContext, ValueTask<byte[]?>> readBody)
    {
        JsonElement o = await ReadObjectAsync(c, readBody, "tenant", "name", "id").ConfigureAwait(false);
        string tenant = RequiredString(o, "tenant");
        if (backend.Snapshot.Source.Tenants?.Any(t => t.Id == tenant) != true)
        {
            throw new BodyException(422, "tenant", $"no tenant '{tenant}' in the running config");
        }

        Consumer consumer = store.CreateConsumer(tenant, RequiredString(o, "name"), OptionalString(o, "id"));
        return (201, Write(w => ConsumerJson(w, consumer)));
    }

    private static async ValueTask<(int, byte[])> UpdateConsumerAsync(RequestContext c, StateStore store, string id, Func<RequestContext, ValueTask<byte[]?>> readBody)
    {
        JsonElement o = await ReadObjectAsync(c, readBody, "name").ConfigureAwait(false);
        Consumer consumer = store.UpdateConsumer(id, RequiredString(o, "name"));
        return (200, Write(w => ConsumerJson(w, consumer)));
    }

    private static async ValueTask<(int, byte[])> CreateKeyAsync(RequestContext c, StateStore store, string consumerId, Func<RequestContext, ValueTask<byte[]?>> readBody)
    {
        JsonElement o = c.Body.Length == 0 ? default : await ReadObjectAsync(c, readBody, "expiresAt").ConfigureAwait(false);
        DateTimeOffset? expires = null;
        if (o.ValueKind == JsonValueKind.Object && OptionalString(o, "expiresAt") is { } text)
        {
            if (!DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out DateTimeOffset at))
            {
                throw new BodyException(400, "expiresAt", "is not an ISO 8601 date and time");
            }

            expires = at;
        }

        CreatedApiKey created = store.CreateApiKey(consumerId, expires);
        return (201, Write(w =>
        {
            w.WriteStartObject();
            WriteKeyFields(w, created.Key);
            w.WriteString("secret", created.Secret); // shown this once; only its hash is stored
            w.WriteEndObject();
        }));
    }

    private static async ValueTask<(int, byte[])> CreateSubscriptionAsync(RequestContext c, StateStore store, Func<RequestContext, ValueTask<byte[]?>> readBody)
    {
        JsonElement o = await ReadObjectAsync(c, readBody, "consumer", "api").ConfigureAwait(false);
        Subscription s = store.CreateSubscription(RequiredString(o, "consumer"), RequiredString(o, "api"));
        return (201, Write(w => SubscriptionJson(w, s)));
    }

    private static string DecidedBy(RequestContext c) => c.Connection.Peer is { } p ? $"uid:{p.Uid}" : "admin";

    // ---- bodies ----

    private sealed class BodyException(int status, string? field, string message) : Exception(message)
    {
        public int Status { get; } = status;

        public string? Field { get; } = field;
    }

    private static async ValueTask<JsonElement> ReadObjectAsync(RequestContext c, Func<RequestContext, ValueTask<byte[]?>> readBody, params string[] allowed)
    {
        byte[] body = await readBody(c).ConfigureAwait(false) ?? throw new BodyException(413, null, $"a body is at most {AdminDispatcher.MaxBodyBytes} bytes");
        JsonElement root;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(body);
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new BodyException(400, "", "the body is not valid JSON: " + e.Message.Split(". ")[0]);
        }

        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new BodyException(400, "", "the body must be a JSON object");
        }

        foreach (JsonProperty property in root.EnumerateObject())
        {
            if (!allowed.Contains(property.Name))
            {
                throw new BodyException(400, property.Name, $"unknown field (expected: {string.Join(", ", allowed)})");
            }
        }

        return root;
    }

    private static string RequiredString(JsonElement o, string name) =>
        OptionalString(o, name) ?? throw new BodyException(400, name, "is required");

    private static string? OptionalString(JsonElement o, string name)
    {
        if (!o.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw new BodyException(400, name, "must be a string");
    }

    // ---- query ----

    private static string? Param(string query, string name)
    {
        foreach (string part in query.TrimStart('?').Split('&'))
        {
            if (part.StartsWith(name + "=", StringComparison.Ordinal))
            {
                return Uri.UnescapeDataString(part[(name.Length + 1)..]);
            }
        }

        return null;
    }

    private static string Required(string query, string name) => Param(query, name) ?? throw new BodyException(400, name, "query parameter is required");

    private static int Limit(string query) =>
        Param(query, "limit") is { } text ? int.TryParse(text, out int n) ? n : throw new BodyException(400, "limit", "must be a number") : 100;

    private static string? After(string query) => Param(query, "after");

    private static SubscriptionStatus? Status(string query) => Param(query, "status") switch
    {
        null => null,
        "pending" => SubscriptionStatus.Pending,
        "approved" => SubscriptionStatus.Approved,
        "rejected" => SubscriptionStatus.Rejected,
        string other => throw new BodyException(400, "status", $"'{other}' is not pending, approved or rejected"),
    };

    // ---- JSON ----

    private static byte[] Write(Action<Utf8JsonWriter> body) => AdminJson.Write(body);

    private static (int, byte[]) Deleted(Action delete)
    {
        delete();
        return (200, Write(w =>
        {
            w.WriteStartObject();
            w.WriteBoolean("deleted", true);
            w.WriteEndObject();
        }));
    }

    private static byte[] One<T>(T? item, string what, string id, Action<Utf8JsonWriter, T> write)
        where T : class =>
        item is null ? throw new StateException(StateErrorKind.NotFound, "id", $"no {what} '{id}'") : Write(w => write(w, item));

    private static byte[] PageJson<T>(Page<T> page, Action<Utf8JsonWriter, T> write) => Write(w =>
    {
        w.WriteStartObject();
        w.WriteStartArray("items");
        foreach (T item in page.Items)
        {
            write(w, item);
        }

        w.WriteEndArray();
        if (page.Next is null)
        {
            w.WriteNull("next");
        }
        else
        {
            w.WriteString("next", page.Next);
        }

        w.WriteEndObject();
    });

    private static byte[] ConsumersJson(Page<Consumer> page) => PageJson(page, ConsumerJson);

    private static byte[] KeysJson(Page<ApiKey> page) => PageJson(page, KeyJson);

    private static byte[] SubscriptionsJson(Page<Subscription> page) => PageJson(page, SubscriptionJson);

    private static void ConsumerJson(Utf8JsonWriter w, Consumer c)
    {
        w.WriteStartObject();
        w.WriteString("id", c.Id);
        w.WriteString("tenant", c.TenantId);
        w.WriteString("name", c.Name);
        w.WriteString("createdAt", c.CreatedAt);
        w.WriteString("updatedAt", c.UpdatedAt);
        w.WriteEndObject();
    }

    private static void KeyJson(Utf8JsonWriter w, ApiKey k)
    {
        w.WriteStartObject();
        WriteKeyFields(w, k);
        w.WriteEndObject();
    }

    private static void WriteKeyFields(Utf8JsonWriter w, ApiKey k)
    {
        w.WriteString("id", k.Id);
        w.WriteString("consumer", k.ConsumerId);
        w.WriteString("tenant", k.TenantId);
        w.WriteString("prefix", k.Prefix);
        w.WriteString("createdAt", k.CreatedAt);
        WriteTime(w, "expiresAt", k.ExpiresAt);
        WriteTime(w, "revokedAt", k.RevokedAt);
    }

    private static void SubscriptionJson(Utf8JsonWriter w, Subscription s)
    {
        w.WriteStartObject();
        w.WriteString("id", s.Id);
        w.WriteString("consumer", s.ConsumerId);
        w.WriteString("api", s.ApiId);
        w.WriteString("status", s.Status.ToString().ToLowerInvariant());
        w.WriteString("createdAt", s.CreatedAt);
        WriteTime(w, "decidedAt", s.DecidedAt);
        if (s.DecidedBy is null)
        {
            w.WriteNull("decidedBy");
        }
        else
        {
            w.WriteString("decidedBy", s.DecidedBy);
        }

        w.WriteEndObject();
    }

    private static byte[] UsageJson(IReadOnlyList<UsageRecord> usage) => Write(w =>
    {
        w.WriteStartObject();
        w.WriteStartArray("items");
        foreach (UsageRecord u in usage)
        {
            w.WriteStartObject();
            w.WriteString("period", u.Period);
            w.WriteNumber("requests", u.Requests);
            w.WriteNumber("inputTokens", u.InputTokens);
            w.WriteNumber("outputTokens", u.OutputTokens);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    });

    private static void WriteTime(Utf8JsonWriter w, string name, DateTimeOffset? value)
    {
        if (value is { } v)
        {
            w.WriteString(name, v);
        }
        else
        {
            w.WriteNull(name);
        }
    }
}

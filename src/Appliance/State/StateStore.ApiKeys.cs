using System.Security.Cryptography;
using Microsoft.Data.Sqlite;

namespace Appliance.State;

/// <summary>API keys: the secret exists once, in the answer to <see cref="CreateApiKey"/>; only its hash is kept.</summary>
public sealed partial class StateStore
{
    private const string KeyColumns = "k.id, k.consumer_id, c.tenant_id, k.prefix, k.created_at, k.expires_at, k.revoked_at";

    /// <summary>Makes a key for a consumer; the returned secret cannot be recovered later, only replaced.</summary>
    public CreatedApiKey CreateApiKey(string consumerId, DateTimeOffset? expiresAt = null)
    {
        StateValidation.Id(consumerId, "consumerId");
        return Write(StateChange.ApiKeys, tx =>
        {
            DateTimeOffset now = Now();
            if (expiresAt is { } expiry && expiry <= now)
            {
                throw StateException.Invalid("expiresAt", "must be in the future");
            }

            string? tenantId = Scalar(tx, "SELECT tenant_id FROM consumers WHERE id = $id", ("$id", consumerId)) as string
                ?? throw StateException.NotFound("consumerId", $"no consumer '{consumerId}'");
            string secret = ApiKeySecret.Generate();
            var key = new ApiKey(StateIds.New("key_", now), consumerId, tenantId, ApiKeySecret.Prefix(secret), now,
                expiresAt is { } e ? DateTimeOffset.FromUnixTimeMilliseconds(Ms(e)) : null, null);
            Execute(tx, """
                INSERT INTO api_keys (id, consumer_id, prefix, hash, created_at, expires_at)
                VALUES ($id, $consumer, $prefix, $hash, $now, $expires)
                """, ("$id", key.Id), ("$consumer", consumerId), ("$prefix", key.Prefix), ("$hash", ApiKeySecret.Hash(secret)),
                ("$now", Ms(now)), ("$expires", key.ExpiresAt is { } x ? Ms(x) : null));
            return new CreatedApiKey(key, secret);
        });
    }

    public ApiKey? GetApiKey(string id)
    {
        StateValidation.Id(id, "id");
        return Read(tx => LoadApiKey(tx, id));
    }

    /// <summary>A consumer's keys (never secrets or hashes) in creation order, <paramref name="limit"/> at a time.</summary>
    public Page<ApiKey> ListApiKeys(string consumerId, int limit = 100, string? after = null)
    {
        StateValidation.Id(consumerId, "consumerId");
        StateValidation.Limit(limit);
        StateValidation.After(after);
        return Read(tx =>
        {
            RequireConsumer(tx, consumerId);
            List<ApiKey> rows = Query(tx, $"""
                SELECT {KeyColumns} FROM api_keys k JOIN consumers c ON c.id = k.consumer_id
                WHERE k.consumer_id = $consumer AND ($after IS NULL OR k.id > $after) ORDER BY k.id LIMIT $n
                """, MapApiKey, ("$consumer", consumerId), ("$after", after), ("$n", limit + 1));
            return ToPage(rows, limit, k => k.Id);
        });
    }

    /// <summary>Revokes a key for good; revoking it again keeps the first revocation time.</summary>
    public ApiKey RevokeApiKey(string id)
    {
        StateValidation.Id(id, "id");
        return Write(StateChange.ApiKeys, tx =>
        {
            Execute(tx, "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $now) WHERE id = $id", ("$id", id), ("$now", Ms(Now())));
            return LoadApiKey(tx, id) ?? throw StateException.NotFound("id", $"no API key '{id}'");
        });
    }

    /// <summary>
    /// The key a presented secret belongs to, or null when it is malformed, unknown, revoked or expired (the
    /// caller answers 401 alike for all four). Candidates are found by prefix; each stored hash is compared in
    /// constant time, so response timing says nothing about how close a guess was.
    /// </summary>
    public ApiKey? VerifyApiKey(string? secret)
    {
        if (!ApiKeySecret.IsWellFormed(secret))
        {
            return null;
        }

        byte[] hash = ApiKeySecret.Hash(secret!);
        string prefix = ApiKeySecret.Prefix(secret!);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // Prepared once and kept: this is the one call meant to be frequent.
            if (_verifyCommand is null)
            {
                _verifyCommand = Command(null, $"""
                    SELECT {KeyColumns}, k.hash FROM api_keys k JOIN consumers c ON c.id = k.consumer_id WHERE k.prefix = $prefix
                    """, ("$prefix", ""));
                _verifyCommand.Prepare();
            }

            _verifyCommand.Parameters["$prefix"].Value = prefix;
            ApiKey? match = null;
            using (SqliteDataReader reader = _verifyCommand.ExecuteReader())
            {
                while (reader.Read())
                {
                    byte[] stored = (byte[])reader.GetValue(7);
                    if (CryptographicOperations.FixedTimeEquals(stored, hash))
                    {
                        match = MapApiKey(reader);
                    }
                }
            }

            DateTimeOffset now = _time.GetUtcNow();
            return match is null || match.RevokedAt is not null || match.ExpiresAt <= now ? null : match;
        }
    }

    private ApiKey? LoadApiKey(SqliteTransaction tx, string id) =>
        Query(tx, $"SELECT {KeyColumns} FROM api_keys k JOIN consumers c ON c.id = k.consumer_id WHERE k.id = $id", MapApiKey, ("$id", id)).FirstOrDefault();

    private static ApiKey MapApiKey(SqliteDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), Time(r, 4), OptionalTime(r, 5), OptionalTime(r, 6));
}

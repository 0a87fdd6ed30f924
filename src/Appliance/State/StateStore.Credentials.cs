namespace Appliance.State;

/// <summary>What a write to the state database changed (<see cref="StateStore.Changed"/>).</summary>
public enum StateChange
{
    Tenants,
    Consumers,
    ApiKeys,
    Subscriptions,
    Usage,
}

/// <summary>One usable API key as the gateway checks it: the secret's SHA-256, whose key it is, and until when.</summary>
public sealed record KeyCredential(byte[] Hash, string KeyId, string ConsumerId, string TenantId, DateTimeOffset? ExpiresAt);

/// <summary>Everything a request's authentication needs, read in one transaction: the keys not revoked, and the approved subscriptions (consumer, API).</summary>
public sealed record CredentialSet(IReadOnlyList<KeyCredential> Keys, IReadOnlyList<(string ConsumerId, string ApiId)> Subscriptions);

public sealed partial class StateStore
{
    /// <summary>
    /// The keys that are not revoked (expired ones included: the gateway compares the expiry per request, so a key
    /// stops working at its second) with their hashes, and the approved subscriptions. Never leaves the process.
    /// </summary>
    public CredentialSet LoadCredentials() => Read(tx => new CredentialSet(
        Query(tx, """
            SELECT k.hash, k.id, k.consumer_id, c.tenant_id, k.expires_at FROM api_keys k JOIN consumers c ON c.id = k.consumer_id
            WHERE k.revoked_at IS NULL
            """, r => new KeyCredential((byte[])r.GetValue(0), r.GetString(1), r.GetString(2), r.GetString(3), OptionalTime(r, 4))),
        Query(tx, "SELECT consumer_id, api_id FROM subscriptions WHERE status = 'approved'", r => (r.GetString(0), r.GetString(1)))));

    /// <summary>SHA-256 of a presented secret when it has the shape of a key (what <see cref="KeyCredential.Hash"/> holds); false otherwise.</summary>
    public static bool TryHashSecret(ReadOnlySpan<byte> secret, Span<byte> hash) => ApiKeySecret.TryHash(secret, hash);
}

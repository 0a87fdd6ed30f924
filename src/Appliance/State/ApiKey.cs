namespace Appliance.State;

/// <summary>
/// What is stored about an API key: never the secret, and the hash never leaves the store. <see cref="Prefix"/>
/// (the secret's first characters) lets an operator tell keys apart and find the one a client holds.
/// </summary>
public sealed record ApiKey(
    string Id,
    string ConsumerId,
    string TenantId,
    string Prefix,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset? RevokedAt);

/// <summary>A key just created: <see cref="Secret"/> exists only here, to be shown once; the store keeps its hash.</summary>
public sealed record CreatedApiKey(ApiKey Key, string Secret);

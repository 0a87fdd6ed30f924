using Appliance.Protocol.Headers;
using Appliance.Server;
using Appliance.State;

namespace Appliance.Policies;

/// <summary>
/// routes[].policies.apiKey as compiled. <see cref="HeaderName"/> (lower-case) carries the key; with
/// <see cref="Bearer"/> so does <c>Authorization: Bearer</c>. <see cref="HideCredentials"/> removes the key from the
/// request before the handler (the upstream never sees it). <see cref="RequireSubscription"/>: the key's consumer
/// needs an approved subscription to the route.
/// </summary>
public sealed record ApiKeySettings(string HeaderName, bool Bearer, bool HideCredentials, bool RequireSubscription)
{
    public const string DefaultHeader = "x-api-key";
}

/// <summary>
/// routes[].policies.apiKey: the request must carry an API key the state database holds (made by
/// <c>POST /v1/consumers/{id}/keys</c>, kept only as a hash), not revoked, not expired, and belonging to a consumer of
/// the route's tenant (any tenant's, for a route without one). Checked in memory (<see cref="ConsumerDirectory"/>):
/// one SHA-256 of the presented key and a lookup, no database access. No key: 401 with <c>WWW-Authenticate:
/// Bearer</c>; a key that is not good: 401 with <c>Bearer error="invalid_token"</c> (RFC 6750 §3.1), the same for
/// every reason, so an answer tells nothing about which keys exist; a good key without a required subscription:
/// 403. The accepted consumer is the request's <see cref="RequestContext.ConsumerId"/>.
/// </summary>
public sealed class ApiKeyPolicy(ApiKeySettings settings, string routeId, string? tenant) : RequestPolicy
{
    private static readonly byte[] s_missing = ProblemDetails.Json(401, "An API key is required.");
    private static readonly byte[] s_invalid = ProblemDetails.Json(401, "The API key is not valid for this API.");
    private static readonly byte[] s_notSubscribed = ProblemDetails.Json(403, "The API key's consumer has no approved subscription to this API.");
    private static readonly byte[] s_challenge = "Bearer"u8.ToArray();
    private static readonly byte[] s_invalidChallenge = "Bearer error=\"invalid_token\""u8.ToArray();

    private readonly byte[] _header = System.Text.Encoding.ASCII.GetBytes(settings.HeaderName);

    public override string Name => "apiKey";

    public ApiKeySettings Settings => settings;

    /// <summary>Same settings for the same route and tenant (a config apply keeps this policy and its refusal count).</summary>
    public bool SameAs(ApiKeyPolicy other) => other.Settings == settings && other.RouteId == routeId && other.Tenant == tenant;

    public string RouteId => routeId;

    public string? Tenant => tenant;

    public override ValueTask<PolicyVerdict> CheckAsync(RequestContext context, PolicyEnvironment environment)
    {
        bool fromHeader = context.RequestHeaders.TryGetValue(_header, out ReadOnlySpan<byte> secret);
        if (!fromHeader && !(settings.Bearer && TryGetBearer(context.RequestHeaders, out secret)))
        {
            return new(Refuse(401, s_missing, challenge: s_challenge));
        }

        Span<byte> hash = stackalloc byte[32];
        if (!StateStore.TryHashSecret(secret, hash) || environment.Consumers is not { } consumers || !consumers.TryFind(hash, out KeyCredential? key)
            || key!.ExpiresAt <= environment.Time.GetUtcNow() || (tenant is not null && key.TenantId != tenant))
        {
            return new(Refuse(401, s_invalid, challenge: s_invalidChallenge));
        }

        if (settings.RequireSubscription && !consumers.IsSubscribed(key.ConsumerId, routeId))
        {
            return new(Refuse(403, s_notSubscribed));
        }

        context.ConsumerId = key.ConsumerId;
        if (settings.HideCredentials)
        {
            _ = fromHeader ? context.RequestHeaders.Remove(_header) : context.RequestHeaders.Remove(KnownHeader.Authorization);
        }

        return new(PolicyVerdict.Pass);
    }

    /// <summary>The token of <c>Authorization: Bearer TOKEN</c> (RFC 6750 §2.1: the scheme case-insensitive, then spaces).</summary>
    private static bool TryGetBearer(HeaderCollection headers, out ReadOnlySpan<byte> token)
    {
        token = default;
        if (!headers.TryGetValue(KnownHeader.Authorization, out ReadOnlySpan<byte> value) || value.Length < 8
            || !System.Text.Ascii.EqualsIgnoreCase(value[..6], "Bearer"u8) || value[6] != (byte)' ')
        {
            return false;
        }

        token = value[7..].TrimStart((byte)' ');
        return !token.IsEmpty;
    }
}

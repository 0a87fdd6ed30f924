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
public sealed class ApiKeyPolicy : RequestPolicy
{
    private static readonly byte[] s_missing = ProblemDetails.Json(401, "An API key is required.");
    private static readonly byte[] s_invalid = ProblemDetails.Json(401, "The API key is not valid for this API.");
    private static readonly byte[] s_malformed = ProblemDetails.Json(400, "The Authorization header is not \"Bearer\" followed by a key.");
    private static readonly byte[] s_notSubscribed = ProblemDetails.Json(403, "The API key's consumer has no approved subscription to this API.");

    private readonly ApiKeySettings _settings;
    private readonly byte[] _header;
    private readonly byte[] _challenge;        // no key: the schemes this route takes
    private readonly byte[] _invalidChallenge; // a key that is not good
    private readonly byte[] _malformedChallenge;

    public ApiKeyPolicy(ApiKeySettings settings, string routeId, string? tenant)
    {
        _settings = settings;
        RouteId = routeId;
        Tenant = tenant;
        _header = System.Text.Encoding.ASCII.GetBytes(settings.HeaderName);
        // RFC 9110 §11.6.1: a 401 names a scheme the resource takes. With bearer on, RFC 6750's Bearer with its
        // error codes; otherwise an "ApiKey" challenge naming the header (the OpenAPI apiKey scheme's terms).
        string? realm = tenant is null ? null : $"realm=\"{tenant}\"";
        string apiKey = $"header=\"{settings.HeaderName}\"";
        _challenge = settings.Bearer ? Challenge("Bearer", realm) : Challenge("ApiKey", apiKey, realm);
        _invalidChallenge = settings.Bearer ? Challenge("Bearer", realm, "error=\"invalid_token\"") : _challenge;
        _malformedChallenge = Challenge("Bearer", realm, "error=\"invalid_request\"");
    }

    public override string Name => "apiKey";

    public ApiKeySettings Settings => _settings;

    public string RouteId { get; }

    public string? Tenant { get; }

    /// <summary>Same settings for the same route and tenant (a config apply keeps this policy and its refusal count).</summary>
    public bool SameAs(ApiKeyPolicy other) => other.Settings == _settings && other.RouteId == RouteId && other.Tenant == Tenant;

    public override ValueTask<PolicyVerdict> CheckAsync(RequestContext context, PolicyEnvironment environment)
    {
        HeaderCollection headers = context.RequestHeaders;
        bool fromHeader = headers.TryGetValue(_header, out ReadOnlySpan<byte> secret);
        if (!fromHeader)
        {
            switch (_settings.Bearer ? BearerTokens.Read(headers, out secret) : BearerToken.Absent)
            {
                case BearerToken.Absent:
                    return new(Refuse(401, s_missing, challenge: _challenge));
                case BearerToken.Malformed:
                    return new(Refuse(400, s_malformed, challenge: _malformedChallenge));
            }
        }

        Span<byte> hash = stackalloc byte[32];
        ConsumerDirectory.Credentials? credentials = environment.Consumers?.Current;
        if (!StateStore.TryHashSecret(secret, hash) || credentials is null || !credentials.TryFind(hash, out KeyCredential? key)
            || key!.ExpiresAt <= environment.Time.GetUtcNow() || (Tenant is not null && key.TenantId != Tenant))
        {
            return new(Refuse(401, s_invalid, challenge: _invalidChallenge));
        }

        if (_settings.RequireSubscription && !credentials.IsSubscribed(key.ConsumerId, RouteId))
        {
            return new(Refuse(403, s_notSubscribed));
        }

        context.ConsumerId = key.ConsumerId;
        if (_settings.HideCredentials)
        {
            headers.Remove(_header);
            // A copy of the key as a bearer token goes too, whichever header the key was taken from.
            if (_settings.Bearer && BearerTokens.Read(headers, out ReadOnlySpan<byte> token) == BearerToken.Present && token.StartsWith("apk_"u8))
            {
                headers.Remove(KnownHeader.Authorization);
            }
        }

        return new(PolicyVerdict.Pass);
    }
}

using System.Net;
using System.Text;
using Appliance.Policies;
using Appliance.Routing;

namespace Appliance.Config;

/// <summary>routes[].policies: the access list and the rate limit of a route.</summary>
public sealed partial class ConfigCompiler
{
    /// <summary>Networks per list at most: each request scans them (a firewall or ipset is the tool for long lists).</summary>
    internal const int MaxAccessNetworks = 1024;

    private Dictionary<string, RouteModel>? _runningRoutes; // the running config's routes by id, for carrying policies over

    /// <summary>
    /// The route's policy chain, or null when it has none. A policy whose settings did not change since the running
    /// config (same route id) is carried over as it stands: a rate limit keeps its counts across an apply.
    /// </summary>
    private PolicyChain? CompilePolicies(RoutePoliciesConfig? config, string? routeId, string? tenant, string p)
    {
        if (config is null)
        {
            return null;
        }

        _runningRoutes ??= _previous?.Routes.Routes.ToDictionary(r => r.Id, StringComparer.Ordinal) ?? [];
        PolicyChain? running = routeId is not null && _runningRoutes.TryGetValue(routeId, out RouteModel? route) ? route.Policies : null;
        var policies = new List<RequestPolicy>();
        if (config.Access is { } access && CompileAccess(access, $"{p}.access") is { } accessPolicy)
        {
            policies.Add(running?.Find<AccessPolicy>() is { } same && same.SameSettings(accessPolicy) ? same : accessPolicy);
        }

        if (config.ApiKey is { } apiKey && CompileApiKey(apiKey, $"{p}.apiKey") is { } keySettings && routeId is not null)
        {
            var policy = new ApiKeyPolicy(keySettings, routeId, tenant);
            policies.Add(running?.Find<ApiKeyPolicy>() is { } same && same.SameAs(policy) ? same : policy);
        }

        if (config.Jwt is { Header: null } && config.ApiKey is { } keyed && (keyed.Bearer ?? true))
        {
            Error($"{p}.apiKey.bearer", "both apiKey and jwt would read Authorization: Bearer; set apiKey's \"bearer\": false (keys in X-Api-Key) or give jwt a \"header\"");
        }

        if (config.Jwt is { } jwt && CompileJwt(jwt, $"{p}.jwt") is { } jwtSettings)
        {
            policies.Add(new JwtPolicy(jwtSettings, tenant)); // its key file is read again on every apply: never carried over
        }

        if (config.RateLimit is { } rateLimit && CompileRateLimit(rateLimit, $"{p}.rateLimit", config.ApiKey, config.Jwt) is { } settings)
        {
            policies.Add(running?.Find<RateLimitPolicy>() is { } same && same.Settings == settings ? same : new RateLimitPolicy(settings));
        }

        if (config.Quota is { } quota && CompileQuota(quota, $"{p}.quota", config.ApiKey) is { } quotaSettings)
        {
            policies.Add(running?.Find<QuotaPolicy>() is { } same && same.Settings == quotaSettings ? same : new QuotaPolicy(quotaSettings));
        }

        return policies.Count == 0 ? null : new PolicyChain([.. policies]);
    }

    private AccessPolicy? CompileAccess(AccessPolicyConfig access, string p)
    {
        int before = _errors.Count;
        IPNetwork[] allow = CompileNetworks(access.Allow, $"{p}.allow");
        IPNetwork[] deny = CompileNetworks(access.Deny, $"{p}.deny");
        if (allow.Length == 0 && deny.Length == 0 && _errors.Count == before)
        {
            Error(p, "give the networks to 'allow' or to 'deny'");
        }

        return _errors.Count > before ? null : new AccessPolicy(allow, deny);
    }

    private IPNetwork[] CompileNetworks(List<string>? entries, string p)
    {
        if (entries is null)
        {
            return [];
        }

        if (entries.Count > MaxAccessNetworks)
        {
            Error(p, $"at most {MaxAccessNetworks} networks");
            return [];
        }

        var networks = new List<IPNetwork>();
        for (int i = 0; i < entries.Count; i++)
        {
            string text = entries[i]?.Trim() ?? "";
            if (text is "all" or "any")
            {
                Error($"{p}[{i}]", "list networks (\"0.0.0.0/0\" and \"::/0\" are every address): an allow list already refuses every address it does not name");
            }
            else if (TryParseNetwork(text, out IPNetwork network))
            {
                networks.Add(network);
            }
            else
            {
                Error($"{p}[{i}]", $"'{entries[i]}' is not an IP address or a network like \"10.0.0.0/8\" (no host bits after the prefix)");
            }
        }

        return [.. networks];
    }

    /// <summary>An address (a /32 or /128) or a CIDR network whose address has no bits past the prefix.</summary>
    internal static bool TryParseNetwork(string text, out IPNetwork network)
    {
        network = default;
        if (text.Length == 0 || text.Length > 64)
        {
            return false;
        }

        int slash = text.IndexOf('/');
        if (slash >= 0)
        {
            // .NET takes "10.0.0.1/8" as 10.0.0.0/8; an operator who wrote it may have meant a single address.
            return IPNetwork.TryParse(text, out network) && IPAddress.TryParse(text.AsSpan(0, slash), out IPAddress? given)
                && given.Equals(network.BaseAddress);
        }

        if (!IPAddress.TryParse(text, out IPAddress? address) || text.Contains('%')) // a scoped address names no network
        {
            return false;
        }

        network = new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
        return true;
    }

    /// <summary>A JWK Set file is at most this large (a few dozen keys fit in a few KiB).</summary>
    internal const int MaxJwksBytes = 1 << 20;

    private JwtSettings? CompileJwt(JwtPolicyConfig c, string p)
    {
        int before = _errors.Count;
        JwtKeySet? keys = null;
        string path = "";
        if (string.IsNullOrEmpty(c.JwksFile))
        {
            Error($"{p}.jwksFile", "is required: a JWK Set file of the issuer's public keys");
        }
        else
        {
            path = Resolve(c.JwksFile);
            try
            {
                var info = new FileInfo(path);
                if (info.Exists && info.Length > MaxJwksBytes)
                {
                    Error($"{p}.jwksFile", $"{path} is larger than {MaxJwksBytes} bytes");
                }
                else
                {
                    keys = JwtKeySet.TryParse(File.ReadAllBytes(path), out string? error);
                    if (keys is null)
                    {
                        Error($"{p}.jwksFile", $"{path} {error}");
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Error($"{p}.jwksFile", $"cannot read {path}: {e.Message}");
            }
        }

        if (c.Issuer is { Length: 0 })
        {
            Error($"{p}.issuer", "must not be empty (leave it out to accept any issuer)");
        }

        if (c.Audiences is not { Count: > 0 })
        {
            // RFC 7519 §4.1.3: a token whose aud does not name this API must be refused, so the API needs a name.
            Error($"{p}.audiences", "is required: the audience values (aud) this API answers to");
        }

        for (int i = 0; i < (c.Audiences?.Count ?? 0); i++)
        {
            if (string.IsNullOrEmpty(c.Audiences![i]))
            {
                Error($"{p}.audiences[{i}]", "must not be empty");
            }
        }

        TimeSpan skew = c.ClockSkew is "0s" or "0" ? TimeSpan.Zero : ParseDuration(c.ClockSkew, $"{p}.clockSkew", TimeSpan.FromSeconds(60));
        if (skew > TimeSpan.FromMinutes(10))
        {
            Error($"{p}.clockSkew", "must be at most \"10m\"");
        }

        if (c.Header is { } header && !IsHeaderName(header))
        {
            Error($"{p}.header", $"'{header}' is not a header name");
        }

        return _errors.Count > before || keys is null ? null
            : new JwtSettings(keys, path, c.Issuer, [.. c.Audiences ?? []], skew, c.Header?.ToLowerInvariant());
    }

    private QuotaSettings? CompileQuota(QuotaConfig c, string p, ApiKeyPolicyConfig? apiKey)
    {
        int before = _errors.Count;
        if (c.Requests is null && c.Tokens is null)
        {
            Error($"{p}.requests", "is required (or 'tokens', a token budget): a whole number of requests from 1 to 1000000000000");
        }
        else if (c.Requests is < 1 or > 1_000_000_000_000)
        {
            Error($"{p}.requests", "must be a whole number of requests from 1 to 1000000000000");
        }

        if (c.Tokens is < 1 or > 1_000_000_000_000_000)
        {
            Error($"{p}.tokens", "must be a whole number of tokens from 1 to 10^15");
        }

        Telemetry.QuotaPeriod period = Telemetry.QuotaPeriod.Month;
        switch (c.Per)
        {
            case null or "month":
                break;
            case "day":
                period = Telemetry.QuotaPeriod.Day;
                break;
            case "hour":
                period = Telemetry.QuotaPeriod.Hour;
                break;
            default:
                Error($"{p}.per", "must be \"hour\", \"day\" or \"month\" (UTC calendar periods)");
                break;
        }

        CheckRefusalStatus(c.Status, $"{p}.status");
        if (apiKey is null)
        {
            Error(p, "a quota counts a consumer's requests: the route needs an apiKey policy");
        }

        return _errors.Count > before ? null : new QuotaSettings(c.Requests ?? 0, period, c.Status ?? 429, c.Tokens ?? 0);
    }

    private void CheckRefusalStatus(int? status, string p)
    {
        if (status is { } s && (s is < 400 or > 599 || s is 401 or 407))
        {
            Error(p, "must be a 4xx or 5xx status other than 401 and 407 (they need a challenge); 429 by default");
        }
    }

    private ApiKeySettings? CompileApiKey(ApiKeyPolicyConfig c, string p)
    {
        string header = c.Header ?? ApiKeySettings.DefaultHeader;
        if (!IsHeaderName(header))
        {
            Error($"{p}.header", $"'{header}' is not a header name");
            return null;
        }

        if (header.Equals("authorization", StringComparison.OrdinalIgnoreCase))
        {
            Error($"{p}.header", "Authorization is read with \"bearer\": true; name another header here");
            return null;
        }

        return new ApiKeySettings(header.ToLowerInvariant(), c.Bearer ?? true, c.HideCredentials ?? true, c.RequireSubscription ?? false);
    }

    private RateLimitSettings? CompileRateLimit(RateLimitConfig c, string p, ApiKeyPolicyConfig? apiKey, JwtPolicyConfig? jwt)
    {
        int before = _errors.Count;
        if (c.Requests is not { } requests || requests is < 1 or > 1_000_000_000)
        {
            Error($"{p}.requests", "is required: a whole number of requests from 1 to 1000000000");
        }

        TimeSpan per = ParseDuration(c.Per, $"{p}.per", TimeSpan.FromSeconds(1));
        if (per > TimeSpan.FromDays(1))
        {
            Error($"{p}.per", "must be at most \"24h\"");
        }

        if (c.Burst is < 1 or > 1_000_000_000)
        {
            Error($"{p}.burst", "must be a whole number of requests from 1 to 1000000000");
        }

        RateLimitKey key = RateLimitKey.Client;
        string? header = null;
        switch (c.Key)
        {
            case null or "client":
                break;
            case "route":
                key = RateLimitKey.Route;
                break;
            case "subject":
                key = RateLimitKey.Subject;
                if (jwt is null)
                {
                    Error($"{p}.key", "\"subject\" needs the route's jwt policy, whose token names the subject");
                }

                break;
            case "consumer":
                key = RateLimitKey.Consumer;
                if (apiKey is null)
                {
                    Error($"{p}.key", "\"consumer\" needs the route's apiKey policy, which names the consumer");
                }

                break;
            case var k when k.StartsWith("header:", StringComparison.Ordinal):
                header = k["header:".Length..];
                if (!IsHeaderName(header))
                {
                    Error($"{p}.key", $"'{header}' is not a header name");
                }

                key = RateLimitKey.Header;
                header = header.ToLowerInvariant();
                break;
            default:
                Error($"{p}.key", "must be \"client\", \"consumer\", \"subject\", \"route\" or \"header:NAME\"");
                break;
        }

        CheckRefusalStatus(c.Status, $"{p}.status");

        if (c.MaxKeys is < 1 or > 1_000_000)
        {
            Error($"{p}.maxKeys", "must be from 1 to 1000000");
        }

        if (header is not null && apiKey is not null && (apiKey.HideCredentials ?? true)
            && (header == (apiKey.Header ?? ApiKeySettings.DefaultHeader).ToLowerInvariant() || (header == "authorization" && (apiKey.Bearer ?? true))))
        {
            Error($"{p}.key", "the apiKey policy removes this header before the rate limit runs; count by \"consumer\" instead");
        }

        return _errors.Count > before ? null
            : new RateLimitSettings(c.Requests!.Value, per, c.Burst ?? c.Requests!.Value, key, header, c.Status ?? 429, c.MaxKeys ?? RateLimitSettings.DefaultMaxKeys);
    }
}

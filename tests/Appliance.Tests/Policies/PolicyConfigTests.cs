using System.Net;
using System.Text;
using Appliance.Config;
using Appliance.Policies;
using Appliance.Routing;

namespace Appliance.Tests.Policies;

/// <summary>routes[].policies in the config: what compiles, every malformed field named, state carried over an apply.</summary>
public sealed class PolicyConfigTests
{
    private static string Config(string policies) => $$"""
        { "listeners": [ { "name": "p", "address": "127.0.0.1:0", "tls": false } ],
          "routes": [ { "id": "r", "direct": {}, "policies": {{policies}} } ] }
        """;

    private static IReadOnlyList<ConfigError> Errors(string policies)
    {
        try
        {
            return ConfigCompiler.Validate(ConfigLoader.Parse(Encoding.UTF8.GetBytes(Config(policies))), Path.GetTempPath());
        }
        catch (ConfigException e)
        {
            return e.Errors;
        }
    }

    private static ConfigSnapshot Compile(string policies, ConfigSnapshot? previous = null) =>
        ConfigCompiler.Compile(ConfigLoader.Parse(Encoding.UTF8.GetBytes(Config(policies))), Path.GetTempPath(), previous: previous);

    private static PolicyChain Chain(ConfigSnapshot snapshot) => snapshot.Routes.Routes.Single(r => r.Id == "r").Policies!;

    [Theory]
    [InlineData("""{ "access": {} }""", "routes[0].policies.access")]
    [InlineData("""{ "access": { "allow": [] } }""", "routes[0].policies.access")]
    [InlineData("""{ "access": { "allow": ["10.0.0.1/8"] } }""", "routes[0].policies.access.allow[0]")]
    [InlineData("""{ "access": { "allow": ["10.0.0.0/33"] } }""", "routes[0].policies.access.allow[0]")]
    [InlineData("""{ "access": { "deny": ["127.0.0.1", "example.com"] } }""", "routes[0].policies.access.deny[1]")]
    [InlineData("""{ "access": { "deny": ["all"] } }""", "routes[0].policies.access.deny[0]")]
    [InlineData("""{ "access": { "deny": [""] } }""", "routes[0].policies.access.deny[0]")]
    [InlineData("""{ "access": { "deny": ["fe80::1%eth0"] } }""", "routes[0].policies.access.deny[0]")]
    [InlineData("""{ "access": { "deny": "10.0.0.0/8" } }""", "routes[0].policies.access.deny")]
    [InlineData("""{ "access": { "permit": ["10.0.0.0/8"] } }""", "routes[0].policies.access.permit")]
    [InlineData("""{ "rateLimit": {} }""", "routes[0].policies.rateLimit.requests")]
    [InlineData("""{ "rateLimit": { "requests": 0 } }""", "routes[0].policies.rateLimit.requests")]
    [InlineData("""{ "rateLimit": { "requests": -5 } }""", "routes[0].policies.rateLimit.requests")]
    [InlineData("""{ "rateLimit": { "requests": 1.5 } }""", "routes[0].policies.rateLimit.requests")]
    [InlineData("""{ "rateLimit": { "requests": 99999999999999999999 } }""", "routes[0].policies.rateLimit.requests")]
    [InlineData("""{ "rateLimit": { "requests": "10" } }""", "routes[0].policies.rateLimit.requests")]
    [InlineData("""{ "rateLimit": { "requests": 10, "per": "fast" } }""", "routes[0].policies.rateLimit.per")]
    [InlineData("""{ "rateLimit": { "requests": 10, "per": "0s" } }""", "routes[0].policies.rateLimit.per")]
    [InlineData("""{ "rateLimit": { "requests": 10, "per": "2d" } }""", "routes[0].policies.rateLimit.per")]
    [InlineData("""{ "rateLimit": { "requests": 10, "burst": 0 } }""", "routes[0].policies.rateLimit.burst")]
    [InlineData("""{ "rateLimit": { "requests": 10, "key": "ip" } }""", "routes[0].policies.rateLimit.key")]
    [InlineData("""{ "rateLimit": { "requests": 10, "key": "header:" } }""", "routes[0].policies.rateLimit.key")]
    [InlineData("""{ "rateLimit": { "requests": 10, "key": "header:X Api" } }""", "routes[0].policies.rateLimit.key")]
    [InlineData("""{ "rateLimit": { "requests": 10, "status": 200 } }""", "routes[0].policies.rateLimit.status")]
    [InlineData("""{ "rateLimit": { "requests": 10, "status": 401 } }""", "routes[0].policies.rateLimit.status")]
    [InlineData("""{ "rateLimit": { "requests": 10, "status": 600 } }""", "routes[0].policies.rateLimit.status")]
    [InlineData("""{ "rateLimit": { "requests": 10, "maxKeys": 0 } }""", "routes[0].policies.rateLimit.maxKeys")]
    [InlineData("""{ "rateLimit": { "requests": 10, "maxKeys": 20000000 } }""", "routes[0].policies.rateLimit.maxKeys")]
    [InlineData("""{ "ratelimit": { "requests": 10 } }""", "routes[0].policies.ratelimit")]
    [InlineData("""[]""", "routes[0].policies")]
    [InlineData("""{ "apiKey": { "header": "X Key" } }""", "routes[0].policies.apiKey.header")]
    [InlineData("""{ "apiKey": { "header": "" } }""", "routes[0].policies.apiKey.header")]
    [InlineData("""{ "apiKey": { "header": "Authorization" } }""", "routes[0].policies.apiKey.header")]
    [InlineData("""{ "apiKey": { "bearer": "yes" } }""", "routes[0].policies.apiKey.bearer")]
    [InlineData("""{ "apiKey": { "requireSubscription": 1 } }""", "routes[0].policies.apiKey.requireSubscription")]
    [InlineData("""{ "apiKey": { "query": "key" } }""", "routes[0].policies.apiKey.query")]
    [InlineData("""{ "rateLimit": { "requests": 10, "key": "consumer" } }""", "routes[0].policies.rateLimit.key")]
    [InlineData("""{ "rateLimit": { "requests": 10, "key": "subject" } }""", "routes[0].policies.rateLimit.key")]
    [InlineData("""{ "apiKey": {}, "rateLimit": { "requests": 10, "key": "header:X-API-KEY" } }""", "routes[0].policies.rateLimit.key")]
    [InlineData("""{ "apiKey": {}, "rateLimit": { "requests": 10, "key": "header:Authorization" } }""", "routes[0].policies.rateLimit.key")]
    [InlineData("""{ "apiKey": { "header": "X-Key" }, "rateLimit": { "requests": 10, "key": "header:x-key" } }""", "routes[0].policies.rateLimit.key")]
    [InlineData("""{ "rateLimit": { "requests": 10, "maxKeys": 1000001 } }""", "routes[0].policies.rateLimit.maxKeys")]
    [InlineData("""{ "quota": { "requests": 10 } }""", "routes[0].policies.quota")]
    [InlineData("""{ "apiKey": {}, "quota": {} }""", "routes[0].policies.quota.requests")]
    [InlineData("""{ "apiKey": {}, "quota": { "requests": 0 } }""", "routes[0].policies.quota.requests")]
    [InlineData("""{ "apiKey": {}, "quota": { "tokens": 0 } }""", "routes[0].policies.quota.tokens")]
    [InlineData("""{ "apiKey": {}, "quota": { "requests": 5, "tokens": -1 } }""", "routes[0].policies.quota.tokens")]
    [InlineData("""{ "apiKey": {}, "quota": { "requests": 10, "per": "week" } }""", "routes[0].policies.quota.per")]
    [InlineData("""{ "apiKey": {}, "quota": { "requests": 10, "status": 302 } }""", "routes[0].policies.quota.status")]
    public void Malformed_policies_name_the_field(string policies, string path)
    {
        IReadOnlyList<ConfigError> errors = Errors(policies);
        Assert.True(errors.Any(e => e.Path == path), $"expected an error at {path}, got: {string.Join("; ", errors)}");
    }

    [Fact]
    public void A_header_key_the_api_key_policy_leaves_in_place_is_fine()
    {
        Assert.Empty(Errors("""{ "apiKey": { "hideCredentials": false }, "rateLimit": { "requests": 10, "key": "header:X-Api-Key" } }"""));
        Assert.Empty(Errors("""{ "apiKey": { "bearer": false }, "rateLimit": { "requests": 10, "key": "header:Authorization" } }"""));
    }

    [Fact]
    public void Trusted_proxies_still_take_a_network_written_with_host_bits()
    {
        Assert.Empty(ConfigCompiler.Validate(ConfigLoader.Parse(Encoding.UTF8.GetBytes("""
            { "server": { "trustedProxies": ["10.0.0.1/8", "192.0.2.7"] }, "listeners": [ { "name": "p", "address": "127.0.0.1:0", "tls": false } ] }
            """)), Path.GetTempPath()));
    }

    [Theory]
    [InlineData("consumerHeader", "X Consumer")]
    [InlineData("consumerHeader", "Content-Length")]
    [InlineData("clientCertificateHeader", "")]
    public void Identity_headers_must_be_header_names(string field, string value)
    {
        IReadOnlyList<ConfigError> errors = ConfigCompiler.Validate(ConfigLoader.Parse(Encoding.UTF8.GetBytes($$"""
            { "listeners": [ { "name": "p", "address": "127.0.0.1:0", "tls": false } ],
              "clusters": [ { "id": "c", "destinations": [ { "address": "127.0.0.1:9" } ] } ],
              "routes": [ { "id": "r", "cluster": "c", "transforms": { "{{field}}": "{{value}}" } } ] }
            """)), Path.GetTempPath());
        Assert.Contains(errors, e => e.Path == $"routes[0].transforms.{field}");
    }

    [Fact]
    public void Oversized_access_lists_are_refused()
    {
        string many = string.Join(", ", Enumerable.Range(0, ConfigCompiler.MaxAccessNetworks + 1).Select(i => $"\"10.{i / 256}.{i % 256}.0/24\""));
        Assert.Contains(Errors($$"""{ "access": { "deny": [{{many}}] } }"""), e => e.Path == "routes[0].policies.access.deny");
    }

    [Fact]
    public void Policies_compile_in_chain_order_with_their_defaults()
    {
        PolicyChain chain = Chain(Compile("""
            { "rateLimit": { "requests": 100, "per": "1m" }, "access": { "allow": ["10.0.0.0/8", "2001:db8::1"], "deny": ["10.9.0.0/16"] } }
            """));
        Assert.Collection(chain.Policies, p => Assert.IsType<AccessPolicy>(p), p => Assert.IsType<RateLimitPolicy>(p));
        PolicyChain keyed = Chain(Compile("""{ "rateLimit": { "requests": 1, "key": "consumer" }, "apiKey": { "header": "X-Key", "requireSubscription": true } }"""));
        Assert.Collection(keyed.Policies, p => Assert.IsType<ApiKeyPolicy>(p), p => Assert.IsType<RateLimitPolicy>(p));
        PolicyChain all = Chain(Compile("""
            { "quota": { "requests": 1000, "per": "day" }, "rateLimit": { "requests": 1 }, "apiKey": {}, "access": { "deny": ["192.0.2.0/24"] } }
            """));
        Assert.Equal(["access", "apiKey", "rateLimit", "quota"], all.Policies.Select(p => p.Name));
        Assert.Equal(new QuotaSettings(1000, Appliance.Telemetry.QuotaPeriod.Day, 429), ((QuotaPolicy)all.Policies[3]).Settings);
        Assert.Equal(new ApiKeySettings("x-key", true, true, true), ((ApiKeyPolicy)keyed.Policies[0]).Settings);
        Assert.Equal("r", ((ApiKeyPolicy)keyed.Policies[0]).RouteId);
        var access = (AccessPolicy)chain.Policies[0];
        Assert.Equal([IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("2001:db8::1/128")], access.Allow);
        RateLimitSettings settings = ((RateLimitPolicy)chain.Policies[1]).Settings;
        Assert.Equal(new RateLimitSettings(100, TimeSpan.FromMinutes(1), 100, RateLimitKey.Client, null, 429, RateLimitSettings.DefaultMaxKeys), settings);
        RateLimitSettings header = ((RateLimitPolicy)Chain(Compile("""{ "rateLimit": { "requests": 5, "burst": 1, "key": "header:X-Api-Key", "status": 503, "maxKeys": 10 } }""")).Policies[0]).Settings;
        Assert.Equal(new RateLimitSettings(5, TimeSpan.FromSeconds(1), 1, RateLimitKey.Header, "x-api-key", 503, 10), header);
    }

    [Fact]
    public void An_apply_keeps_unchanged_policies_and_their_counts_and_replaces_changed_ones()
    {
        const string policies = """{ "access": { "deny": ["192.0.2.0/24"] }, "rateLimit": { "requests": 1, "per": "1h" } }""";
        ConfigSnapshot first = Compile(policies);
        ConfigSnapshot same = Compile(policies, first);
        Assert.Same(Chain(first).Policies[0], Chain(same).Policies[0]);
        Assert.Same(Chain(first).Policies[1], Chain(same).Policies[1]);
        ConfigSnapshot changed = Compile(policies.Replace("\"1h\"", "\"2h\"").Replace("192.0.2.0/24", "198.51.100.0/24"), same);
        Assert.NotSame(Chain(same).Policies[0], Chain(changed).Policies[0]);
        Assert.NotSame(Chain(same).Policies[1], Chain(changed).Policies[1]);
    }

    [Fact]
    public void Routes_without_policies_have_no_chain()
    {
        ConfigSnapshot snapshot = ConfigCompiler.Compile(ConfigLoader.Parse(Encoding.UTF8.GetBytes("""
            { "listeners": [ { "name": "p", "address": "127.0.0.1:0", "tls": false } ], "routes": [ { "id": "r", "direct": {} } ] }
            """)), Path.GetTempPath());
        Assert.Null(snapshot.Routes.Routes.Single().Policies);
        RouteModel route = Compile("{}").Routes.Routes.Single();
        Assert.Null(route.Policies); // an empty object asks for nothing
    }

    [Theory]
    [InlineData("10.1.2.3", true)]
    [InlineData("10.9.0.1", false)]   // denied inside the allowed network: deny wins
    [InlineData("192.168.1.1", false)] // outside the allow list
    [InlineData("2001:db8::1", true)]
    [InlineData("2001:db8::2", false)]
    public void Access_deny_wins_and_an_allow_list_refuses_the_rest(string address, bool permitted)
    {
        var access = new AccessPolicy([IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("2001:db8::1/128")], [IPNetwork.Parse("10.9.0.0/16")]);
        Assert.Equal(permitted, access.Permits(IPAddress.Parse(address)));
    }

    [Fact]
    public void Unix_socket_clients_pass_deny_lists_and_fail_allow_lists()
    {
        Assert.True(new AccessPolicy([], [IPNetwork.Parse("0.0.0.0/0")]).Permits(null));
        Assert.False(new AccessPolicy([IPNetwork.Parse("0.0.0.0/0")], []).Permits(null));
    }
}

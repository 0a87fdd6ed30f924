using System.Text;
using Appliance.Ai;
using Appliance.Config;

namespace Appliance.Tests.Ai;

/// <summary>The ai section and routes' ai handlers in the config: what compiles, and every malformed field named.</summary>
public sealed class AiConfigTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "appliance-ai-config-" + Guid.NewGuid().ToString("N"));

    public AiConfigTests()
    {
        Directory.CreateDirectory(_folder);
        File.WriteAllText(Path.Combine(_folder, "key"), "sk-ant-secret-value\n");
        File.WriteAllText(Path.Combine(_folder, "empty"), "\n");
        File.WriteAllText(Path.Combine(_folder, "two-lines"), "abc\ndef\n");
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Config(string ai, string route = "{}") => $$"""
        { "listeners": [ { "name": "p", "address": "127.0.0.1:0", "tls": false } ],
          "ai": {{ai}},
          "routes": [ { "id": "r", "match": { "path": "/v1/{**rest}" }, "ai": {{route}} } ] }
        """;

    private const string Valid = """
        { "providers": [ { "id": "a", "kind": "anthropic", "baseUrl": "https://api.anthropic.com", "apiKeyFile": "key" } ],
          "models": [ { "name": "claude", "provider": "a", "model": "claude-opus-4-6" } ] }
        """;

    private IReadOnlyList<ConfigError> Errors(string json)
    {
        try
        {
            return ConfigCompiler.Validate(ConfigLoader.Parse(Encoding.UTF8.GetBytes(json)), _folder);
        }
        catch (ConfigException e)
        {
            return e.Errors;
        }
    }

    [Fact]
    public void A_valid_section_compiles_to_models_with_their_providers()
    {
        ConfigSnapshot snapshot = ConfigCompiler.Compile(ConfigLoader.Parse(Encoding.UTF8.GetBytes(Config(Valid))), _folder);

        var handler = Assert.IsType<AiHandler>(snapshot.Routes.Routes.Single().Handler);
        AiModel model = handler.Gateway.Models["claude"];
        Assert.Equal("claude-opus-4-6", model.UpstreamModel);
        Assert.Equal(AiProviderKind.Anthropic, model.Provider.Kind);
        Assert.Equal("https://api.anthropic.com/", model.Provider.BaseUrl.AbsoluteUri);
        Assert.Equal(AiModel.DefaultMaxTokens, model.MaxTokens);
        Assert.Equal(TimeSpan.FromMinutes(10), model.Provider.Timeout);
        Assert.Equal(AiGateway.DefaultMaxRequestBytes, handler.Gateway.MaxRequestBytes);
    }

    [Theory]
    [InlineData("""{ "providers": [ { "id": "a b", "kind": "anthropic", "baseUrl": "https://x.test" } ] }""", "ai.providers[0].id")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "mistral", "baseUrl": "https://x.test" } ] }""", "ai.providers[0].kind")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai" } ] }""", "ai.providers[0].baseUrl")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "ftp://x.test" } ] }""", "ai.providers[0].baseUrl")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test/v1?key=1" } ] }""", "ai.providers[0].baseUrl")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://me:pw@x.test/v1" } ] }""", "ai.providers[0].baseUrl")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "/v1" } ] }""", "ai.providers[0].baseUrl")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test", "apiKeyFile": "missing" } ] }""", "ai.providers[0].apiKeyFile")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test", "apiKeyFile": "empty" } ] }""", "ai.providers[0].apiKeyFile")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test", "apiKeyFile": "two-lines" } ] }""", "ai.providers[0].apiKeyFile")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test", "apiKeyEnv": "APPLIANCE_TEST_UNSET_VARIABLE" } ] }""", "ai.providers[0].apiKeyEnv")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test", "apiKeyFile": "key", "apiKeyEnv": "HOME" } ] }""", "ai.providers[0]")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test", "timeout": "soon" } ] }""", "ai.providers[0].timeout")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" }, { "id": "a", "kind": "openai", "baseUrl": "https://y.test" } ] }""", "ai.providers[1].id")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "provider": "a" } ] }""", "ai.models[0].name")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "b" } ] }""", "ai.models[0].provider")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "a" }, { "name": "m", "provider": "a" } ] }""", "ai.models[1].name")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "a", "maxTokens": 0 } ] }""", "ai.models[0].maxTokens")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "a", "model": "" } ] }""", "ai.models[0].model")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "a", "fallbacks": ["n"] } ] }""", "ai.models[0].fallbacks[0]")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "a", "fallbacks": ["m"] } ] }""", "ai.models[0].fallbacks[0]")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "a", "fallbacks": ["n", "n"] }, { "name": "n", "provider": "a" } ] }""", "ai.models[0].fallbacks[1]")]
    [InlineData("""{ "maxRequestBytes": "12" }""", "ai.maxRequestBytes")]
    [InlineData("""{ "maxRequestBytes": "3GiB" }""", "ai.maxRequestBytes")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test", "timeout": "60d" } ] }""", "ai.providers[0].timeout")]
    [InlineData("""{ "maxResponseBytes": "lots" }""", "ai.maxResponseBytes")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test", "key": "sk-1" } ] }""", "ai.providers[0].key")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "a", "cost": { "output": 1 } } ] }""", "ai.models[0].cost.input")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "a", "cost": { "input": 1 } } ] }""", "ai.models[0].cost.output")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "a", "cost": { "input": -1, "output": 1 } } ] }""", "ai.models[0].cost.input")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "a", "cost": { "input": 1, "output": 100001 } } ] }""", "ai.models[0].cost.output")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "a", "cost": { "input": 1, "output": 1, "cachedInput": -0.5 } } ] }""", "ai.models[0].cost.cachedInput")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "a", "cost": { "input": "cheap", "output": 1 } } ] }""", "ai.models[0].cost.input")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "a", "cost": { "input": 1, "output": 1, "currency": "EUR" } } ] }""", "ai.models[0].cost.currency")]
    [InlineData("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ], "models": [ { "name": "m", "provider": "a", "cost": { "input": 1e30, "output": 1 } } ] }""", "ai.models[0].cost.input")]
    public void Malformed_fields_are_named(string ai, string path)
    {
        IReadOnlyList<ConfigError> errors = Errors(Config(ai));

        Assert.True(errors.Any(e => e.Path == path), string.Join("\n", errors.Select(e => $"{e.Path}: {e.Message}")));
    }

    [Fact]
    public void A_price_compiles_with_cached_input_at_the_input_price_unless_given()
    {
        const string ai = """
            { "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test" } ],
              "models": [ { "name": "m", "provider": "a", "cost": { "input": 2.5, "output": 10 } },
                          { "name": "c", "provider": "a", "cost": { "input": 3, "cachedInput": 0.3, "output": 15 } },
                          { "name": "free", "provider": "a" } ] }
            """;
        ConfigSnapshot snapshot = ConfigCompiler.Compile(ConfigLoader.Parse(Encoding.UTF8.GetBytes(Config(ai))), _folder);
        AiGateway gateway = Assert.IsType<AiHandler>(snapshot.Routes.Routes.Single().Handler).Gateway;
        Assert.Equal(new ModelCost(2.5m, 2.5m, 10m), gateway.Models["m"].Cost);
        Assert.Equal(new ModelCost(3m, 0.3m, 15m), gateway.Models["c"].Cost);
        Assert.Null(gateway.Models["free"].Cost);
    }

    [Fact]
    public void A_key_comes_from_a_systemd_credential_by_its_name_or_the_packaged_units_prefix()
    {
        File.WriteAllText(Path.Combine(_folder, "providers_anthropic"), "sk-from-unit\n");
        File.WriteAllText(Path.Combine(_folder, "direct"), "sk-direct");
        string previous = Environment.GetEnvironmentVariable("CREDENTIALS_DIRECTORY") ?? "";
        try
        {
            Environment.SetEnvironmentVariable("CREDENTIALS_DIRECTORY", _folder);
            Assert.Equal("sk-from-unit", KeyOf("""{ "id": "a", "kind": "anthropic", "baseUrl": "https://x.test", "apiKeyCredential": "anthropic" }"""));
            Assert.Equal("sk-direct", KeyOf("""{ "id": "a", "kind": "anthropic", "baseUrl": "https://x.test", "apiKeyCredential": "direct" }"""));
            Assert.Contains(Errors(Config("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test", "apiKeyCredential": "missing" } ] }""")),
                e => e.Path == "ai.providers[0].apiKeyCredential");
            Assert.Contains(Errors(Config("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test", "apiKeyCredential": "../key" } ] }""")),
                e => e.Path == "ai.providers[0].apiKeyCredential");
            Assert.Contains(Errors(Config("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test", "apiKeyCredential": "direct", "apiKeyFile": "key" } ] }""")),
                e => e.Path == "ai.providers[0]");

            Environment.SetEnvironmentVariable("CREDENTIALS_DIRECTORY", "");
            Assert.Contains(Errors(Config("""{ "providers": [ { "id": "a", "kind": "openai", "baseUrl": "https://x.test", "apiKeyCredential": "direct" } ] }""")),
                e => e.Path == "ai.providers[0].apiKeyCredential" && e.Message.Contains("CREDENTIALS_DIRECTORY", StringComparison.Ordinal));
        }
        finally
        {
            Environment.SetEnvironmentVariable("CREDENTIALS_DIRECTORY", previous.Length == 0 ? null : previous);
        }

        string? KeyOf(string provider)
        {
            string ai = $$"""{ "providers": [ {{provider}} ], "models": [ { "name": "m", "provider": "a" } ] }""";
            ConfigSnapshot snapshot = ConfigCompiler.Compile(ConfigLoader.Parse(Encoding.UTF8.GetBytes(Config(ai))), _folder);
            return snapshot.Ai!.Models["m"].Provider.ApiKey;
        }
    }

    [Fact]
    public void A_key_never_appears_in_an_error()
    {
        IReadOnlyList<ConfigError> errors = Errors(Config("""
            { "providers": [ { "id": "a", "kind": "nope", "baseUrl": "https://x.test", "apiKeyFile": "key" } ] }
            """));

        Assert.NotEmpty(errors);
        Assert.DoesNotContain(errors, e => e.Message.Contains("secret", StringComparison.Ordinal));
    }

    [Fact]
    public void Routes_need_the_section_and_name_only_its_models()
    {
        const string noAi = """
            { "listeners": [ { "name": "p", "address": "127.0.0.1:0", "tls": false } ],
              "routes": [ { "id": "r", "ai": {} } ] }
            """;
        Assert.Contains(Errors(noAi), e => e.Path == "routes[0].ai");
        Assert.Contains(Errors(Config(Valid, """{ "models": ["claude", "gpt"] }""")), e => e.Path == "routes[0].ai.models[1]");
        Assert.Contains(Errors(Config(Valid, """{ "models": ["claude"] }""").Replace("\"ai\": { \"models\"", "\"direct\": {}, \"ai\": { \"models\"", StringComparison.Ordinal)), e => e.Path == "routes[0]");
        Assert.Empty(Errors(Config(Valid, """{ "models": ["claude"] }""")));
    }
}

using Appliance.Ai;

namespace Appliance.Config;

/// <summary>The ai section (providers, models, limits) and routes' ai handlers.</summary>
public sealed partial class ConfigCompiler
{
    private AiGateway? _ai;
    private bool _aiConfigured;

    /// <summary>The ai section as compiled; null when the config has none (or it has errors).</summary>
    private AiGateway? CompileAi(AiConfig? ai)
    {
        if (ai is null)
        {
            return null;
        }

        _aiConfigured = true;
        int before = _errors.Count;
        var providers = new Dictionary<string, AiProvider>(StringComparer.Ordinal);
        for (int i = 0; i < (ai.Providers?.Count ?? 0); i++)
        {
            AiProviderConfig c = ai.Providers![i];
            string p = $"ai.providers[{i}]";
            if (c is null)
            {
                Error(p, "must be an object");
                continue;
            }

            if (!IsIdentifier(c.Id))
            {
                Error($"{p}.id", "is required: letters, digits, '-', '_' or '.'");
            }
            else if (providers.ContainsKey(c.Id!))
            {
                Error($"{p}.id", $"'{c.Id}' is already a provider's id");
            }

            AiProviderKind? kind = c.Kind switch
            {
                "openai" => AiProviderKind.OpenAi,
                "anthropic" => AiProviderKind.Anthropic,
                "gemini" => AiProviderKind.Gemini,
                _ => null,
            };
            if (kind is null)
            {
                Error($"{p}.kind", $"'{c.Kind}' is not a provider kind: \"openai\", \"anthropic\" or \"gemini\"");
            }

            Uri? baseUrl = null;
            if (string.IsNullOrEmpty(c.BaseUrl) || !Uri.TryCreate(c.BaseUrl, UriKind.Absolute, out baseUrl)
                || baseUrl.Scheme is not ("http" or "https") || baseUrl.Query.Length > 0 || baseUrl.Fragment.Length > 0 || baseUrl.UserInfo.Length > 0)
            {
                Error($"{p}.baseUrl", "must be an http(s) URL without query, fragment or credentials, like \"https://api.anthropic.com\"");
                baseUrl = null;
            }

            string? key = ReadApiKey(c, p);
            TimeSpan timeout = ParseDuration(c.Timeout, $"{p}.timeout", TimeSpan.FromMinutes(10));
            if (timeout > TimeSpan.FromHours(24))
            {
                Error($"{p}.timeout", "must be at most 24h");
            }
            if (_errors.Count == before && kind is { } k && baseUrl is not null)
            {
                var provider = new AiProvider(c.Id!, k, baseUrl, key, timeout);
                providers[c.Id!] = provider;
            }
        }

        var models = new Dictionary<string, AiModel>(StringComparer.Ordinal);
        for (int i = 0; i < (ai.Models?.Count ?? 0); i++)
        {
            AiModelConfig m = ai.Models![i];
            string p = $"ai.models[{i}]";
            if (m is null)
            {
                Error(p, "must be an object");
                continue;
            }

            if (string.IsNullOrWhiteSpace(m.Name) || m.Name.Length > 256 || m.Name.Any(char.IsControl))
            {
                Error($"{p}.name", "is required: the name clients give as \"model\"");
                continue;
            }

            if (models.ContainsKey(m.Name))
            {
                Error($"{p}.name", $"'{m.Name}' is already a model's name");
            }

            if (m.Provider is null || !providers.TryGetValue(m.Provider, out AiProvider? provider))
            {
                if (_errors.Count == before)
                {
                    Error($"{p}.provider", $"no provider with id '{m.Provider}'");
                }

                continue;
            }

            if (m.Model is { } upstream && (upstream.Length == 0 || upstream.Any(char.IsControl)))
            {
                Error($"{p}.model", "must be the provider's name for the model");
            }

            if (m.MaxTokens is < 1 or > 10_000_000)
            {
                Error($"{p}.maxTokens", "must be between 1 and 10000000");
            }

            models[m.Name] = new AiModel(m.Name, provider, m.Model ?? m.Name, m.MaxTokens ?? AiModel.DefaultMaxTokens)
            {
                Cost = CompileCost(m.Cost, $"{p}.cost"),
            };
        }

        for (int i = 0; i < (ai.Models?.Count ?? 0); i++)
        {
            AiModelConfig m = ai.Models![i];
            if (m?.Fallbacks is not { } fallbacks || m.Name is null || !models.TryGetValue(m.Name, out AiModel? model))
            {
                continue;
            }

            if (fallbacks.Count > AiModel.MaxFallbacks)
            {
                Error($"ai.models[{i}].fallbacks", $"at most {AiModel.MaxFallbacks}");
            }

            for (int j = 0; j < fallbacks.Count; j++)
            {
                string? name = fallbacks[j];
                if (name is null || !models.ContainsKey(name))
                {
                    Error($"ai.models[{i}].fallbacks[{j}]", $"no model named '{name}' in ai.models");
                }
                else if (name == m.Name || fallbacks.IndexOf(name) != j)
                {
                    Error($"ai.models[{i}].fallbacks[{j}]", $"'{name}' is the model itself or named twice");
                }
            }

            models[m.Name] = model with { Fallbacks = fallbacks.ToArray() };
        }

        long maxRequest = ParseAiSize(ai.MaxRequestBytes, "ai.maxRequestBytes", AiGateway.DefaultMaxRequestBytes);
        long maxResponse = ParseAiSize(ai.MaxResponseBytes, "ai.maxResponseBytes", AiGateway.DefaultMaxResponseBytes);
        return _errors.Count > before ? null : new AiGateway(models, maxRequest, maxResponse, _previous?.Ai?.Counters ?? new AiCounters());
    }

    /// <summary>The provider's key from its file or environment variable; errors never quote it.</summary>
    private string? ReadApiKey(AiProviderConfig c, string p)
    {
        if ((c.ApiKeyFile is null ? 0 : 1) + (c.ApiKeyEnv is null ? 0 : 1) + (c.ApiKeyCredential is null ? 0 : 1) > 1)
        {
            Error(p, "give the key by one of 'apiKeyFile', 'apiKeyEnv' and 'apiKeyCredential'");
            return null;
        }

        string? key = null;
        string field = c.ApiKeyFile is not null ? "apiKeyFile" : c.ApiKeyEnv is not null ? "apiKeyEnv" : "apiKeyCredential";
        string? credentialPath = null;
        if (c.ApiKeyCredential is { } credential)
        {
            string? directory = Environment.GetEnvironmentVariable("CREDENTIALS_DIRECTORY");
            if (string.IsNullOrEmpty(directory))
            {
                Error($"{p}.apiKeyCredential", "needs the service's systemd credentials ($CREDENTIALS_DIRECTORY is not set)");
                return null;
            }

            if (!IsIdentifier(credential))
            {
                Error($"{p}.apiKeyCredential", "must be a credential's name: letters, digits, '-', '_' or '.'");
                return null;
            }

            credentialPath = Path.Combine(directory, credential);
            if (!File.Exists(credentialPath))
            {
                credentialPath = Path.Combine(directory, "providers_" + credential);
            }
        }

        if ((c.ApiKeyFile ?? credentialPath) is { } file)
        {
            string path = Resolve(file);
            try
            {
                key = File.ReadAllText(path).TrimEnd();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Error($"{p}.{field}", $"cannot read '{path}': {e.GetType().Name}");
                return null;
            }

            if (key.Length == 0)
            {
                Error($"{p}.{field}", $"'{path}' is empty");
            }
        }
        else if (c.ApiKeyEnv is { } name)
        {
            key = Environment.GetEnvironmentVariable(name);
            if (string.IsNullOrEmpty(key))
            {
                Error($"{p}.apiKeyEnv", $"the environment variable '{name}' is not set");
            }
        }

        if (key is not null && !key.All(ch => ch is > ' ' and < (char)127))
        {
            Error($"{p}.{field}", "the key must be one line of printable ASCII");
            key = null;
        }

        return key;
    }

    private long ParseAiSize(string? text, string p, long fallback)
    {
        if (text is null)
        {
            return fallback;
        }

        if (!ByteSize.TryParse(text, out long value) || value < 1024 || value > 1L << 30)
        {
            Error(p, "must be a size from 1KiB to 1GiB, like \"4MiB\"");
            return fallback;
        }

        return value;
    }

    /// <summary>A route's ai handler: the models it serves must be the ai section's.</summary>
    private AiHandler? CompileAiRoute(AiRouteConfig route, string p)
    {
        if (_ai is null)
        {
            if (!_aiConfigured)
            {
                Error($"{p}.ai", "needs the 'ai' section with its providers and models");
            }

            return null; // else the section's own errors say why
        }

        HashSet<string>? served = null;
        if (route.Models is { } names)
        {
            served = new HashSet<string>(StringComparer.Ordinal);
            for (int j = 0; j < names.Count; j++)
            {
                if (names[j] is null || !_ai.Models.ContainsKey(names[j]))
                {
                    Error($"{p}.ai.models[{j}]", $"no model named '{names[j]}' in ai.models");
                }
                else
                {
                    served.Add(names[j]);
                }
            }
        }

        return new AiHandler(_ai, served);
    }

    /// <summary>ai.models[].cost: input and output prices required, each from 0 to <see cref="ModelCost.MaxPrice"/> per million tokens.</summary>
    private ModelCost? CompileCost(AiCostConfig? c, string p)
    {
        if (c is null)
        {
            return null;
        }

        decimal Price(decimal? value, string name, decimal? otherwise)
        {
            if (value is null && otherwise is null)
            {
                Error($"{p}.{name}", "is required: the price per million tokens");
                return 0;
            }

            decimal price = value ?? otherwise!.Value;
            if (price is < 0 or > ModelCost.MaxPrice)
            {
                Error($"{p}.{name}", $"must be between 0 and {ModelCost.MaxPrice:0} per million tokens");
                return 0;
            }

            return price;
        }

        decimal input = Price(c.Input, "input", null);
        return new ModelCost(input, Price(c.CachedInput, "cachedInput", input), Price(c.Output, "output", null));
    }
}

using System.Net;
using System.Net.Http;

namespace Appliance.Ai;

/// <summary>The wire format a provider speaks (ai.providers[].kind).</summary>
public enum AiProviderKind
{
    /// <summary>"openai": OpenAI's chat completions API, as OpenAI and most self-hosted servers (vLLM, llama.cpp, Ollama) speak it.</summary>
    OpenAi,

    /// <summary>"anthropic": Anthropic's Messages API.</summary>
    Anthropic,

    /// <summary>"gemini": Google's Gemini API (generateContent).</summary>
    Gemini,
}

/// <summary>ai.providers[] as compiled. The key is never logged nor shown by the admin API.</summary>
public sealed class AiProvider(string id, AiProviderKind kind, Uri baseUrl, string? apiKey, TimeSpan timeout)
{
    public string Id => id;

    public AiProviderKind Kind => kind;

    /// <summary>The API's base, always ending in "/".</summary>
    public Uri BaseUrl { get; } = baseUrl.AbsoluteUri.EndsWith('/') ? baseUrl : new Uri(baseUrl.AbsoluteUri + "/");

    internal string? ApiKey => apiKey;

    public TimeSpan Timeout => timeout;

    /// <summary>True when another compile of the same settings would make the same provider (for carrying it over).</summary>
    public bool SameAs(AiProvider other) =>
        other.Id == Id && other.Kind == Kind && other.BaseUrl == BaseUrl && other.ApiKey == ApiKey && other.Timeout == Timeout;
}

/// <summary>ai.models[] as compiled: the name a client asks for, and who answers it as what.</summary>
public sealed record AiModel(string Name, AiProvider Provider, string UpstreamModel, int MaxTokens)
{
    public const int DefaultMaxTokens = 4096;

    /// <summary>The most fallbacks a model may name.</summary>
    public const int MaxFallbacks = 8;

    /// <summary>Models tried in order when this one's provider fails before answering (ai.models[].fallbacks).</summary>
    public IReadOnlyList<string> Fallbacks { get; init; } = [];

    /// <summary>What its tokens cost (ai.models[].cost); null when the config gives no price.</summary>
    public ModelCost? Cost { get; init; }
}

/// <summary>The ai section as compiled: its models by name and its limits.</summary>
public sealed class AiGateway(IReadOnlyDictionary<string, AiModel> models, long maxRequestBytes, long maxResponseBytes, AiCounters counters)
{
    public const long DefaultMaxRequestBytes = 4L << 20;
    public const long DefaultMaxResponseBytes = 8L << 20;

    public IReadOnlyDictionary<string, AiModel> Models => models;

    public long MaxRequestBytes => maxRequestBytes;

    public long MaxResponseBytes => maxResponseBytes;

    /// <summary>The models' counters, carried over from the config this one replaced.</summary>
    public AiCounters Counters => counters;

    /// <summary>
    /// One client for every provider: SocketsHttpHandler pools connections per origin, HTTP/2 where the provider
    /// offers it by ALPN. Decompression is on, so a provider may gzip its answers. Each request has its own deadline
    /// (the provider's timeout), so the client's is infinite.
    /// </summary>
    internal static HttpClient Http { get; } = new(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(10),
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
        PooledConnectionLifetime = TimeSpan.FromMinutes(10),
        AutomaticDecompression = DecompressionMethods.GZip | DecompressionMethods.Deflate | DecompressionMethods.Brotli,
        UseCookies = false,
        AllowAutoRedirect = false,
        UseProxy = false,
    })
    {
        Timeout = System.Threading.Timeout.InfiniteTimeSpan,
    };
}

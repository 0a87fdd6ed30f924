using System.Net.Http;
using System.Text.Json;

namespace Appliance.Ai;

/// <summary>
/// "openai": the request goes on as the client sent it, with the model renamed to the provider's; the answer, whole
/// or streamed, comes back as it is. Parameters the gateway does not know pass through, since this provider does.
/// </summary>
public sealed class OpenAiAdapter : ProviderAdapter
{
    public override HttpRequestMessage CreateRequest(ChatRequest request, AiModel model)
    {
        var message = new HttpRequestMessage(HttpMethod.Post, new Uri(model.Provider.BaseUrl, "chat/completions"))
        {
            Content = Json(w =>
            {
                w.WriteStartObject();
                foreach (JsonProperty property in request.Root.EnumerateObject())
                {
                    if (property.NameEquals("model"u8))
                    {
                        w.WriteString("model"u8, model.UpstreamModel);
                    }
                    else
                    {
                        property.WriteTo(w);
                    }
                }

                w.WriteEndObject();
            }),
        };
        Authorize(message, "Authorization", model.Provider.ApiKey is { } key ? "Bearer " + key : null);
        return message;
    }

    public override StreamTranslator? CreateTranslator(int maxEventBytes) => null;

    public override byte[] TranslateResponse(ReadOnlySpan<byte> body, ChatRequest request, AiModel model, long created, out TokenUsage usage)
    {
        byte[] answer = body.ToArray();
        using JsonDocument document = JsonDocument.Parse(answer);
        JsonElement root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException("not a JSON object");
        }

        JsonElement counts = root.TryGetProperty("usage", out JsonElement u) ? u : default;
        JsonElement prompt = counts.ValueKind == JsonValueKind.Object && counts.TryGetProperty("prompt_tokens_details", out JsonElement p) ? p : default;
        JsonElement completion = counts.ValueKind == JsonValueKind.Object && counts.TryGetProperty("completion_tokens_details", out JsonElement c) ? c : default;
        usage = new TokenUsage
        {
            InputTokens = Count(counts, "prompt_tokens"),
            OutputTokens = Count(counts, "completion_tokens"),
            CachedInputTokens = Count(prompt, "cached_tokens"),
            ReasoningTokens = Count(completion, "reasoning_tokens"),
        };
        return answer;
    }
}

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
                    else if (property.NameEquals("messages"u8) && property.Value.ValueKind == JsonValueKind.Array)
                    {
                        w.WriteStartArray("messages"u8);
                        foreach (JsonElement message in property.Value.EnumerateArray())
                        {
                            WriteMessage(w, message);
                        }

                        w.WriteEndArray();
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

    /// <summary>A message as sent, but for the ids of Gemini's tool calls, which lose the signature they carry.</summary>
    private static void WriteMessage(Utf8JsonWriter w, JsonElement message) => WriteUnsigned(w, message, "tool_call_id"u8, calls: true);

    /// <summary>
    /// An object as sent, with its string member <paramref name="idName"/> unsigned (<see cref="CallIds.Unsigned"/>);
    /// with <paramref name="calls"/>, each object of its "tool_calls" array too, by its "id".
    /// </summary>
    private static void WriteUnsigned(Utf8JsonWriter w, JsonElement value, ReadOnlySpan<byte> idName, bool calls)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            value.WriteTo(w);
            return;
        }

        w.WriteStartObject();
        foreach (JsonProperty member in value.EnumerateObject())
        {
            if (member.NameEquals(idName) && member.Value.ValueKind == JsonValueKind.String)
            {
                w.WriteString(idName, CallIds.Unsigned(member.Value.GetString()!));
            }
            else if (calls && member.NameEquals("tool_calls"u8) && member.Value.ValueKind == JsonValueKind.Array)
            {
                w.WriteStartArray("tool_calls"u8);
                foreach (JsonElement call in member.Value.EnumerateArray())
                {
                    WriteUnsigned(w, call, "id"u8, calls: false);
                }

                w.WriteEndArray();
            }
            else
            {
                member.WriteTo(w);
            }
        }

        w.WriteEndObject();
    }

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

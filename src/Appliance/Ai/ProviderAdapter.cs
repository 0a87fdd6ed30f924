using System.Buffers;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Appliance.Ai;

/// <summary>
/// What a provider kind needs beyond the stream translator: its request made from the client's OpenAI one, its
/// whole answer and its errors turned into OpenAI's. One instance per kind; they hold no state.
/// </summary>
public abstract class ProviderAdapter
{
    private static readonly ProviderAdapter[] Adapters = [new OpenAiAdapter(), new AnthropicAdapter(), new GeminiAdapter()];

    public static ProviderAdapter For(AiProviderKind kind) => Adapters[(int)kind];

    /// <summary>The provider's request for the client's; throws <see cref="AiError"/> for what the provider cannot do.</summary>
    public abstract HttpRequestMessage CreateRequest(ChatRequest request, AiModel model);

    /// <summary>A translator for the provider's streamed answer; null when it is OpenAI's format already.</summary>
    public abstract StreamTranslator? CreateTranslator(int maxEventBytes);

    /// <summary>The provider's whole answer as an OpenAI <c>chat.completion</c>, and what it cost; throws <see cref="InvalidDataException"/> or <see cref="JsonException"/> when unreadable.</summary>
    public abstract byte[] TranslateResponse(ReadOnlySpan<byte> body, ChatRequest request, AiModel model, long created, out TokenUsage usage);

    /// <summary>
    /// The provider's error answer, as OpenAI would have put it. A refusal of the gateway's own key (401, 403) or a
    /// redirect is the gateway's problem, not the client's: 502, without the provider's message (it may quote part of
    /// the key). The rest keep their status and message: a bad request, an unknown model, limits, overload.
    /// </summary>
    public virtual AiError TranslateError(int status, ReadOnlySpan<byte> body)
    {
        if (status is 401 or 403 or < 400)
        {
            return new AiError(502, "api_error", $"The model's provider refused the gateway's request ({status}); see the provider's key and base URL in the gateway's config.")
            {
                ProviderFailed = true,
            };
        }

        string type = status switch
        {
            400 or 404 or 413 or 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            _ => "api_error",
        };
        string message = $"The provider answered {status}.";
        try
        {
            using JsonDocument document = JsonDocument.Parse(body.ToArray());
            if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("error", out JsonElement error))
            {
                if (error.ValueKind == JsonValueKind.Object)
                {
                    if (error.TryGetProperty("message", out JsonElement m) && m.ValueKind == JsonValueKind.String)
                    {
                        message = m.GetString()!;
                    }

                    if (error.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String)
                    {
                        type = t.GetString()!;
                    }
                    else if (error.TryGetProperty("status", out JsonElement s) && s.ValueKind == JsonValueKind.String)
                    {
                        type = s.GetString()!; // Gemini: "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", …
                    }
                }
                else if (error.ValueKind == JsonValueKind.String)
                {
                    message = error.GetString()!;
                }
            }
        }
        catch (JsonException)
        {
            // Not JSON (a balancer's HTML page): the status says it all.
        }

        return new AiError(status, type, message) { ProviderFailed = status is 408 or 429 or >= 500 };
    }

    /// <summary>A JSON body for the provider, written by <paramref name="write"/>.</summary>
    protected static ByteArrayContent Json(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var w = new Utf8JsonWriter(buffer))
        {
            write(w);
        }

        var content = new ByteArrayContent(buffer.WrittenSpan.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    protected static byte[] Json(Action<Utf8JsonWriter> write, int capacity)
    {
        var buffer = new ArrayBufferWriter<byte>(capacity);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            write(w);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>OpenAI's chat.completion with one choice, as the non-streaming adapters answer.</summary>
    protected static byte[] Completion(string id, string model, long created, string? content, string? reasoning, IReadOnlyList<(string Id, string Name, string Arguments)> calls, FinishReason finish, TokenUsage usage) =>
        Json(
            w =>
            {
                w.WriteStartObject();
                w.WriteString("id"u8, id);
                w.WriteString("object"u8, "chat.completion"u8);
                w.WriteNumber("created"u8, created);
                w.WriteString("model"u8, model);
                w.WriteStartArray("choices"u8);
                w.WriteStartObject();
                w.WriteNumber("index"u8, 0);
                w.WriteStartObject("message"u8);
                w.WriteString("role"u8, "assistant"u8);
                if (content is null)
                {
                    w.WriteNull("content"u8);
                }
                else
                {
                    w.WriteString("content"u8, content);
                }

                if (reasoning is not null)
                {
                    w.WriteString("reasoning_content"u8, reasoning);
                }

                if (calls.Count > 0)
                {
                    w.WriteStartArray("tool_calls"u8);
                    foreach ((string callId, string name, string arguments) in calls)
                    {
                        w.WriteStartObject();
                        w.WriteString("id"u8, callId);
                        w.WriteString("type"u8, "function"u8);
                        w.WriteStartObject("function"u8);
                        w.WriteString("name"u8, name);
                        w.WriteString("arguments"u8, arguments);
                        w.WriteEndObject();
                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                }

                w.WriteEndObject();
                w.WriteString("finish_reason"u8, finish.ToOpenAi());
                w.WriteEndObject();
                w.WriteEndArray();
                ChatChunkWriter.WriteUsageObject(w, usage);
                w.WriteEndObject();
            },
            1024);

    /// <summary>A whole number of tokens from a provider's usage; absent or null is 0.</summary>
    protected static long Count(JsonElement parent, string name) =>
        parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long n) && n >= 0 ? n : 0;

    /// <summary>A string member, or null.</summary>
    protected static string? StringOf(JsonElement parent, string name) =>
        parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>stop: a string or an array of strings, as a list.</summary>
    protected static List<string>? StopSequences(ChatRequest request)
    {
        if (!request.TryGet("stop", out JsonElement stop))
        {
            return null;
        }

        if (stop.ValueKind == JsonValueKind.String)
        {
            return [stop.GetString()!];
        }

        if (stop.ValueKind == JsonValueKind.Array && stop.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String))
        {
            return stop.EnumerateArray().Select(s => s.GetString()!).ToList();
        }

        throw AiError.Invalid("'stop' must be a string or an array of strings.", "stop");
    }

    /// <summary>A tool call's arguments (a JSON text in a string) as the object they hold.</summary>
    protected static void WriteArguments(Utf8JsonWriter w, JsonElement call, string param)
    {
        string arguments = call.TryGetProperty("function", out JsonElement f) && StringOf(f, "arguments") is { } a ? a : "{}";
        try
        {
            using JsonDocument parsed = JsonDocument.Parse(arguments.Length == 0 ? "{}" : arguments);
            if (parsed.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw AiError.Invalid($"{param}.function.arguments must hold a JSON object.", $"{param}.function.arguments");
            }

            parsed.RootElement.WriteTo(w);
        }
        catch (JsonException)
        {
            throw AiError.Invalid($"{param}.function.arguments is not valid JSON.", $"{param}.function.arguments");
        }
    }

    /// <summary>The client's tools as (name, description, parameters) after checking their shape.</summary>
    protected static List<(string Name, string? Description, JsonElement? Parameters)> Tools(ChatRequest request)
    {
        var tools = new List<(string, string?, JsonElement?)>();
        if (!request.TryGet("tools", out JsonElement array))
        {
            return tools;
        }

        if (array.ValueKind != JsonValueKind.Array)
        {
            throw AiError.Invalid("'tools' must be an array.", "tools");
        }

        int i = 0;
        foreach (JsonElement tool in array.EnumerateArray())
        {
            if (StringOf(tool, "type") != "function" || !tool.TryGetProperty("function", out JsonElement f) || StringOf(f, "name") is not { Length: > 0 } name)
            {
                throw AiError.Invalid($"tools[{i}] must be a function with a name.", $"tools[{i}]");
            }

            JsonElement? parameters = f.TryGetProperty("parameters", out JsonElement p) && p.ValueKind == JsonValueKind.Object ? p : null;
            tools.Add((name, StringOf(f, "description"), parameters));
            i++;
        }

        return tools;
    }

    /// <summary>Refuses parameters the provider has no counterpart for; ignoring them would change the answer silently.</summary>
    protected static void Refuse(ChatRequest request, AiProviderKind kind, params string[] names)
    {
        foreach (string name in names)
        {
            if (request.TryGet(name, out JsonElement value) && value.ValueKind != JsonValueKind.False)
            {
                throw AiError.Unsupported(kind, name);
            }
        }

        if (request.TryGet("n", out JsonElement n) && n.GetInt32() != 1)
        {
            throw AiError.Unsupported(kind, "n");
        }
    }

    protected static void Authorize(HttpRequestMessage message, string header, string? key)
    {
        if (key is not null)
        {
            message.Headers.TryAddWithoutValidation(header, key);
        }
    }
}

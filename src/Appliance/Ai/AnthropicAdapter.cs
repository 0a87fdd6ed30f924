using System.Net.Http;
using System.Text;
using System.Text.Json;

namespace Appliance.Ai;

/// <summary>
/// "anthropic": OpenAI's chat request as a Messages API request (POST {base}/v1/messages, <c>x-api-key</c>,
/// <c>anthropic-version: 2023-06-01</c>), and Anthropic's message back as a chat completion.
/// <list type="bullet">
/// <item>system and developer messages become <c>system</c>; tool messages become <c>tool_result</c> blocks of a user
/// turn; an assistant's tool calls become <c>tool_use</c> blocks with their arguments parsed;</item>
/// <item>text and image parts (https or data URLs) become blocks;</item>
/// <item><c>max_completion_tokens</c> / <c>max_tokens</c> become <c>max_tokens</c> (the model's default when absent:
/// Anthropic requires one), <c>stop</c> <c>stop_sequences</c>, <c>user</c> <c>metadata.user_id</c>;</item>
/// <item>tools keep their JSON schema as <c>input_schema</c>; <c>tool_choice</c> auto/none/required/a function map to
/// auto/none/any/tool, and <c>parallel_tool_calls: false</c> to <c>disable_parallel_tool_use</c>.</item>
/// </list>
/// What Anthropic cannot do (<c>n</c> above 1, <c>logprobs</c>, a JSON <c>response_format</c>, audio) is refused
/// with 400 naming the parameter. Sampling penalties, <c>seed</c> and <c>logit_bias</c> have no counterpart and are
/// dropped, as they only tune an answer.
/// </summary>
public sealed class AnthropicAdapter : ProviderAdapter
{
    public override HttpRequestMessage CreateRequest(ChatRequest request, AiModel model)
    {
        Refuse(request, AiProviderKind.Anthropic, "logprobs", "top_logprobs", "audio", "prediction");
        if (request.TryGet("response_format", out JsonElement format) && StringOf(format, "type") != "text")
        {
            throw AiError.Unsupported(AiProviderKind.Anthropic, "response_format");
        }

        int maxTokens = request.MaxTokens(model);
        int thinking = request.ReasoningBudget() ?? 0;
        List<string>? stop = StopSequences(request);
        List<(string Name, string? Description, JsonElement? Parameters)> tools = Tools(request);
        var message = new HttpRequestMessage(HttpMethod.Post, new Uri(model.Provider.BaseUrl, "v1/messages"))
        {
            Content = Json(w =>
            {
                w.WriteStartObject();
                w.WriteString("model"u8, model.UpstreamModel);

                // Anthropic counts thinking inside max_tokens and wants it larger than the budget: the budget comes on
                // top of the answer's own limit.
                w.WriteNumber("max_tokens"u8, thinking > 0 ? (long)maxTokens + thinking : maxTokens);
                if (thinking > 0)
                {
                    w.WriteStartObject("thinking"u8);
                    w.WriteString("type"u8, "enabled"u8);
                    w.WriteNumber("budget_tokens"u8, thinking);
                    w.WriteEndObject();
                }

                WriteMessages(w, request);
                if (request.TryGet("temperature", out JsonElement temperature))
                {
                    w.WritePropertyName("temperature"u8);
                    temperature.WriteTo(w);
                }

                if (request.TryGet("top_p", out JsonElement topP))
                {
                    w.WritePropertyName("top_p"u8);
                    topP.WriteTo(w);
                }

                if (stop is not null)
                {
                    w.WriteStartArray("stop_sequences"u8);
                    stop.ForEach(w.WriteStringValue);
                    w.WriteEndArray();
                }

                if (request.Stream)
                {
                    w.WriteBoolean("stream"u8, true);
                }

                if (StringOf(request.Root, "user") is { } user)
                {
                    w.WriteStartObject("metadata"u8);
                    w.WriteString("user_id"u8, user);
                    w.WriteEndObject();
                }

                if (tools.Count > 0)
                {
                    w.WriteStartArray("tools"u8);
                    foreach ((string name, string? description, JsonElement? parameters) in tools)
                    {
                        w.WriteStartObject();
                        w.WriteString("name"u8, name);
                        if (description is not null)
                        {
                            w.WriteString("description"u8, description);
                        }

                        w.WritePropertyName("input_schema"u8);
                        if (parameters is { } schema)
                        {
                            schema.WriteTo(w);
                        }
                        else
                        {
                            w.WriteStartObject();
                            w.WriteString("type"u8, "object"u8);
                            w.WriteEndObject();
                        }

                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                    WriteToolChoice(w, request);
                }

                w.WriteEndObject();
            }),
        };
        Authorize(message, "x-api-key", model.Provider.ApiKey);
        message.Headers.TryAddWithoutValidation("anthropic-version", "2023-06-01");
        return message;
    }

    public override StreamTranslator? CreateTranslator(int maxEventBytes) => new AnthropicStreamTranslator(maxEventBytes);

    public override byte[] TranslateResponse(ReadOnlySpan<byte> body, ChatRequest request, AiModel model, long created, out TokenUsage usage)
    {
        using JsonDocument document = JsonDocument.Parse(body.ToArray());
        JsonElement root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("content", out JsonElement content) || content.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidDataException("not a message");
        }

        StringBuilder? text = null, reasoning = null;
        var calls = new List<(string, string, string)>();
        foreach (JsonElement block in content.EnumerateArray())
        {
            switch (StringOf(block, "type"))
            {
                case "text":
                    (text ??= new()).Append(StringOf(block, "text"));
                    break;
                case "thinking":
                    (reasoning ??= new()).Append(StringOf(block, "thinking"));
                    break;
                case "tool_use":
                    string input = block.TryGetProperty("input", out JsonElement i) ? i.GetRawText() : "{}";
                    calls.Add((StringOf(block, "id") ?? "", StringOf(block, "name") ?? "", input));
                    break;
            }
        }

        FinishReason finish = StringOf(root, "stop_reason") switch
        {
            "max_tokens" or "model_context_window_exceeded" => FinishReason.Length,
            "tool_use" => FinishReason.ToolCalls,
            "refusal" => FinishReason.ContentFilter,
            _ => FinishReason.Stop,
        };
        JsonElement counts = root.TryGetProperty("usage", out JsonElement u) ? u : default;
        long cacheRead = Count(counts, "cache_read_input_tokens");
        usage = new TokenUsage
        {
            InputTokens = Count(counts, "input_tokens") + cacheRead + Count(counts, "cache_creation_input_tokens"),
            CachedInputTokens = cacheRead,
            OutputTokens = Count(counts, "output_tokens"),
        };
        return Completion(StringOf(root, "id") ?? "", StringOf(root, "model") ?? model.UpstreamModel, created, text?.ToString(), reasoning?.ToString(), calls, finish, usage);
    }

    private static void WriteMessages(Utf8JsonWriter w, ChatRequest request)
    {
        var system = new StringBuilder();
        int i = 0;
        foreach (JsonElement message in request.Messages.EnumerateArray())
        {
            if (StringOf(message, "role") is "system" or "developer"
                && ChatRequest.TextOf(message.TryGetProperty("content", out JsonElement c) ? c : default, $"messages[{i}].content") is { } text)
            {
                system.Append(system.Length > 0 ? "\n\n" : "").Append(text);
            }

            i++;
        }

        if (system.Length > 0)
        {
            w.WriteString("system"u8, system.ToString());
        }

        w.WriteStartArray("messages"u8);
        i = 0;
        bool inToolTurn = false; // consecutive tool messages answer one turn's calls: one user turn of tool_result blocks
        foreach (JsonElement message in request.Messages.EnumerateArray())
        {
            string p = $"messages[{i++}]";
            JsonElement content = message.TryGetProperty("content", out JsonElement c) ? c : default;
            string? role = StringOf(message, "role");
            if (inToolTurn && role != "tool")
            {
                w.WriteEndArray();
                w.WriteEndObject();
                inToolTurn = false;
            }

            switch (role)
            {
                case "user":
                    w.WriteStartObject();
                    w.WriteString("role"u8, "user"u8);
                    WriteContent(w, content, $"{p}.content");
                    w.WriteEndObject();
                    break;
                case "assistant":
                    WriteAssistant(w, message, content, p);
                    break;
                case "tool":
                    if (StringOf(message, "tool_call_id") is not { Length: > 0 } callId)
                    {
                        throw AiError.Invalid($"{p}.tool_call_id is required.", $"{p}.tool_call_id");
                    }

                    if (!inToolTurn)
                    {
                        w.WriteStartObject();
                        w.WriteString("role"u8, "user"u8);
                        w.WriteStartArray("content"u8);
                        inToolTurn = true;
                    }

                    w.WriteStartObject();
                    w.WriteString("type"u8, "tool_result"u8);
                    w.WriteString("tool_use_id"u8, CallIds.Unsigned(callId));
                    w.WriteString("content"u8, ChatRequest.TextOf(content, $"{p}.content") ?? "");
                    w.WriteEndObject();
                    break;
            }
        }

        if (inToolTurn)
        {
            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static void WriteAssistant(Utf8JsonWriter w, JsonElement message, JsonElement content, string p)
    {
        string? text = ChatRequest.TextOf(content, $"{p}.content");
        JsonElement calls = message.TryGetProperty("tool_calls", out JsonElement t) && t.ValueKind == JsonValueKind.Array ? t : default;
        if (string.IsNullOrEmpty(text) && calls.ValueKind != JsonValueKind.Array)
        {
            return; // Anthropic refuses empty turns; an empty assistant message says nothing.
        }

        w.WriteStartObject();
        w.WriteString("role"u8, "assistant"u8);
        w.WriteStartArray("content"u8);
        if (!string.IsNullOrEmpty(text))
        {
            w.WriteStartObject();
            w.WriteString("type"u8, "text"u8);
            w.WriteString("text"u8, text);
            w.WriteEndObject();
        }

        int j = 0;
        foreach (JsonElement call in calls.ValueKind == JsonValueKind.Array ? calls.EnumerateArray().ToArray() : [])
        {
            string q = $"{p}.tool_calls[{j++}]";
            if (StringOf(call, "id") is not { Length: > 0 } id || !call.TryGetProperty("function", out JsonElement f) || StringOf(f, "name") is not { Length: > 0 } name)
            {
                throw AiError.Invalid($"{q} needs an id and a function name.", q);
            }

            w.WriteStartObject();
            w.WriteString("type"u8, "tool_use"u8);
            w.WriteString("id"u8, CallIds.Unsigned(id));
            w.WriteString("name"u8, name);
            w.WritePropertyName("input"u8);
            WriteArguments(w, call, q);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteContent(Utf8JsonWriter w, JsonElement content, string p)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            w.WriteString("content"u8, content.GetString());
            return;
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            throw AiError.Invalid($"{p} must be a string or an array of content parts.", p);
        }

        w.WriteStartArray("content"u8);
        int i = 0;
        foreach (JsonElement part in content.EnumerateArray())
        {
            string q = $"{p}[{i++}]";
            switch (StringOf(part, "type"))
            {
                case "text":
                    w.WriteStartObject();
                    w.WriteString("type"u8, "text"u8);
                    w.WriteString("text"u8, StringOf(part, "text") ?? throw AiError.Invalid($"{q}.text is required.", $"{q}.text"));
                    w.WriteEndObject();
                    break;
                case "image_url":
                    string url = part.TryGetProperty("image_url", out JsonElement image) ? StringOf(image, "url") ?? "" : "";
                    w.WriteStartObject();
                    w.WriteString("type"u8, "image"u8);
                    w.WriteStartObject("source"u8);
                    if (DataUrl.TryParse(url, out string? mediaType, out string? data))
                    {
                        w.WriteString("type"u8, "base64"u8);
                        w.WriteString("media_type"u8, mediaType);
                        w.WriteString("data"u8, data);
                    }
                    else if (url.StartsWith("https://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
                    {
                        w.WriteString("type"u8, "url"u8);
                        w.WriteString("url"u8, url);
                    }
                    else
                    {
                        throw AiError.Invalid($"{q}.image_url.url must be an http(s) URL or a base64 data URL.", $"{q}.image_url.url");
                    }

                    w.WriteEndObject();
                    w.WriteEndObject();
                    break;
                default:
                    throw AiError.Unsupported(AiProviderKind.Anthropic, $"{q}.type");
            }
        }

        w.WriteEndArray();
    }

    private static void WriteToolChoice(Utf8JsonWriter w, ChatRequest request)
    {
        bool serial = request.TryGet("parallel_tool_calls", out JsonElement parallel) && parallel.ValueKind == JsonValueKind.False;
        string type = "auto";
        string? name = null;
        if (request.TryGet("tool_choice", out JsonElement choice))
        {
            if (choice.ValueKind == JsonValueKind.String)
            {
                type = choice.GetString() switch
                {
                    "auto" => "auto",
                    "none" => "none",
                    "required" => "any",
                    _ => throw AiError.Invalid("'tool_choice' must be auto, none, required or a function.", "tool_choice"),
                };
            }
            else if (choice.ValueKind == JsonValueKind.Object && choice.TryGetProperty("function", out JsonElement f) && StringOf(f, "name") is { Length: > 0 } n)
            {
                type = "tool";
                name = n;
            }
            else
            {
                throw AiError.Invalid("'tool_choice' must be auto, none, required or a function.", "tool_choice");
            }
        }

        if (type == "auto" && !serial && !request.TryGet("tool_choice", out _))
        {
            return;
        }

        w.WriteStartObject("tool_choice"u8);
        w.WriteString("type"u8, type);
        if (name is not null)
        {
            w.WriteString("name"u8, name);
        }

        if (serial && type != "none")
        {
            w.WriteBoolean("disable_parallel_tool_use"u8, true);
        }

        w.WriteEndObject();
    }
}

/// <summary>RFC 2397 data URLs of base64 data, as clients send images inline.</summary>
internal static class DataUrl
{
    public static bool TryParse(string url, out string? mediaType, out string? data)
    {
        mediaType = data = null;
        if (!url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        int comma = url.IndexOf(',', StringComparison.Ordinal);
        int marker = url.IndexOf(";base64", StringComparison.OrdinalIgnoreCase);
        if (comma < 0 || marker < 0 || marker + 7 != comma)
        {
            return false;
        }

        mediaType = url[5..marker];
        data = url[(comma + 1)..];
        return mediaType.Length > 0;
    }
}

using System.Net.Http;
using System.Text;
using System.Text.Json;

namespace Appliance.Ai;

/// <summary>
/// "gemini": OpenAI's chat request as a Gemini generateContent request (POST
/// {base}/v1beta/models/{model}:generateContent, or :streamGenerateContent?alt=sse; <c>x-goog-api-key</c>), and
/// Gemini's answer back as a chat completion.
/// <list type="bullet">
/// <item>system and developer messages become <c>systemInstruction</c>; assistant turns role <c>model</c>; an
/// assistant's tool calls <c>functionCall</c> parts; tool messages <c>functionResponse</c> parts (named after the call
/// they answer; consecutive ones in one turn, as Gemini pairs them with the calls);</item>
/// <item>text parts stay text, data-URL images become <c>inlineData</c>;</item>
/// <item>token limit, temperature, top_p, stop, seed and the penalties go to <c>generationConfig</c>, as does a JSON
/// <c>response_format</c> (<c>responseMimeType</c>, <c>responseJsonSchema</c>);</item>
/// <item>tools become <c>functionDeclarations</c> with their JSON schema as <c>parametersJsonSchema</c>;
/// <c>tool_choice</c> auto/none/required/a function map to AUTO/NONE/ANY/ANY with that one name allowed.</item>
/// </list>
/// Refused with 400: <c>n</c> above 1, <c>logprobs</c>, audio, and images by http URL (Gemini reads only its own file
/// URIs; send a data URL).
/// </summary>
public sealed class GeminiAdapter : ProviderAdapter
{
    public override HttpRequestMessage CreateRequest(ChatRequest request, AiModel model)
    {
        Refuse(request, AiProviderKind.Gemini, "logprobs", "top_logprobs", "audio", "prediction");
        int maxTokens = request.MaxTokens(model);
        int? thinking = request.ReasoningBudget();
        List<string>? stop = StopSequences(request);
        List<(string Name, string? Description, JsonElement? Parameters)> tools = Tools(request);
        string method = request.Stream ? ":streamGenerateContent?alt=sse" : ":generateContent";
        var message = new HttpRequestMessage(HttpMethod.Post, new Uri(model.Provider.BaseUrl, "v1beta/models/" + Uri.EscapeDataString(model.UpstreamModel) + method))
        {
            Content = Json(w =>
            {
                w.WriteStartObject();
                WriteContents(w, request);
                w.WriteStartObject("generationConfig"u8);
                w.WriteNumber("maxOutputTokens"u8, maxTokens);
                foreach ((string from, string to) in (ReadOnlySpan<(string, string)>)[("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"), ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")])
                {
                    if (request.TryGet(from, out JsonElement value))
                    {
                        w.WritePropertyName(to);
                        value.WriteTo(w);
                    }
                }

                if (stop is not null)
                {
                    w.WriteStartArray("stopSequences"u8);
                    stop.ForEach(w.WriteStringValue);
                    w.WriteEndArray();
                }

                WriteResponseFormat(w, request);
                if (thinking is { } budget)
                {
                    // Thoughts come back (as reasoning_content) when there are any to think.
                    w.WriteStartObject("thinkingConfig"u8);
                    w.WriteNumber("thinkingBudget"u8, budget);
                    w.WriteBoolean("includeThoughts"u8, budget > 0);
                    w.WriteEndObject();
                }

                w.WriteEndObject();
                if (tools.Count > 0)
                {
                    w.WriteStartArray("tools"u8);
                    w.WriteStartObject();
                    w.WriteStartArray("functionDeclarations"u8);
                    foreach ((string name, string? description, JsonElement? parameters) in tools)
                    {
                        w.WriteStartObject();
                        w.WriteString("name"u8, name);
                        if (description is not null)
                        {
                            w.WriteString("description"u8, description);
                        }

                        if (parameters is { } schema)
                        {
                            w.WritePropertyName("parametersJsonSchema"u8);
                            schema.WriteTo(w);
                        }

                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                    w.WriteEndObject();
                    w.WriteEndArray();
                    WriteToolConfig(w, request);
                }

                w.WriteEndObject();
            }),
        };
        Authorize(message, "x-goog-api-key", model.Provider.ApiKey);
        return message;
    }

    public override StreamTranslator? CreateTranslator(int maxEventBytes) => new GeminiStreamTranslator(maxEventBytes);

    public override byte[] TranslateResponse(ReadOnlySpan<byte> body, ChatRequest request, AiModel model, long created, out TokenUsage usage)
    {
        using JsonDocument document = JsonDocument.Parse(body.ToArray());
        JsonElement root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException("not a GenerateContentResponse");
        }

        StringBuilder? text = null, reasoning = null;
        var calls = new List<(string, string, string)>();
        FinishReason finish = FinishReason.Stop;
        if (root.TryGetProperty("promptFeedback", out JsonElement feedback) && StringOf(feedback, "blockReason") is not null)
        {
            finish = FinishReason.ContentFilter;
        }

        if (root.TryGetProperty("candidates", out JsonElement candidates) && candidates.ValueKind == JsonValueKind.Array && candidates.GetArrayLength() > 0)
        {
            JsonElement candidate = candidates[0];
            if (candidate.TryGetProperty("content", out JsonElement content) && content.TryGetProperty("parts", out JsonElement parts) && parts.ValueKind == JsonValueKind.Array)
            {
                foreach (JsonElement part in parts.EnumerateArray())
                {
                    if (part.TryGetProperty("functionCall", out JsonElement call))
                    {
                        string arguments = call.TryGetProperty("args", out JsonElement args) ? args.GetRawText() : "{}";
                        calls.Add((CallIds.New(StringOf(part, "thoughtSignature")), StringOf(call, "name") ?? "", arguments));
                    }
                    else if (StringOf(part, "text") is { } piece)
                    {
                        bool thought = part.TryGetProperty("thought", out JsonElement t) && t.ValueKind == JsonValueKind.True;
                        (thought ? reasoning ??= new() : text ??= new()).Append(piece);
                    }
                }
            }

            finish = StringOf(candidate, "finishReason") switch
            {
                "MAX_TOKENS" => FinishReason.Length,
                "SAFETY" or "RECITATION" or "BLOCKLIST" or "PROHIBITED_CONTENT" or "SPII" or "IMAGE_SAFETY" => FinishReason.ContentFilter,
                _ when calls.Count > 0 => FinishReason.ToolCalls,
                _ => finish,
            };
        }

        JsonElement counts = root.TryGetProperty("usageMetadata", out JsonElement u) ? u : default;
        long thoughts = Count(counts, "thoughtsTokenCount");
        usage = new TokenUsage
        {
            InputTokens = Count(counts, "promptTokenCount"),
            CachedInputTokens = Count(counts, "cachedContentTokenCount"),
            OutputTokens = Count(counts, "candidatesTokenCount") + thoughts,
            ReasoningTokens = thoughts,
        };
        string id = StringOf(root, "responseId") ?? System.Text.Encoding.ASCII.GetString(CallIds.NewCompletionId());
        return Completion(id, StringOf(root, "modelVersion") ?? model.UpstreamModel, created, text?.ToString(), reasoning?.ToString(), calls, finish, usage);
    }

    private static void WriteContents(Utf8JsonWriter w, ChatRequest request)
    {
        var system = new StringBuilder();
        var callNames = new Dictionary<string, string>(StringComparer.Ordinal);
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
            w.WriteStartObject("systemInstruction"u8);
            w.WriteStartArray("parts"u8);
            w.WriteStartObject();
            w.WriteString("text"u8, system.ToString());
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteStartArray("contents"u8);
        i = 0;
        bool inToolTurn = false;
        foreach (JsonElement message in request.Messages.EnumerateArray())
        {
            string p = $"messages[{i++}]";
            string? role = StringOf(message, "role");
            JsonElement content = message.TryGetProperty("content", out JsonElement c) ? c : default;
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
                    w.WriteStartArray("parts"u8);
                    WriteParts(w, content, $"{p}.content");
                    w.WriteEndArray();
                    w.WriteEndObject();
                    break;
                case "assistant":
                    WriteModelTurn(w, message, content, p, callNames);
                    break;
                case "tool":
                    if (StringOf(message, "tool_call_id") is not { Length: > 0 } callId || !callNames.TryGetValue(callId, out string? name))
                    {
                        throw AiError.Invalid($"{p}.tool_call_id must name a tool call of an earlier assistant message.", $"{p}.tool_call_id");
                    }

                    if (!inToolTurn)
                    {
                        w.WriteStartObject();
                        w.WriteString("role"u8, "user"u8);
                        w.WriteStartArray("parts"u8);
                        inToolTurn = true;
                    }

                    w.WriteStartObject();
                    w.WriteStartObject("functionResponse"u8);
                    w.WriteString("name"u8, name);
                    w.WritePropertyName("response"u8);
                    WriteToolResult(w, ChatRequest.TextOf(content, $"{p}.content") ?? "");
                    w.WriteEndObject();
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

    /// <summary>A tool's result as Gemini's response object: the JSON object it is, or {"content": text}.</summary>
    private static void WriteToolResult(Utf8JsonWriter w, string text)
    {
        try
        {
            using JsonDocument parsed = JsonDocument.Parse(text);
            if (parsed.RootElement.ValueKind == JsonValueKind.Object)
            {
                parsed.RootElement.WriteTo(w);
                return;
            }
        }
        catch (JsonException)
        {
            // plain text
        }

        w.WriteStartObject();
        w.WriteString("content"u8, text);
        w.WriteEndObject();
    }

    private static void WriteModelTurn(Utf8JsonWriter w, JsonElement message, JsonElement content, string p, Dictionary<string, string> callNames)
    {
        string? text = ChatRequest.TextOf(content, $"{p}.content");
        JsonElement[] calls = message.TryGetProperty("tool_calls", out JsonElement t) && t.ValueKind == JsonValueKind.Array ? t.EnumerateArray().ToArray() : [];
        if (string.IsNullOrEmpty(text) && calls.Length == 0)
        {
            return;
        }

        w.WriteStartObject();
        w.WriteString("role"u8, "model"u8);
        w.WriteStartArray("parts"u8);
        if (!string.IsNullOrEmpty(text))
        {
            w.WriteStartObject();
            w.WriteString("text"u8, text);
            w.WriteEndObject();
        }

        for (int j = 0; j < calls.Length; j++)
        {
            string q = $"{p}.tool_calls[{j}]";
            if (StringOf(calls[j], "id") is not { Length: > 0 } id || !calls[j].TryGetProperty("function", out JsonElement f) || StringOf(f, "name") is not { Length: > 0 } name)
            {
                throw AiError.Invalid($"{q} needs an id and a function name.", q);
            }

            callNames[id] = name;
            w.WriteStartObject();
            w.WriteStartObject("functionCall"u8);
            w.WriteString("name"u8, name);
            w.WritePropertyName("args"u8);
            WriteArguments(w, calls[j], q);
            w.WriteEndObject();

            // Gemini 3 refuses a replayed call without the signature its answer gave the first call of a turn; our
            // ids carry it. A call from elsewhere (another provider, an edited history) gets the value Google
            // documents for that case.
            if (CallIds.SignatureOf(id) is { } signature)
            {
                w.WriteString("thoughtSignature"u8, signature);
            }
            else if (j == 0)
            {
                w.WriteString("thoughtSignature"u8, "skip_thought_signature_validator"u8);
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteParts(Utf8JsonWriter w, JsonElement content, string p)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            w.WriteStartObject();
            w.WriteString("text"u8, content.GetString());
            w.WriteEndObject();
            return;
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            throw AiError.Invalid($"{p} must be a string or an array of content parts.", p);
        }

        int i = 0;
        foreach (JsonElement part in content.EnumerateArray())
        {
            string q = $"{p}[{i++}]";
            switch (StringOf(part, "type"))
            {
                case "text":
                    w.WriteStartObject();
                    w.WriteString("text"u8, StringOf(part, "text") ?? throw AiError.Invalid($"{q}.text is required.", $"{q}.text"));
                    w.WriteEndObject();
                    break;
                case "image_url":
                    string url = part.TryGetProperty("image_url", out JsonElement image) ? StringOf(image, "url") ?? "" : "";
                    if (!DataUrl.TryParse(url, out string? mediaType, out string? data))
                    {
                        throw AiError.Invalid($"{q}.image_url.url must be a base64 data URL for this model.", $"{q}.image_url.url");
                    }

                    w.WriteStartObject();
                    w.WriteStartObject("inlineData"u8);
                    w.WriteString("mimeType"u8, mediaType);
                    w.WriteString("data"u8, data);
                    w.WriteEndObject();
                    w.WriteEndObject();
                    break;
                default:
                    throw AiError.Unsupported(AiProviderKind.Gemini, $"{q}.type");
            }
        }
    }

    private static void WriteResponseFormat(Utf8JsonWriter w, ChatRequest request)
    {
        if (!request.TryGet("response_format", out JsonElement format))
        {
            return;
        }

        switch (StringOf(format, "type"))
        {
            case "text":
                return;
            case "json_object":
                w.WriteString("responseMimeType"u8, "application/json"u8);
                return;
            case "json_schema" when format.TryGetProperty("json_schema", out JsonElement js) && js.ValueKind == JsonValueKind.Object
                && js.TryGetProperty("schema", out JsonElement schema) && schema.ValueKind == JsonValueKind.Object:
                w.WriteString("responseMimeType"u8, "application/json"u8);
                w.WritePropertyName("responseJsonSchema"u8);
                schema.WriteTo(w);
                return;
            default:
                throw AiError.Invalid("'response_format' must be text, json_object, or json_schema with a schema.", "response_format");
        }
    }

    private static void WriteToolConfig(Utf8JsonWriter w, ChatRequest request)
    {
        if (!request.TryGet("tool_choice", out JsonElement choice))
        {
            return;
        }

        string mode;
        string? name = null;
        if (choice.ValueKind == JsonValueKind.String)
        {
            mode = choice.GetString() switch
            {
                "auto" => "AUTO",
                "none" => "NONE",
                "required" => "ANY",
                _ => throw AiError.Invalid("'tool_choice' must be auto, none, required or a function.", "tool_choice"),
            };
        }
        else if (choice.ValueKind == JsonValueKind.Object && choice.TryGetProperty("function", out JsonElement f) && StringOf(f, "name") is { Length: > 0 } n)
        {
            mode = "ANY";
            name = n;
        }
        else
        {
            throw AiError.Invalid("'tool_choice' must be auto, none, required or a function.", "tool_choice");
        }

        w.WriteStartObject("toolConfig"u8);
        w.WriteStartObject("functionCallingConfig"u8);
        w.WriteString("mode"u8, mode);
        if (name is not null)
        {
            w.WriteStartArray("allowedFunctionNames"u8);
            w.WriteStringValue(name);
            w.WriteEndArray();
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }
}

using System.Buffers;
using System.Text.Json;

namespace Appliance.Ai;

/// <summary>
/// A chat completion request as the client sent it (OpenAI's API), checked for what every provider needs: a
/// <c>model</c> string and a non-empty <c>messages</c> array of objects with a known role. The adapters read the rest
/// from <see cref="Root"/> and refuse what their provider cannot do, naming the parameter.
/// </summary>
public sealed class ChatRequest
{
    private ChatRequest(JsonElement root, string model, bool stream, bool includeUsage)
    {
        Root = root;
        Model = model;
        Stream = stream;
        IncludeUsage = includeUsage;
    }

    public JsonElement Root { get; }

    public string Model { get; }

    public bool Stream { get; }

    /// <summary>stream_options.include_usage: the stream ends with a usage chunk.</summary>
    public bool IncludeUsage { get; }

    public JsonElement Messages => Root.GetProperty("messages");

    /// <summary>Reads the request, or throws <see cref="AiError"/> (400) naming what is wrong.</summary>
    public static ChatRequest Parse(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw AiError.Invalid("The request body must be a JSON object.", null);
        }

        if (!root.TryGetProperty("model", out JsonElement model) || model.ValueKind != JsonValueKind.String || model.GetString() is not { Length: > 0 } name)
        {
            throw AiError.Invalid("'model' is required: the name of a model this gateway serves.", "model");
        }

        if (!root.TryGetProperty("messages", out JsonElement messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
        {
            throw AiError.Invalid("'messages' must be a non-empty array.", "messages");
        }

        int i = 0;
        foreach (JsonElement message in messages.EnumerateArray())
        {
            if (message.ValueKind != JsonValueKind.Object || !message.TryGetProperty("role", out JsonElement role) || role.ValueKind != JsonValueKind.String)
            {
                throw AiError.Invalid($"messages[{i}] must be an object with a 'role'.", $"messages[{i}].role");
            }

            if (role.GetString() is not ("system" or "developer" or "user" or "assistant" or "tool"))
            {
                throw AiError.Invalid($"messages[{i}].role '{role.GetString()}' is not one of system, developer, user, assistant, tool.", $"messages[{i}].role");
            }

            i++;
        }

        bool stream = root.TryGetProperty("stream", out JsonElement s) && s.ValueKind == JsonValueKind.True;
        bool includeUsage = stream && root.TryGetProperty("stream_options", out JsonElement options) && options.ValueKind == JsonValueKind.Object
            && options.TryGetProperty("include_usage", out JsonElement usage) && usage.ValueKind == JsonValueKind.True;
        if (root.TryGetProperty("n", out JsonElement n) && n.ValueKind != JsonValueKind.Null
            && (n.ValueKind != JsonValueKind.Number || !n.TryGetInt32(out int count) || count < 1))
        {
            throw AiError.Invalid("'n' must be a whole number of at least 1.", "n");
        }

        return new ChatRequest(root, name, stream, includeUsage);
    }

    /// <summary>The member, unless absent or null.</summary>
    public bool TryGet(string name, out JsonElement value) =>
        Root.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

    /// <summary>The answer's token limit: max_completion_tokens, else max_tokens, else the model's default.</summary>
    public int MaxTokens(AiModel model)
    {
        foreach (string name in (ReadOnlySpan<string>)["max_completion_tokens", "max_tokens"])
        {
            if (TryGet(name, out JsonElement value))
            {
                return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int n) && n > 0
                    ? n
                    : throw AiError.Invalid($"'{name}' must be a positive whole number.", name);
            }
        }

        return model.MaxTokens;
    }

    /// <summary>
    /// reasoning_effort as a budget of thinking tokens for providers that count thinking in tokens: none and minimal
    /// are 0 (no thinking), low 1,024, medium 4,096, high 16,384; null when the request does not say.
    /// </summary>
    public int? ReasoningBudget()
    {
        if (!TryGet("reasoning_effort", out JsonElement effort))
        {
            return null;
        }

        return (effort.ValueKind == JsonValueKind.String ? effort.GetString() : null) switch
        {
            "none" or "minimal" => 0,
            "low" => 1024,
            "medium" => 4096,
            "high" => 16384,
            _ => throw AiError.Invalid("'reasoning_effort' must be none, minimal, low, medium or high.", "reasoning_effort"),
        };
    }

    /// <summary>The text of a message's content: a string, or the text parts of an array joined; null when absent.</summary>
    public static string? TextOf(JsonElement content, string param)
    {
        switch (content.ValueKind)
        {
            case JsonValueKind.Null or JsonValueKind.Undefined:
                return null;
            case JsonValueKind.String:
                return content.GetString();
            case JsonValueKind.Array:
                var text = new System.Text.StringBuilder();
                foreach (JsonElement part in content.EnumerateArray())
                {
                    if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out JsonElement type) || type.ValueKind != JsonValueKind.String || !type.ValueEquals("text")
                        || !part.TryGetProperty("text", out JsonElement t) || t.ValueKind != JsonValueKind.String)
                    {
                        throw AiError.Invalid($"{param} may hold only text parts here.", param);
                    }

                    text.Append(t.GetString());
                }

                return text.ToString();
            default:
                throw AiError.Invalid($"{param} must be a string or an array of content parts.", param);
        }
    }
}

/// <summary>
/// An error answered in OpenAI's format (<c>{"error": {"message", "type", "param", "code"}}</c>), which OpenAI's
/// SDKs raise as their API errors with the status.
/// </summary>
public sealed class AiError(int status, string type, string message, string? param = null, string? code = null) : Exception(message)
{
    public int Status => status;

    public string Type => type;

    public string? Param => param;

    public string? Code => code;

    /// <summary>
    /// The provider failed, not the request: unreachable, too slow, overloaded or limited (408, 429, 5xx), refusing
    /// the gateway's key. Another provider may well answer, so the model's fallbacks are tried.
    /// </summary>
    public bool ProviderFailed { get; init; }

    public static AiError Invalid(string message, string? param) => new(400, "invalid_request_error", message, param);

    public static AiError Unsupported(AiProviderKind kind, string param) =>
        new(400, "invalid_request_error", $"'{param}' is not supported by this model's provider ({kind.ToString().ToLowerInvariant()}).", param, "unsupported_parameter");

    public byte[] ToJson() => Json(Type, Message, Param, Code);

    public static byte[] Json(string type, string message, string? param, string? code)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartObject("error"u8);
            w.WriteString("message"u8, message);
            w.WriteString("type"u8, type);
            WriteNullable(w, "param"u8, param);
            WriteNullable(w, "code"u8, code);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteNullable(Utf8JsonWriter w, ReadOnlySpan<byte> name, string? value)
    {
        if (value is null)
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, value);
        }
    }
}

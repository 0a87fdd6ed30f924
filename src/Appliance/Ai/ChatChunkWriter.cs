using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Appliance.Ai;

/// <summary>
/// Writes OpenAI's streamed chat completion (<c>chat.completion.chunk</c> objects as server-sent events, ending
/// in <c>data: [DONE]</c>), the one stream format every client of the gateway reads, whatever provider answered.
/// Each call writes one whole event to the output. The id, model and creation time are set once per stream by
/// <see cref="Start"/>; the writer and its buffers are reused across streams, so a stream in steady state
/// allocates nothing.
/// </summary>
public sealed class ChatChunkWriter
{
    private static readonly JsonWriterOptions Options = new()
    {
        // Upstream text is passed on as UTF-8, not as \u escapes; JSON itself stays valid.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    private readonly Utf8JsonWriter _json = new(new ArrayBufferWriter<byte>(1), Options);
    private byte[] _id = new byte[64];
    private int _idLength;
    private byte[] _model = new byte[64];
    private int _modelLength;
    private long _created;

    /// <summary>Sets what every chunk of the next stream repeats: its id, model and creation time (Unix seconds).</summary>
    public void Start(ReadOnlySpan<byte> id, ReadOnlySpan<byte> model, long created)
    {
        Copy(id, ref _id, out _idLength);
        Copy(model, ref _model, out _modelLength);
        _created = created;
    }

    /// <summary>Replaces the model name, as a provider reports the exact model that answers.</summary>
    public void SetModel(ReadOnlySpan<byte> model) => Copy(model, ref _model, out _modelLength);

    /// <summary>Replaces the id, as a provider names its answer.</summary>
    public void SetId(ReadOnlySpan<byte> id) => Copy(id, ref _id, out _idLength);

    /// <summary>The first chunk: the assistant's role and empty content, as OpenAI opens every stream.</summary>
    public void WriteRole(IBufferWriter<byte> output)
    {
        Utf8JsonWriter w = Begin(output);
        w.WriteString("role"u8, "assistant"u8);
        w.WriteString("content"u8, ""u8);
        End(output, w, finishReason: default);
    }

    /// <summary>A piece of the answer's text (UTF-8, unescaped).</summary>
    public void WriteContent(IBufferWriter<byte> output, ReadOnlySpan<byte> text) => WriteDelta(output, "content"u8, text);

    /// <summary>A piece of the model's reasoning, as <c>reasoning_content</c> (the name DeepSeek's API and LiteLLM use).</summary>
    public void WriteReasoning(IBufferWriter<byte> output, ReadOnlySpan<byte> text) => WriteDelta(output, "reasoning_content"u8, text);

    /// <summary>A tool call's first chunk: its index among the answer's calls, id and function name.</summary>
    public void WriteToolCallStart(IBufferWriter<byte> output, int index, ReadOnlySpan<byte> id, ReadOnlySpan<byte> name, ReadOnlySpan<byte> arguments = default)
    {
        Utf8JsonWriter w = Begin(output);
        w.WriteStartArray("tool_calls"u8);
        w.WriteStartObject();
        w.WriteNumber("index"u8, index);
        w.WriteString("id"u8, id);
        w.WriteString("type"u8, "function"u8);
        w.WriteStartObject("function"u8);
        w.WriteString("name"u8, name);
        w.WriteString("arguments"u8, arguments);
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndArray();
        End(output, w, finishReason: default);
    }

    /// <summary>More of a tool call's arguments (a piece of their JSON text).</summary>
    public void WriteToolCallArguments(IBufferWriter<byte> output, int index, ReadOnlySpan<byte> arguments)
    {
        Utf8JsonWriter w = Begin(output);
        w.WriteStartArray("tool_calls"u8);
        w.WriteStartObject();
        w.WriteNumber("index"u8, index);
        w.WriteStartObject("function"u8);
        w.WriteString("arguments"u8, arguments);
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndArray();
        End(output, w, finishReason: default);
    }

    /// <summary>The chunk with an empty delta that names why the answer ended.</summary>
    public void WriteFinish(IBufferWriter<byte> output, FinishReason reason)
    {
        Utf8JsonWriter w = Begin(output);
        End(output, w, reason);
    }

    /// <summary>The usage chunk OpenAI sends when the request asked for <c>stream_options.include_usage</c>: no choices, the token counts.</summary>
    public void WriteUsage(IBufferWriter<byte> output, in TokenUsage usage)
    {
        Utf8JsonWriter w = BeginChunk(output);
        w.WriteStartArray("choices"u8);
        w.WriteEndArray();
        w.WriteStartObject("usage"u8);
        w.WriteNumber("prompt_tokens"u8, usage.InputTokens);
        w.WriteNumber("completion_tokens"u8, usage.OutputTokens);
        w.WriteNumber("total_tokens"u8, usage.InputTokens + usage.OutputTokens);
        if (usage.CachedInputTokens > 0)
        {
            w.WriteStartObject("prompt_tokens_details"u8);
            w.WriteNumber("cached_tokens"u8, usage.CachedInputTokens);
            w.WriteEndObject();
        }

        if (usage.ReasoningTokens > 0)
        {
            w.WriteStartObject("completion_tokens_details"u8);
            w.WriteNumber("reasoning_tokens"u8, usage.ReasoningTokens);
            w.WriteEndObject();
        }

        w.WriteEndObject();
        w.WriteEndObject();
        Flush(output, w);
    }

    /// <summary>
    /// An error in the stream, as OpenAI sends one: <c>data: {"error":{…}}</c>. OpenAI's SDKs raise it as an API error.
    /// Nothing follows it; the stream then ends without <c>[DONE]</c>.
    /// </summary>
    public void WriteError(IBufferWriter<byte> output, ReadOnlySpan<byte> type, ReadOnlySpan<byte> message)
    {
        Utf8JsonWriter w = Reset(output);
        w.WriteStartObject();
        w.WriteStartObject("error"u8);
        w.WriteString("message"u8, message);
        w.WriteString("type"u8, type);
        w.WriteNull("param"u8);
        w.WriteNull("code"u8);
        w.WriteEndObject();
        w.WriteEndObject();
        Flush(output, w);
    }

    /// <summary>The stream's last event.</summary>
    public static void WriteDone(IBufferWriter<byte> output) => output.Write("data: [DONE]\n\n"u8);

    private void WriteDelta(IBufferWriter<byte> output, ReadOnlySpan<byte> name, ReadOnlySpan<byte> text)
    {
        Utf8JsonWriter w = Begin(output);
        w.WriteString(name, text);
        End(output, w, finishReason: default);
    }

    private Utf8JsonWriter Reset(IBufferWriter<byte> output)
    {
        output.Write("data: "u8);
        _json.Reset(output);
        return _json;
    }

    private Utf8JsonWriter BeginChunk(IBufferWriter<byte> output)
    {
        Utf8JsonWriter w = Reset(output);
        w.WriteStartObject();
        w.WriteString("id"u8, _id.AsSpan(0, _idLength));
        w.WriteString("object"u8, "chat.completion.chunk"u8);
        w.WriteNumber("created"u8, _created);
        w.WriteString("model"u8, _model.AsSpan(0, _modelLength));
        return w;
    }

    private Utf8JsonWriter Begin(IBufferWriter<byte> output)
    {
        Utf8JsonWriter w = BeginChunk(output);
        w.WriteStartArray("choices"u8);
        w.WriteStartObject();
        w.WriteNumber("index"u8, 0);
        w.WriteStartObject("delta"u8);
        return w;
    }

    private static void End(IBufferWriter<byte> output, Utf8JsonWriter w, FinishReason finishReason)
    {
        w.WriteEndObject();
        if (finishReason == FinishReason.None)
        {
            w.WriteNull("finish_reason"u8);
        }
        else
        {
            w.WriteString("finish_reason"u8, finishReason.ToOpenAi());
        }

        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
        Flush(output, w);
    }

    private static void Flush(IBufferWriter<byte> output, Utf8JsonWriter w)
    {
        w.Flush();
        output.Write("\n\n"u8);
    }

    private static void Copy(ReadOnlySpan<byte> value, ref byte[] buffer, out int length)
    {
        if (value.Length > buffer.Length)
        {
            buffer = new byte[value.Length];
        }

        value.CopyTo(buffer);
        length = value.Length;
    }
}

using System.Buffers;
using System.Buffers.Text;
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

    /// <summary>What JSON string content must escape: controls, the quote and the backslash.</summary>
    private static readonly SearchValues<byte> Escapable = SearchValues.Create(
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, (byte)'"', (byte)'\\']);

    private readonly Utf8JsonWriter _json = new(new ArrayBufferWriter<byte>(1), Options);

    // A text chunk is written by copying: "data: ", this prefix (every chunk's fields up to the delta's opening
    // brace), the delta's member, and a fixed end. Pieces of text are the bulk of a stream; the JSON writer is
    // kept for the few other chunks.
    private readonly ArrayBufferWriter<byte> _prefix = new(256);
    private readonly ArrayBufferWriter<byte> _escaped = new(256);
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
        BuildPrefix();
    }

    /// <summary>Replaces the model name, as a provider reports the exact model that answers.</summary>
    public void SetModel(ReadOnlySpan<byte> model)
    {
        Copy(model, ref _model, out _modelLength);
        BuildPrefix();
    }

    /// <summary>Replaces the id, as a provider names its answer.</summary>
    public void SetId(ReadOnlySpan<byte> id)
    {
        Copy(id, ref _id, out _idLength);
        BuildPrefix();
    }

    /// <summary>The first chunk: the assistant's role and empty content, as OpenAI opens every stream.</summary>
    public void WriteRole(IBufferWriter<byte> output)
    {
        Utf8JsonWriter w = Begin(output);
        w.WriteString("role"u8, "assistant"u8);
        w.WriteString("content"u8, ""u8);
        End(output, w, finishReason: default);
    }

    /// <summary>A piece of the answer's text.</summary>
    public void WriteContent(IBufferWriter<byte> output, StreamText text) => WriteText(output, "\"content\":\""u8, text, "\""u8);

    /// <summary>A piece of the model's reasoning, as <c>reasoning_content</c> (the name DeepSeek's API and LiteLLM use).</summary>
    public void WriteReasoning(IBufferWriter<byte> output, StreamText text) => WriteText(output, "\"reasoning_content\":\""u8, text, "\""u8);

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
    public void WriteToolCallArguments(IBufferWriter<byte> output, int index, StreamText arguments)
    {
        Span<byte> head = stackalloc byte[64];
        ReadOnlySpan<byte> open = "\"tool_calls\":[{\"index\":"u8;
        ReadOnlySpan<byte> field = ",\"function\":{\"arguments\":\""u8;
        open.CopyTo(head);
        Utf8Formatter.TryFormat(index, head[open.Length..], out int digits);
        field.CopyTo(head[(open.Length + digits)..]);
        WriteText(output, head[..(open.Length + digits + field.Length)], arguments, "\"}}]"u8);
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
        WriteUsageObject(w, usage);
        w.WriteEndObject();
        Flush(output, w);
    }

    /// <summary>OpenAI's <c>usage</c> member: prompt, completion and total tokens, with cached and reasoning ones when there are any.</summary>
    public static void WriteUsageObject(Utf8JsonWriter w, in TokenUsage usage)
    {
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

    /// <summary>A chunk whose delta is one string member: <paramref name="head"/>, the text as JSON string content, <paramref name="tail"/>.</summary>
    private void WriteText(IBufferWriter<byte> output, ReadOnlySpan<byte> head, StreamText text, ReadOnlySpan<byte> tail)
    {
        ReadOnlySpan<byte> body = text.IsJson || !text.Bytes.ContainsAny(Escapable) ? text.Bytes : Escape(text.Bytes);
        ReadOnlySpan<byte> data = "data: "u8;
        ReadOnlySpan<byte> prefix = _prefix.WrittenSpan;
        ReadOnlySpan<byte> end = "},\"finish_reason\":null}]}\n\n"u8;
        int length = data.Length + prefix.Length + head.Length + body.Length + tail.Length + end.Length;
        Span<byte> span = output.GetSpan(length);
        data.CopyTo(span);
        int n = data.Length;
        prefix.CopyTo(span[n..]);
        n += prefix.Length;
        head.CopyTo(span[n..]);
        n += head.Length;
        body.CopyTo(span[n..]);
        n += body.Length;
        tail.CopyTo(span[n..]);
        n += tail.Length;
        end.CopyTo(span[n..]);
        output.Advance(length);
    }

    /// <summary>Text as JSON string content (without the quotes), escaped by the JSON writer.</summary>
    private ReadOnlySpan<byte> Escape(ReadOnlySpan<byte> text)
    {
        _escaped.ResetWrittenCount();
        _json.Reset(_escaped);
        _json.WriteStringValue(text);
        _json.Flush();
        return _escaped.WrittenSpan[1..^1];
    }

    private void BuildPrefix()
    {
        _prefix.ResetWrittenCount();
        _json.Reset(_prefix);
        _json.WriteStartObject();
        _json.WriteString("id"u8, _id.AsSpan(0, _idLength));
        _json.WriteString("object"u8, "chat.completion.chunk"u8);
        _json.WriteNumber("created"u8, _created);
        _json.WriteString("model"u8, _model.AsSpan(0, _modelLength));
        _json.WriteStartArray("choices"u8);
        _json.WriteStartObject();
        _json.WriteNumber("index"u8, 0);
        _json.WriteStartObject("delta"u8);
        _json.Flush();
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

/// <summary>
/// A string from a provider on its way to a chunk: either JSON string content that may be copied as it stands
/// (<see cref="IsJson"/>: valid UTF-8, its escapes valid JSON) or plain UTF-8 text that the writer escapes if it must.
/// </summary>
public readonly ref struct StreamText(ReadOnlySpan<byte> bytes, bool isJson)
{
    public ReadOnlySpan<byte> Bytes { get; } = bytes;

    public bool IsJson { get; } = isJson;

    public static implicit operator StreamText(ReadOnlySpan<byte> text) => new(text, isJson: false);
}

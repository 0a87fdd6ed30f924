using System.Buffers;
using System.Text.Json;
using System.Text.Unicode;
using Appliance.Protocol.Sse;

namespace Appliance.Ai;

/// <summary>What a <see cref="StreamTranslator"/> call left the client's stream in.</summary>
public enum StreamStatus : byte
{
    /// <summary>The answer goes on; feed more of the provider's body.</summary>
    Continue,

    /// <summary>The answer ended well: its finish, usage (when asked) and <c>[DONE]</c> are written.</summary>
    Done,

    /// <summary>The answer failed: an error event is written and nothing may follow it.</summary>
    Failed,
}

/// <summary>
/// Turns one provider's streamed answer (server-sent events in its own format) into OpenAI's chunk stream
/// (<see cref="ChatChunkWriter"/>). The provider's body is fed as it arrives to <see cref="Translate"/>, and its end
/// to <see cref="Complete"/>; whatever either writes is whole events, ready to send to the client. An instance
/// serves one stream at a time and is reused: <see cref="Start"/> readies it, and a stream in steady state
/// allocates nothing.
/// <para>
/// Bad input from the provider — an event that is not JSON, not UTF-8, larger than the limit, or a body that ends
/// before the answer did — becomes one error event (<see cref="StreamStatus.Failed"/>): the client learns the
/// answer is incomplete instead of reading a truncated one as whole. Every input is read and checked before any of
/// the event's output is written, so a bad event never leaves half a chunk behind.
/// </para>
/// </summary>
public abstract class StreamTranslator
{
    private readonly SseParser _parser;
    private byte[] _scratch = [];
    private int _scratchUsed;
    private StreamStatus _result;

    protected StreamTranslator(int maxEventBytes)
    {
        _parser = new SseParser(maxEventBytes);
    }

    /// <summary>The provider's own name for its format, for logs and errors.</summary>
    public abstract string Provider { get; }

    /// <summary>The tokens the answer cost so far, as the provider reported them.</summary>
    public TokenUsage Usage;

    /// <summary>Why the answer ended; <see cref="FinishReason.None"/> until it did.</summary>
    public FinishReason FinishReason { get; protected set; }

    /// <summary>Whether the client asked for the usage chunk (<c>stream_options.include_usage</c>).</summary>
    protected bool IncludeUsage { get; private set; }

    protected ChatChunkWriter Chunks { get; } = new();

    /// <summary>Readies the translator for a new answer.</summary>
    /// <param name="id">The chunks' id until the provider names its answer.</param>
    /// <param name="model">The model the client asked for, until the provider names the one that answers.</param>
    /// <param name="created">Unix seconds the answer started.</param>
    /// <param name="includeUsage">Whether to end with OpenAI's usage chunk.</param>
    public void Start(ReadOnlySpan<byte> id, ReadOnlySpan<byte> model, long created, bool includeUsage)
    {
        _parser.Reset();
        _result = StreamStatus.Continue;
        Usage = default;
        FinishReason = FinishReason.None;
        IncludeUsage = includeUsage;
        Chunks.Start(id, model, created);
        OnStart();
    }

    /// <summary>Translates every whole event in <paramref name="input"/> and advances past it.</summary>
    public StreamStatus Translate(ref SequenceReader<byte> input, IBufferWriter<byte> output)
    {
        if (_result != StreamStatus.Continue)
        {
            // After the end, the provider's further bytes are not part of the answer.
            input.AdvanceToEnd();
            return _result;
        }

        while (true)
        {
            switch (_parser.Read(ref input))
            {
                case SseStatus.NeedMoreData:
                    return StreamStatus.Continue;
                case SseStatus.TooLarge:
                    input.AdvanceToEnd();
                    return Fail(output, "upstream_error"u8, "The provider sent an event larger than the gateway accepts."u8);
            }

            StreamStatus status;
            _scratchUsed = 0;
            try
            {
                status = OnEvent(_parser.EventType, _parser.Data, output);
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or InvalidDataException)
            {
                input.AdvanceToEnd();
                return Fail(output, "upstream_error"u8, "The provider sent an event the gateway cannot read."u8);
            }

            if (status != StreamStatus.Continue)
            {
                _result = status;
                input.AdvanceToEnd();
                return status;
            }
        }
    }

    /// <summary>The provider's body ended: finishes the answer if the provider said it was whole, or fails it.</summary>
    public StreamStatus Complete(IBufferWriter<byte> output)
    {
        if (_result == StreamStatus.Continue)
        {
            _result = OnEnd(output);
        }

        return _result;
    }

    /// <summary>Ends an unfinished answer with an error event, as when the provider's body breaks or times out.</summary>
    public StreamStatus Abort(IBufferWriter<byte> output, ReadOnlySpan<byte> message) =>
        _result == StreamStatus.Continue ? Fail(output, "api_error"u8, message) : _result;

    protected virtual void OnStart()
    {
    }

    /// <summary>One event of the provider's stream: its SSE type and data.</summary>
    protected abstract StreamStatus OnEvent(ReadOnlySpan<byte> type, ReadOnlySpan<byte> data, IBufferWriter<byte> output);

    /// <summary>The provider's body ended before <see cref="OnEvent"/> returned anything but Continue.</summary>
    protected abstract StreamStatus OnEnd(IBufferWriter<byte> output);

    /// <summary>Writes the answer's last chunks: its finish, the usage when asked, and <c>[DONE]</c>.</summary>
    protected StreamStatus Finish(IBufferWriter<byte> output, FinishReason reason)
    {
        FinishReason = reason;
        Chunks.WriteFinish(output, reason);
        if (IncludeUsage)
        {
            Chunks.WriteUsage(output, Usage);
        }

        ChatChunkWriter.WriteDone(output);
        return StreamStatus.Done;
    }

    /// <summary>Writes an error event; the stream ends with it.</summary>
    protected StreamStatus Fail(IBufferWriter<byte> output, ReadOnlySpan<byte> type, ReadOnlySpan<byte> message)
    {
        _result = StreamStatus.Failed;
        Chunks.WriteError(output, type, message);
        return StreamStatus.Failed;
    }

    /// <summary>The string token the reader is on, kept as a place in the event's data.</summary>
    protected static JsonText TextAt(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw new InvalidDataException("expected a string");
        }

        return new JsonText((int)reader.TokenStartIndex + 1, reader.ValueSpan.Length, reader.ValueIsEscaped);
    }

    /// <summary>Reads the next token, which must be a string.</summary>
    protected static JsonText ReadText(ref Utf8JsonReader reader)
    {
        reader.Read();
        return TextAt(ref reader);
    }

    /// <summary>Reads the next token as a whole number (a token count, an index); null becomes 0.</summary>
    protected static long ReadCount(ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType == JsonTokenType.Null)
        {
            return 0;
        }

        long n = reader.GetInt64();
        return n >= 0 ? n : throw new InvalidDataException("negative count");
    }

    /// <summary>Reads the next value, whatever it is, and returns where its JSON text lies in the data.</summary>
    protected static JsonText ReadRaw(ref Utf8JsonReader reader)
    {
        reader.Read();
        int start = (int)reader.TokenStartIndex;
        reader.Skip();
        return new JsonText(start, (int)reader.BytesConsumed - start, Escaped: false);
    }

    /// <summary>The JSON text of a value <see cref="ReadRaw"/> found in <paramref name="data"/>, checked to be UTF-8.</summary>
    protected static ReadOnlySpan<byte> Raw(ReadOnlySpan<byte> data, JsonText value)
    {
        ReadOnlySpan<byte> raw = data.Slice(value.Start, value.Length);
        return Utf8.IsValid(raw) ? raw : throw new InvalidDataException("not UTF-8");
    }

    /// <summary>
    /// A string the reader saw in <paramref name="data"/>, to pass on: its JSON text as it stands when that is valid
    /// UTF-8 and has no <c>\u</c> escape (the reader checked every other escape; a <c>\u</c> one may be half a
    /// surrogate pair), else its unescaped text, checked.
    /// </summary>
    protected StreamText PassOn(ReadOnlySpan<byte> data, JsonText text)
    {
        ReadOnlySpan<byte> raw = data.Slice(text.Start, text.Length);
        if (text.Escaped && raw.IndexOf("\\u"u8) >= 0)
        {
            return Text(data, text);
        }

        return Utf8.IsValid(raw) ? new StreamText(raw, isJson: true) : throw new InvalidDataException("not UTF-8");
    }

    /// <summary>The UTF-8 text of a string the reader saw in <paramref name="data"/>, unescaped and checked.</summary>
    protected ReadOnlySpan<byte> Text(ReadOnlySpan<byte> data, JsonText text)
    {
        ReadOnlySpan<byte> raw = data.Slice(text.Start, text.Length);
        if (text.Escaped)
        {
            if (_scratch.Length - _scratchUsed < raw.Length)
            {
                Array.Resize(ref _scratch, Math.Max(_scratchUsed + raw.Length, Math.Max(_scratch.Length * 2, 1024)));
            }

            Span<byte> into = _scratch.AsSpan(_scratchUsed);
            var reader = new Utf8JsonReader(data.Slice(text.Start - 1, text.Length + 2));
            reader.Read();
            int n = reader.CopyString(into);
            _scratchUsed += n;
            raw = into[..n];
        }

        return Utf8.IsValid(raw) ? raw : throw new InvalidDataException("not UTF-8");
    }

    protected static void EnterObject(ref Utf8JsonReader r)
    {
        r.Read();
        EnterValueObject(ref r);
    }

    protected static void EnterValueObject(ref Utf8JsonReader r)
    {
        if (r.TokenType != JsonTokenType.StartObject)
        {
            throw new InvalidDataException("expected an object");
        }
    }

    /// <summary>Moves to the object's next property name; false at its end.</summary>
    protected static bool NextProperty(ref Utf8JsonReader r) => r.Read() && r.TokenType == JsonTokenType.PropertyName;

    protected static void SkipValue(ref Utf8JsonReader r)
    {
        r.Read();
        r.Skip();
    }

    /// <summary>
    /// Reads the next value, an object, keeping where its string members <paramref name="first"/>,
    /// <paramref name="second"/> and <paramref name="third"/> (when given) lie; every other member is skipped.
    /// </summary>
    protected static void ReadMembers(
        ref Utf8JsonReader r, ReadOnlySpan<byte> first, out JsonText a, ReadOnlySpan<byte> second, out JsonText b, ReadOnlySpan<byte> third, out JsonText c)
    {
        a = b = c = default;
        r.Read();
        EnterValueObject(ref r);
        while (NextProperty(ref r))
        {
            if (r.ValueTextEquals(first))
            {
                a = ReadText(ref r);
            }
            else if (!second.IsEmpty && r.ValueTextEquals(second))
            {
                b = ReadText(ref r);
            }
            else if (!third.IsEmpty && r.ValueTextEquals(third))
            {
                c = ReadText(ref r);
            }
            else
            {
                SkipValue(ref r);
            }
        }
    }

    /// <summary>The "type" member of the event's top-level object, or nothing.</summary>
    protected ReadOnlySpan<byte> TypeOf(ReadOnlySpan<byte> data)
    {
        var r = new Utf8JsonReader(data);
        EnterObject(ref r);
        while (NextProperty(ref r))
        {
            if (r.ValueTextEquals("type"u8))
            {
                return Text(data, ReadText(ref r));
            }

            SkipValue(ref r);
        }

        return default;
    }
}

/// <summary>Where a string (or a raw value) lies in an event's data: its bytes between the quotes, and whether they hold escapes.</summary>
public readonly record struct JsonText(int Start, int Length, bool Escaped)
{
    /// <summary>False for the default value: the field did not come.</summary>
    public bool IsPresent => Start > 0;
}

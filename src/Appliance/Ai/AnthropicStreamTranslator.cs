using System.Buffers;
using System.Text.Json;

namespace Appliance.Ai;

/// <summary>
/// Anthropic's streamed Messages answer (<c>message_start</c>, <c>content_block_start</c> / <c>_delta</c> /
/// <c>_stop</c>, <c>message_delta</c>, <c>message_stop</c>, <c>ping</c>, <c>error</c>; docs.anthropic.com, "Streaming
/// Messages") as OpenAI chunks:
/// <list type="bullet">
/// <item><c>message_start</c> opens the answer (role chunk) and gives its id, model and input tokens (cache reads and
/// writes included, as OpenAI counts prompt tokens);</item>
/// <item><c>text_delta</c> becomes <c>content</c>, <c>thinking_delta</c> <c>reasoning_content</c>;</item>
/// <item>a <c>tool_use</c> block becomes a tool call numbered among the answer's tool calls, and its
/// <c>input_json_delta</c> pieces its <c>arguments</c>;</item>
/// <item><c>message_delta</c> gives the stop reason and the output tokens (a running total);</item>
/// <item><c>message_stop</c> ends the answer; <c>error</c> fails it with the provider's error type and message.</item>
/// </list>
/// Blocks with no OpenAI counterpart (server tools and their results, signatures, citations) are left out, as are
/// event types this version does not know, as Anthropic's versioning policy asks of clients.
/// </summary>
public sealed class AnthropicStreamTranslator(int maxEventBytes = 1 << 20) : StreamTranslator(maxEventBytes)
{
    /// <summary>More content blocks than this in one answer is not a real answer.</summary>
    private const int MaxBlocks = 4096;

    private BlockKind[] _blocks = new BlockKind[16];
    private int[] _toolIndex = new int[16];
    private int _tools;
    private bool _started;
    private FinishReason _stopReason;
    private long _input, _cacheRead, _cacheWrite, _ignored;

    private enum BlockKind : byte
    {
        NotStarted,
        Ignored,
        Text,
        Thinking,
        Tool,
    }

    public override string Provider => "anthropic";

    protected override void OnStart()
    {
        Array.Clear(_blocks);
        _tools = 0;
        _input = _cacheRead = _cacheWrite = 0;
        _started = false;
        _stopReason = FinishReason.None;
    }

    protected override StreamStatus OnEvent(ReadOnlySpan<byte> type, ReadOnlySpan<byte> data, IBufferWriter<byte> output)
    {
        if (type.SequenceEqual("message"u8))
        {
            // An event without an event line: its data names its type too.
            type = TypeOf(data);
        }

        if (type.SequenceEqual("content_block_delta"u8))
        {
            return OnBlockDelta(data, output);
        }

        if (type.SequenceEqual("content_block_start"u8))
        {
            return OnBlockStart(data, output);
        }

        if (type.SequenceEqual("message_start"u8))
        {
            return OnMessageStart(data, output);
        }

        if (type.SequenceEqual("message_delta"u8))
        {
            return OnMessageDelta(data);
        }

        if (type.SequenceEqual("message_stop"u8))
        {
            return _started ? Finish(output, _stopReason == FinishReason.None ? FinishReason.Stop : _stopReason) : Fail(output, "upstream_error"u8, "The provider ended an answer it never started."u8);
        }

        if (type.SequenceEqual("error"u8))
        {
            return OnError(data, output);
        }

        // ping, content_block_stop, and whatever Anthropic adds later.
        return StreamStatus.Continue;
    }

    protected override StreamStatus OnEnd(IBufferWriter<byte> output) =>
        Fail(output, "upstream_error"u8, "The provider's stream ended before its answer did."u8);

    private StreamStatus OnMessageStart(ReadOnlySpan<byte> data, IBufferWriter<byte> output)
    {
        JsonText id = default, model = default;
        var r = new Utf8JsonReader(data);
        EnterObject(ref r);
        while (NextProperty(ref r))
        {
            if (!r.ValueTextEquals("message"u8))
            {
                SkipValue(ref r);
                continue;
            }

            r.Read();
            EnterValueObject(ref r);
            while (NextProperty(ref r))
            {
                if (r.ValueTextEquals("id"u8))
                {
                    id = ReadText(ref r);
                }
                else if (r.ValueTextEquals("model"u8))
                {
                    model = ReadText(ref r);
                }
                else if (r.ValueTextEquals("usage"u8))
                {
                    ReadUsage(ref r);
                }
                else
                {
                    SkipValue(ref r);
                }
            }
        }

        ReadOnlySpan<byte> idText = id.IsPresent ? Text(data, id) : default;
        ReadOnlySpan<byte> modelText = model.IsPresent ? Text(data, model) : default;
        if (_started)
        {
            return Fail(output, "upstream_error"u8, "The provider started its answer twice."u8);
        }

        _started = true;
        if (!idText.IsEmpty)
        {
            Chunks.SetId(idText);
        }

        if (!modelText.IsEmpty)
        {
            Chunks.SetModel(modelText);
        }

        Chunks.WriteRole(output);
        return StreamStatus.Continue;
    }

    private StreamStatus OnBlockStart(ReadOnlySpan<byte> data, IBufferWriter<byte> output)
    {
        long index = -1;
        JsonText kind = default, id = default, name = default;
        var r = new Utf8JsonReader(data);
        EnterObject(ref r);
        while (NextProperty(ref r))
        {
            if (r.ValueTextEquals("index"u8))
            {
                index = ReadCount(ref r);
            }
            else if (r.ValueTextEquals("content_block"u8))
            {
                ReadMembers(ref r, "type"u8, out kind, "id"u8, out id, "name"u8, out name);
            }
            else
            {
                SkipValue(ref r);
            }
        }

        if (!_started || index < 0 || index >= MaxBlocks || !kind.IsPresent)
        {
            return Fail(output, "upstream_error"u8, "The provider started a content block out of order."u8);
        }

        ReadOnlySpan<byte> kindText = Text(data, kind);
        BlockKind block = kindText.SequenceEqual("text"u8) ? BlockKind.Text
            : kindText.SequenceEqual("thinking"u8) ? BlockKind.Thinking
            : kindText.SequenceEqual("tool_use"u8) ? BlockKind.Tool
            : BlockKind.Ignored;
        int i = (int)index;
        if (i >= _blocks.Length)
        {
            int size = Math.Min(MaxBlocks, Math.Max(_blocks.Length * 2, i + 1));
            Array.Resize(ref _blocks, size);
            Array.Resize(ref _toolIndex, size);
        }

        _blocks[i] = block;
        if (block == BlockKind.Tool)
        {
            ReadOnlySpan<byte> idText = id.IsPresent ? Text(data, id) : default;
            ReadOnlySpan<byte> nameText = name.IsPresent ? Text(data, name) : default;
            _toolIndex[i] = _tools++;
            Chunks.WriteToolCallStart(output, _toolIndex[i], idText, nameText);
        }

        return StreamStatus.Continue;
    }

    private StreamStatus OnBlockDelta(ReadOnlySpan<byte> data, IBufferWriter<byte> output)
    {
        long index = -1;
        JsonText kind = default, text = default;
        var r = new Utf8JsonReader(data);
        EnterObject(ref r);
        while (NextProperty(ref r))
        {
            if (r.ValueTextEquals("index"u8))
            {
                index = ReadCount(ref r);
            }
            else if (r.ValueTextEquals("delta"u8))
            {
                r.Read();
                EnterValueObject(ref r);
                while (NextProperty(ref r))
                {
                    if (r.ValueTextEquals("type"u8))
                    {
                        kind = ReadText(ref r);
                    }
                    else if (r.ValueTextEquals("text"u8) || r.ValueTextEquals("partial_json"u8) || r.ValueTextEquals("thinking"u8))
                    {
                        text = ReadText(ref r);
                    }
                    else
                    {
                        SkipValue(ref r);
                    }
                }
            }
            else
            {
                SkipValue(ref r);
            }
        }

        if (index < 0 || index >= _blocks.Length || _blocks[(int)index] == BlockKind.NotStarted)
        {
            return Fail(output, "upstream_error"u8, "The provider sent a delta for a content block it never started."u8);
        }

        BlockKind block = _blocks[(int)index];
        if (block == BlockKind.Ignored || !text.IsPresent)
        {
            return StreamStatus.Continue;
        }

        ReadOnlySpan<byte> kindText = kind.IsPresent ? Text(data, kind) : default;
        StreamText piece = PassOn(data, text);
        switch (block)
        {
            case BlockKind.Text when kindText.SequenceEqual("text_delta"u8):
                Chunks.WriteContent(output, piece);
                break;
            case BlockKind.Thinking when kindText.SequenceEqual("thinking_delta"u8):
                Chunks.WriteReasoning(output, piece);
                break;
            case BlockKind.Tool when kindText.SequenceEqual("input_json_delta"u8) && !piece.Bytes.IsEmpty:
                Chunks.WriteToolCallArguments(output, _toolIndex[(int)index], piece);
                break;
        }

        return StreamStatus.Continue;
    }

    private StreamStatus OnMessageDelta(ReadOnlySpan<byte> data)
    {
        JsonText stop = default;
        var r = new Utf8JsonReader(data);
        EnterObject(ref r);
        while (NextProperty(ref r))
        {
            if (r.ValueTextEquals("delta"u8))
            {
                r.Read();
                EnterValueObject(ref r);
                while (NextProperty(ref r))
                {
                    if (r.ValueTextEquals("stop_reason"u8))
                    {
                        r.Read();
                        stop = r.TokenType == JsonTokenType.Null ? default : TextAt(ref r);
                    }
                    else
                    {
                        SkipValue(ref r);
                    }
                }
            }
            else if (r.ValueTextEquals("usage"u8))
            {
                ReadUsage(ref r);
            }
            else
            {
                SkipValue(ref r);
            }
        }

        if (stop.IsPresent)
        {
            ReadOnlySpan<byte> reason = Text(data, stop);
            _stopReason = reason.SequenceEqual("max_tokens"u8) || reason.SequenceEqual("model_context_window_exceeded"u8) ? FinishReason.Length
                : reason.SequenceEqual("tool_use"u8) ? FinishReason.ToolCalls
                : reason.SequenceEqual("refusal"u8) ? FinishReason.ContentFilter
                : FinishReason.Stop; // end_turn, stop_sequence, pause_turn
        }

        return StreamStatus.Continue;
    }

    private StreamStatus OnError(ReadOnlySpan<byte> data, IBufferWriter<byte> output)
    {
        JsonText kind = default, message = default;
        var r = new Utf8JsonReader(data);
        EnterObject(ref r);
        while (NextProperty(ref r))
        {
            if (r.ValueTextEquals("error"u8))
            {
                ReadMembers(ref r, "type"u8, out kind, "message"u8, out message, default, out _);
            }
            else
            {
                SkipValue(ref r);
            }
        }

        return Fail(
            output,
            kind.IsPresent ? Text(data, kind) : "upstream_error"u8,
            message.IsPresent ? Text(data, message) : "The provider failed its answer."u8);
    }

    /// <summary>
    /// Reads a usage object: input tokens with cache reads and writes, output tokens. Each is a running total; one
    /// that is absent or null keeps the value an earlier event gave.
    /// </summary>
    private void ReadUsage(ref Utf8JsonReader r)
    {
        r.Read();
        if (r.TokenType == JsonTokenType.Null)
        {
            return;
        }

        EnterValueObject(ref r);
        while (NextProperty(ref r))
        {
            ref long field = ref r.ValueTextEquals("input_tokens"u8) ? ref _input
                : ref r.ValueTextEquals("cache_read_input_tokens"u8) ? ref _cacheRead
                : ref r.ValueTextEquals("cache_creation_input_tokens"u8) ? ref _cacheWrite
                : ref r.ValueTextEquals("output_tokens"u8) ? ref Usage.OutputTokens
                : ref _ignored;
            r.Read();
            if (System.Runtime.CompilerServices.Unsafe.AreSame(ref field, ref _ignored))
            {
                r.Skip(); // server_tool_use, cache_creation, service_tier, …
            }
            else if (r.TokenType != JsonTokenType.Null)
            {
                long n = r.GetInt64();
                field = n >= 0 ? n : throw new InvalidDataException("negative count");
            }
        }

        Usage.InputTokens = _input + _cacheRead + _cacheWrite;
        Usage.CachedInputTokens = _cacheRead;
    }
}

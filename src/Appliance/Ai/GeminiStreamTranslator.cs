using System.Buffers;
using System.Text.Json;

namespace Appliance.Ai;

/// <summary>
/// Gemini's streamed answer (<c>streamGenerateContent?alt=sse</c>: one <c>GenerateContentResponse</c> per event, no
/// end marker; ai.google.dev, "Generating content") as OpenAI chunks:
/// <list type="bullet">
/// <item>the first event opens the answer (role chunk) with its <c>responseId</c> and <c>modelVersion</c>;</item>
/// <item>a text part becomes <c>content</c>, or <c>reasoning_content</c> when marked <c>thought</c>;</item>
/// <item>a <c>functionCall</c> part becomes a whole tool call: a fresh <c>call_…</c> id, its name, and its
/// <c>args</c> as the arguments' JSON text;</item>
/// <item><c>finishReason</c> and <c>usageMetadata</c> are kept; the answer ends when the body does, and only then
/// is it whole. A body that ends without a finish reason was cut, and fails.</item>
/// <item>a blocked prompt (<c>promptFeedback.blockReason</c>) ends the answer with <c>content_filter</c>; an
/// <c>error</c> object fails it with Gemini's status and message.</item>
/// </list>
/// Only the first candidate is translated: the gateway asks Gemini for one when it streams.
/// </summary>
public sealed class GeminiStreamTranslator(int maxEventBytes = 1 << 20) : StreamTranslator(maxEventBytes)
{
    private byte[] _callId = new byte[256];
    private bool _started;
    private int _tools;
    private FinishReason _finish;

    public override string Provider => "gemini";

    protected override void OnStart()
    {
        _started = false;
        _tools = 0;
        _finish = FinishReason.None;
    }

    protected override StreamStatus OnEvent(ReadOnlySpan<byte> type, ReadOnlySpan<byte> data, IBufferWriter<byte> output)
    {
        JsonText id = default, model = default, candidates = default, blockReason = default;
        JsonText errorStatus = default, errorMessage = default;
        bool error = false;
        var r = new Utf8JsonReader(data);
        EnterObject(ref r);
        while (NextProperty(ref r))
        {
            if (r.ValueTextEquals("candidates"u8))
            {
                candidates = ReadRaw(ref r);
            }
            else if (r.ValueTextEquals("usageMetadata"u8))
            {
                ReadUsage(ref r);
            }
            else if (r.ValueTextEquals("responseId"u8))
            {
                id = ReadText(ref r);
            }
            else if (r.ValueTextEquals("modelVersion"u8))
            {
                model = ReadText(ref r);
            }
            else if (r.ValueTextEquals("promptFeedback"u8))
            {
                ReadMembers(ref r, "blockReason"u8, out blockReason, default, out _, default, out _);
            }
            else if (r.ValueTextEquals("error"u8))
            {
                error = true;
                ReadMembers(ref r, "status"u8, out errorStatus, "message"u8, out errorMessage, default, out _);
            }
            else
            {
                SkipValue(ref r);
            }
        }

        if (error)
        {
            return Fail(
                output,
                errorStatus.IsPresent ? Text(data, errorStatus) : "upstream_error"u8,
                errorMessage.IsPresent ? Text(data, errorMessage) : "The provider failed its answer."u8);
        }

        ReadOnlySpan<byte> idText = id.IsPresent ? Text(data, id) : default;
        ReadOnlySpan<byte> modelText = model.IsPresent ? Text(data, model) : default;
        if (blockReason.IsPresent)
        {
            Text(data, blockReason);
        }

        if (candidates.IsPresent)
        {
            ReadCandidates(data, candidates, output, write: false); // every part checked before any is written
        }

        if (!_started)
        {
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
        }

        if (blockReason.IsPresent)
        {
            _finish = FinishReason.ContentFilter;
        }

        if (candidates.IsPresent)
        {
            ReadCandidates(data, candidates, output, write: true);
        }

        return StreamStatus.Continue;
    }

    protected override StreamStatus OnEnd(IBufferWriter<byte> output) =>
        _finish == FinishReason.None
            ? Fail(output, "upstream_error"u8, "The provider's stream ended before its answer did."u8)
            : Finish(output, _finish == FinishReason.Stop && _tools > 0 ? FinishReason.ToolCalls : _finish);

    /// <summary>Reads the candidates; with <paramref name="write"/> false only checks them, else writes their chunks.</summary>
    private void ReadCandidates(ReadOnlySpan<byte> data, JsonText candidates, IBufferWriter<byte> output, bool write)
    {
        ReadOnlySpan<byte> json = data.Slice(candidates.Start, candidates.Length);
        var r = new Utf8JsonReader(json);
        r.Read();
        if (r.TokenType != JsonTokenType.StartArray)
        {
            throw new InvalidDataException("candidates is not an array");
        }

        while (r.Read() && r.TokenType == JsonTokenType.StartObject)
        {
            long index = 0;
            JsonText content = default, finish = default;
            while (NextProperty(ref r))
            {
                if (r.ValueTextEquals("index"u8))
                {
                    index = ReadCount(ref r);
                }
                else if (r.ValueTextEquals("content"u8))
                {
                    content = ReadRaw(ref r);
                }
                else if (r.ValueTextEquals("finishReason"u8))
                {
                    finish = ReadText(ref r);
                }
                else
                {
                    SkipValue(ref r);
                }
            }

            if (index != 0)
            {
                continue;
            }

            if (content.IsPresent)
            {
                ReadParts(json.Slice(content.Start, content.Length), output, write);
            }

            if (finish.IsPresent)
            {
                ReadOnlySpan<byte> reason = Text(json, finish);
                if (!write)
                {
                    continue;
                }

                _finish = reason.SequenceEqual("STOP"u8) ? FinishReason.Stop
                    : reason.SequenceEqual("MAX_TOKENS"u8) ? FinishReason.Length
                    : reason.SequenceEqual("SAFETY"u8) || reason.SequenceEqual("RECITATION"u8) || reason.SequenceEqual("BLOCKLIST"u8)
                        || reason.SequenceEqual("PROHIBITED_CONTENT"u8) || reason.SequenceEqual("SPII"u8) || reason.SequenceEqual("IMAGE_SAFETY"u8)
                        ? FinishReason.ContentFilter
                    : FinishReason.Stop; // OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, …: the answer ended for a reason OpenAI has no word for
            }
        }
    }

    private void ReadParts(ReadOnlySpan<byte> json, IBufferWriter<byte> output, bool write)
    {
        var r = new Utf8JsonReader(json);
        EnterObject(ref r);
        while (NextProperty(ref r))
        {
            if (!r.ValueTextEquals("parts"u8))
            {
                SkipValue(ref r);
                continue;
            }

            r.Read();
            if (r.TokenType != JsonTokenType.StartArray)
            {
                throw new InvalidDataException("parts is not an array");
            }

            while (r.Read() && r.TokenType == JsonTokenType.StartObject)
            {
                JsonText text = default, name = default, args = default, signature = default;
                bool thought = false, call = false;
                while (NextProperty(ref r))
                {
                    if (r.ValueTextEquals("text"u8))
                    {
                        text = ReadText(ref r);
                    }
                    else if (r.ValueTextEquals("thoughtSignature"u8))
                    {
                        signature = ReadText(ref r);
                    }
                    else if (r.ValueTextEquals("thought"u8))
                    {
                        r.Read();
                        thought = r.TokenType == JsonTokenType.True;
                    }
                    else if (r.ValueTextEquals("functionCall"u8))
                    {
                        call = true;
                        r.Read();
                        EnterValueObject(ref r);
                        while (NextProperty(ref r))
                        {
                            if (r.ValueTextEquals("name"u8))
                            {
                                name = ReadText(ref r);
                            }
                            else if (r.ValueTextEquals("args"u8))
                            {
                                args = ReadRaw(ref r);
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

                if (call)
                {
                    WriteCall(json, name, args, signature, output, write);
                }
                else if (text.IsPresent)
                {
                    StreamText piece = PassOn(json, text);
                    if (!write)
                    {
                        continue;
                    }

                    if (thought)
                    {
                        Chunks.WriteReasoning(output, piece);
                    }
                    else if (!piece.Bytes.IsEmpty)
                    {
                        Chunks.WriteContent(output, piece);
                    }
                }
            }
        }
    }

    private void WriteCall(ReadOnlySpan<byte> json, JsonText name, JsonText args, JsonText signature, IBufferWriter<byte> output, bool write)
    {
        if (!name.IsPresent)
        {
            throw new InvalidDataException("functionCall without a name");
        }

        ReadOnlySpan<byte> nameText = Text(json, name);
        ReadOnlySpan<byte> arguments = args.IsPresent ? Raw(json, args) : "{}"u8;
        ReadOnlySpan<byte> signatureText = signature.IsPresent ? Text(json, signature) : default;
        if (!write)
        {
            return;
        }

        // Gemini's calls carry no id that OpenAI clients could send back; each gets a fresh one, with the call's
        // thought signature after a '.' (Gemini 3 refuses a replayed call without it; GeminiAdapter puts it back).
        bool signed = !signatureText.IsEmpty && !signatureText.ContainsAnyExcept(CallIds.SignatureBytes);
        int length = CallIds.Length + (signed ? 1 + signatureText.Length : 0);
        if (_callId.Length < length)
        {
            _callId = new byte[Math.Max(length, _callId.Length * 2)];
        }

        Span<byte> id = _callId.AsSpan(0, length);
        CallIds.Write(id);
        if (signed)
        {
            id[CallIds.Length] = (byte)'.';
            signatureText.CopyTo(id[(CallIds.Length + 1)..]);
        }

        Chunks.WriteToolCallStart(output, _tools++, id, nameText, arguments);
    }

    /// <summary>Reads usageMetadata: prompt tokens (cached ones included), answer tokens with thoughts.</summary>
    private void ReadUsage(ref Utf8JsonReader r)
    {
        r.Read();
        EnterValueObject(ref r);
        long candidates = 0, thoughts = 0;
        while (NextProperty(ref r))
        {
            if (r.ValueTextEquals("promptTokenCount"u8))
            {
                Usage.InputTokens = ReadCount(ref r);
            }
            else if (r.ValueTextEquals("cachedContentTokenCount"u8))
            {
                Usage.CachedInputTokens = ReadCount(ref r);
            }
            else if (r.ValueTextEquals("candidatesTokenCount"u8))
            {
                candidates = ReadCount(ref r);
            }
            else if (r.ValueTextEquals("thoughtsTokenCount"u8))
            {
                thoughts = ReadCount(ref r);
            }
            else
            {
                SkipValue(ref r);
            }
        }

        Usage.OutputTokens = candidates + thoughts;
        Usage.ReasoningTokens = thoughts;
    }
}

using System.Buffers;
using System.Text.Json;
using Appliance.Protocol.Sse;

namespace Appliance.Ai;

/// <summary>
/// Watches an OpenAI-format stream that passes through unchanged, for the usage chunk the provider sends when the
/// client asked for <c>stream_options.include_usage</c>: the tokens then reach the access log and the metrics as they
/// do for translated streams. It reads whole events only and leaves an unfinished one unread; the caller sends every
/// byte on at once regardless. An event larger than the limit ends the watching, never the stream.
/// </summary>
public sealed class OpenAiStreamUsage(int maxEventBytes)
{
    private readonly SseParser _parser = new(maxEventBytes);

    /// <summary>False once an event was too large to read: the rest of the stream is not watched.</summary>
    public bool Watching { get; private set; } = true;

    public TokenUsage Usage;

    /// <summary>Reads every whole event in <paramref name="input"/> and advances past it (to its end when no longer watching).</summary>
    public void Watch(ref SequenceReader<byte> input)
    {
        if (!Watching)
        {
            input.AdvanceToEnd();
            return;
        }

        SseStatus status;
        while ((status = _parser.Read(ref input)) == SseStatus.Event)
        {
            ReadOnlySpan<byte> data = _parser.Data;
            if (data.IndexOf("\"usage\""u8) >= 0)
            {
                try
                {
                    ReadUsage(data);
                }
                catch (JsonException)
                {
                    // Not JSON: the client gets it as the provider sent it; there is just nothing to count.
                }
            }
        }

        if (status == SseStatus.TooLarge)
        {
            Watching = false;
            input.AdvanceToEnd();
        }
    }

    private void ReadUsage(ReadOnlySpan<byte> data)
    {
        var r = new Utf8JsonReader(data);
        if (!r.Read() || r.TokenType != JsonTokenType.StartObject)
        {
            return;
        }

        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            bool usage = r.ValueTextEquals("usage"u8);
            r.Read();
            if (!usage || r.TokenType != JsonTokenType.StartObject)
            {
                r.Skip();
                continue;
            }

            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                bool prompt = r.ValueTextEquals("prompt_tokens"u8), completion = r.ValueTextEquals("completion_tokens"u8);
                r.Read();
                if ((prompt || completion) && r.TokenType == JsonTokenType.Number && r.TryGetInt64(out long n) && n >= 0)
                {
                    if (prompt)
                    {
                        Usage.InputTokens = n;
                    }
                    else
                    {
                        Usage.OutputTokens = n;
                    }
                }
                else
                {
                    r.Skip();
                }
            }
        }
    }
}

using System.Buffers.Text;

namespace Appliance.Ai;

/// <summary>
/// What a model's tokens cost (ai.models[].cost): prices per million tokens in the operator's currency, as providers
/// publish them (Kong's input_cost/output_cost). Cached input (prompt-cache reads: OpenAI's cached_tokens,
/// Anthropic's cache_read_input_tokens, Gemini's cachedContentTokenCount) has its own price, by default the input's.
/// An answer's cost is kept in nano-units (10^-9) of the currency, an integer: exact for any price with up to three
/// decimals per million tokens, rounded to the nearest nano-unit beyond.
/// </summary>
public sealed record ModelCost(decimal Input, decimal CachedInput, decimal Output)
{
    /// <summary>The highest price per million tokens a config may give (so a clamped answer's cost fits a long).</summary>
    public const decimal MaxPrice = 100_000m;

    /// <summary>The cost of one answer, in nano-units: input beyond the cached part at the input price, cached input, output.</summary>
    public long Nanos(in TokenUsage usage)
    {
        long input = TokenUsage.Clamp(usage.InputTokens);
        long cached = Math.Min(TokenUsage.Clamp(usage.CachedInputTokens), input);
        long output = TokenUsage.Clamp(usage.OutputTokens);
        // Per million tokens to nano-units per token: × 10^9 / 10^6.
        decimal nanos = ((input - cached) * Input + cached * CachedInput + output * Output) * 1000m;
        return (long)decimal.Round(nanos, MidpointRounding.AwayFromZero);
    }

    /// <summary>The most bytes <see cref="Format"/> writes.</summary>
    public const int MaxFormattedLength = 30;

    /// <summary>
    /// Nano-units as a plain decimal number of currency units ("0.000123", "12.5", "0"): what the access log and the
    /// metrics show. Returns the bytes written.
    /// </summary>
    public static int Format(long nanos, Span<byte> destination)
    {
        int n = 0;
        if (nanos < 0)
        {
            destination[n++] = (byte)'-';
            nanos = -nanos;
        }

        Utf8Formatter.TryFormat(nanos / 1_000_000_000, destination[n..], out int whole);
        n += whole;
        long fraction = nanos % 1_000_000_000;
        if (fraction == 0)
        {
            return n;
        }

        destination[n++] = (byte)'.';
        int digits = 9;
        while (fraction % 10 == 0)
        {
            fraction /= 10;
            digits--;
        }

        Utf8Formatter.TryFormat(fraction, destination.Slice(n, digits), out _, new System.Buffers.StandardFormat('D', (byte)digits));
        return n + digits;
    }

    public static string Format(long nanos)
    {
        Span<byte> text = stackalloc byte[MaxFormattedLength];
        return System.Text.Encoding.ASCII.GetString(text[..Format(nanos, text)]);
    }
}

namespace Appliance.Ai;

/// <summary>
/// The tokens one answer cost, as its provider counted them. <see cref="InputTokens"/> includes
/// <see cref="CachedInputTokens"/> and <see cref="OutputTokens"/> includes <see cref="ReasoningTokens"/>, as in
/// OpenAI's usage object, whatever each provider's own accounting.
/// </summary>
public struct TokenUsage
{
    public long InputTokens;
    public long OutputTokens;
    public long CachedInputTokens;
    public long ReasoningTokens;

    /// <summary>The most tokens one answer is believed to cost; a provider's larger count is taken as this.</summary>
    public const long MaxPerAnswer = 1L << 32;

    /// <summary>A count as the gateway records it: between 0 and <see cref="MaxPerAnswer"/>, whatever a provider said.</summary>
    public static long Clamp(long count) => Math.Clamp(count, 0, MaxPerAnswer);
}

/// <summary>Why an answer ended, in OpenAI's terms (<c>finish_reason</c>).</summary>
public enum FinishReason : byte
{
    /// <summary>Not ended (yet).</summary>
    None,

    /// <summary>"stop": the model finished, or hit a stop sequence.</summary>
    Stop,

    /// <summary>"length": the token limit cut the answer.</summary>
    Length,

    /// <summary>"tool_calls": the model asks for tool calls.</summary>
    ToolCalls,

    /// <summary>"content_filter": the provider withheld the answer or part of it.</summary>
    ContentFilter,
}

public static class FinishReasons
{
    public static ReadOnlySpan<byte> ToOpenAi(this FinishReason reason) => reason switch
    {
        FinishReason.Length => "length"u8,
        FinishReason.ToolCalls => "tool_calls"u8,
        FinishReason.ContentFilter => "content_filter"u8,
        _ => "stop"u8,
    };
}

namespace Appliance.Protocol.Http1;

/// <summary>
/// Size limits of the HTTP/1.1 request parser. Each one trips a distinct <see cref="RequestRejection"/>, so the
/// server can log and count it (nginx/HAProxy style: one setting, one default, one reason).
/// </summary>
public sealed record Http1ParserLimits
{
    public static Http1ParserLimits Default { get; } = new();

    /// <summary>Longest request-line, excluding its CRLF (414 beyond). Leading empty lines count against it.</summary>
    public int MaxRequestLineBytes { get; init; } = 8192;

    /// <summary>Largest field section: every field line with its CRLF plus the final CRLF (431 beyond).</summary>
    public int MaxHeaderBytes { get; init; } = 32768;

    /// <summary>Most field lines in a header section, and in a trailer section (431 beyond).</summary>
    public int MaxHeaderCount { get; init; } = 100;

    /// <summary>Longest chunk-ext of one chunk-size line (RFC 9112 §7.1.1 leaves the limit to us).</summary>
    public int MaxChunkExtensionBytes { get; init; } = 4096;

    /// <summary>Largest trailer section, counted like <see cref="MaxHeaderBytes"/>.</summary>
    public int MaxTrailerBytes { get; init; } = 8192;

    /// <summary>Throws when a limit is not positive; config validation should catch this first.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxRequestLineBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxHeaderBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxHeaderCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxChunkExtensionBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxTrailerBytes);
    }
}

using Appliance.Protocol.Http1;

namespace Appliance.Server;

/// <summary>Per-listener limits and timeouts of the HTTP engine; each is a config setting with this default.</summary>
public sealed record ServerLimits
{
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>From the first byte of a request until its header block is complete (slowloris).</summary>
    public TimeSpan RequestHeadersTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>How long an idle keep-alive connection is kept.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(75);
    /// <summary>Minimum request body rate in bytes/second after the grace period; 0 turns the check off.</summary>
    public int MinRequestBodyRate { get; init; } = 240;
    public TimeSpan MinRequestBodyRateGracePeriod { get; init; } = TimeSpan.FromSeconds(5);
    public long MaxRequestBodySize { get; init; } = 30_000_000;
    public int MaxRequestsPerConnection { get; init; } = int.MaxValue;
    /// <summary>How much of an unread request body is read and discarded to keep a connection alive.</summary>
    public long MaxDrainBytes { get; init; } = 1024 * 1024;
    public Http1ParserLimits Http1 { get; init; } = new();
    public Http2Limits Http2 { get; init; } = new();
}

namespace Appliance.Proxy;

/// <summary>Cluster timeouts; each a config setting with this default.</summary>
public sealed record UpstreamTimeouts
{
    public TimeSpan Connect { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>From the request sent until the response head arrives (nginx proxy_read_timeout is 60s).</summary>
    public TimeSpan ResponseHeaders { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>How long an idle keep-alive upstream connection is kept.</summary>
    public TimeSpan Idle { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>An upgraded (WebSocket) tunnel with no byte in either direction for this long is closed (nginx: proxy_read_timeout).</summary>
    public TimeSpan TunnelIdle { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>
    /// The whole exchange, retries included, from the request's arrival to the end of the response (Envoy's route
    /// timeout); zero (the default) for none, so long downloads and event streams are not cut.
    /// </summary>
    public TimeSpan Total { get; init; }
}

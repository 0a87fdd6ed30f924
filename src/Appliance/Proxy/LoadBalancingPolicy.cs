namespace Appliance.Proxy;

/// <summary>How a cluster picks a destination for a request.</summary>
public enum LoadBalancingPolicy
{
    /// <summary>Weighted round robin (smooth: a weight-3 destination gets 3 of every 4 picks, interleaved).</summary>
    RoundRobin,
    /// <summary>The destination with the fewest requests in flight.</summary>
    LeastRequests,
    /// <summary>Two random destinations, the one with fewer requests in flight (power of two choices).</summary>
    PowerOfTwoChoices,
    /// <summary>A hash ring on a header, cookie or the client address: the same key goes to the same destination.</summary>
    ConsistentHash,
}

/// <summary>How many requests of a cluster may be retrying at once: <see cref="Percent"/> of those in flight, at least <see cref="MinRetryConcurrency"/>.</summary>
public sealed record RetryBudget
{
    public int Percent { get; init; } = 20;
    public int MinRetryConcurrency { get; init; } = 3;
}

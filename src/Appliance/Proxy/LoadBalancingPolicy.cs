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

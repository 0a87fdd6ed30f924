using Appliance.Telemetry;
using Appliance.Server;
using Microsoft.Extensions.Logging;

namespace Appliance.Proxy;

/// <summary>
/// A cluster compiled from config: its destinations (with their pools and health) and how to choose between
/// them. Unavailable destinations (probe says unhealthy, or passively ejected) are skipped; when none is left
/// the proxy answers 503.
/// </summary>
public sealed class ClusterModel : IDisposable
{
    private const int VirtualNodesPerWeight = 100;

    private readonly DestinationModel[] _destinations;
    private readonly int[] _weightedRing;
    private readonly (ulong Hash, int Destination)[] _hashRing;
    private HealthProber? _prober;
    private int _next = -1;

    public ClusterModel(string id, IReadOnlyList<DestinationModel> destinations, LoadBalancingPolicy policy, UpstreamTimeouts timeouts,
        HashKey? hashKey = null, PassiveHealthOptions? passive = null, ActiveHealthOptions? active = null)
    {
        Id = id;
        _destinations = [.. destinations];
        Policy = policy;
        Timeouts = timeouts;
        HashKey = hashKey ?? HashKey.ClientIp;
        Passive = passive ?? new PassiveHealthOptions();
        Active = active;

        // Weighted round robin as an interleaved ring of destination indexes (weights are small integers).
        var ring = new List<int>();
        int maxWeight = destinations.Count == 0 ? 0 : destinations.Max(d => d.Weight);
        for (int round = 0; round < maxWeight; round++)
        {
            for (int i = 0; i < destinations.Count; i++)
            {
                if (destinations[i].Weight > round)
                {
                    ring.Add(i);
                }
            }
        }

        _weightedRing = [.. ring];

        // Consistent hashing: virtual nodes per destination (by weight) on a 64-bit ring, sorted for binary search.
        var points = new List<(ulong, int)>();
        if (policy == LoadBalancingPolicy.ConsistentHash)
        {
            for (int i = 0; i < destinations.Count; i++)
            {
                for (int v = 0; v < destinations[i].Weight * VirtualNodesPerWeight; v++)
                {
                    points.Add((HashKey.Fnv(System.Text.Encoding.UTF8.GetBytes($"{destinations[i].Address}#{v}")), i));
                }
            }

            points.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        }

        _hashRing = [.. points];
    }

    public string Id { get; }

    public LoadBalancingPolicy Policy { get; }

    public UpstreamTimeouts Timeouts { get; }

    public HashKey HashKey { get; }

    public PassiveHealthOptions Passive { get; }

    public ActiveHealthOptions? Active { get; }

    public UpstreamTlsOptions? Tls { get; init; }

    /// <summary>What the destinations speak: HTTP/1.1 keep-alive or multiplexed HTTP/2.</summary>
    public UpstreamProtocol Protocol { get; init; }

    /// <summary>Set when the snapshot goes live; upstream problems are logged through it.</summary>
    public ILogger? Logger { get; private set; }

    public IReadOnlyList<DestinationModel> Destinations => _destinations;

    /// <summary>Starts active health checks (when configured); called when the snapshot goes live.</summary>
    public void Start(ILogger logger)
    {
        if (Logger is null && Tls is { InsecureSkipVerify: true })
        {
            logger.LogWarning("cluster {Cluster}: upstream TLS certificates are NOT VERIFIED (tls.insecureSkipVerify) — for tests only", Id);
        }

        Logger = logger;
        if (Active is not null && _prober is null)
        {
            _prober = new HealthProber(this, Active, logger);
        }
    }

    public DestinationModel? Pick(RequestContext context)
    {
        DestinationModel[] d = _destinations;
        if (d.Length == 0)
        {
            return null;
        }

        if (d.Length == 1)
        {
            return d[0].Health.IsAvailable ? d[0] : null;
        }

        switch (Policy)
        {
            case LoadBalancingPolicy.LeastRequests:
            {
                DestinationModel? best = null;
                foreach (DestinationModel candidate in d)
                {
                    if (candidate.Health.IsAvailable && (best is null || candidate.InFlight < best.InFlight))
                    {
                        best = candidate;
                    }
                }

                return best;
            }

            case LoadBalancingPolicy.PowerOfTwoChoices:
            {
                int a = Random.Shared.Next(d.Length);
                int b = Random.Shared.Next(d.Length - 1);
                if (b >= a)
                {
                    b++;
                }

                DestinationModel x = d[a], y = d[b];
                if (!x.Health.IsAvailable) return y.Health.IsAvailable ? y : FirstAvailable(a);
                if (!y.Health.IsAvailable) return x;
                return x.Cost <= y.Cost ? x : y;
            }

            case LoadBalancingPolicy.ConsistentHash:
            {
                ulong hash = HashKey.Hash(context);
                int lo = 0, hi = _hashRing.Length;
                while (lo < hi)
                {
                    int mid = (lo + hi) >>> 1;
                    if (_hashRing[mid].Hash < hash) lo = mid + 1; else hi = mid;
                }

                // Walk clockwise past unavailable destinations, so only their keys move.
                for (int i = 0; i < _hashRing.Length; i++)
                {
                    DestinationModel candidate = d[_hashRing[(lo + i) % _hashRing.Length].Destination];
                    if (candidate.Health.IsAvailable)
                    {
                        return candidate;
                    }
                }

                return null;
            }

            default:
            {
                // One position per request; past unavailable destinations the scan walks the ring from there, so
                // concurrent requests cannot push each other onto the same ejected destination every time.
                uint n = (uint)Interlocked.Increment(ref _next);
                for (uint attempt = 0; attempt < (uint)_weightedRing.Length; attempt++)
                {
                    DestinationModel candidate = d[_weightedRing[(n + attempt) % (uint)_weightedRing.Length]];
                    if (candidate.Health.IsAvailable)
                    {
                        return candidate;
                    }
                }

                return null;
            }
        }
    }

    /// <summary>
    /// Another available destination, none of those in <paramref name="tried"/> (bit per destination index), for a
    /// retry after a connection failure (nginx's proxy_next_upstream error). Null when none is left.
    /// </summary>
    public DestinationModel? PickNext(ref ulong tried, ref bool retrying)
    {
        if (!retrying)
        {
            if (!TryBeginRetry())
            {
                return null;
            }

            retrying = true;
        }

        return PickNext(ref tried);
    }

    /// <summary>Retry budget (Envoy's retry_budget): how many requests may be retrying at once, in percent of the requests in flight.</summary>
    public RetryBudget RetryBudget { get; init; } = new();

    private int _retrying;

    /// <summary>
    /// A request may start retrying while the requests retrying stay within the budget: a share of those in flight
    /// on the cluster, never below the minimum. An outage then cannot multiply the load on what is left.
    /// </summary>
    private bool TryBeginRetry()
    {
        int inFlight = 0;
        foreach (DestinationModel d in _destinations)
        {
            inFlight += d.InFlight;
        }

        int limit = Math.Max(RetryBudget.MinRetryConcurrency, (int)((long)inFlight * RetryBudget.Percent / 100));
        if (Interlocked.Increment(ref _retrying) > limit)
        {
            Interlocked.Decrement(ref _retrying);
            LimitCounters.Increment("upstream_retry_budget_exhausted");
            return false;
        }

        return true;
    }

    public void EndRetry() => Interlocked.Decrement(ref _retrying);

    private DestinationModel? PickNext(ref ulong tried)
    {
        int start = Random.Shared.Next(_destinations.Length);
        for (int i = 0; i < _destinations.Length && i < 64; i++)
        {
            int index = (start + i) % _destinations.Length;
            if ((tried & (1UL << (index & 63))) == 0 && _destinations[index].Health.IsAvailable)
            {
                tried |= 1UL << (index & 63);
                return _destinations[index];
            }
        }

        return null;
    }

    /// <summary>The bit of a destination in a "tried" mask.</summary>
    public ulong Bit(DestinationModel destination)
    {
        // By reference: Array.IndexOf's equality comparer costs more than the few destinations a cluster has.
        DestinationModel[] all = _destinations;
        for (int i = 0; i < all.Length; i++)
        {
            if (ReferenceEquals(all[i], destination))
            {
                return 1UL << (i & 63);
            }
        }

        return 1UL << 63;
    }

    private DestinationModel? FirstAvailable(int start)
    {
        for (int i = 0; i < _destinations.Length; i++)
        {
            DestinationModel candidate = _destinations[(start + i) % _destinations.Length];
            if (candidate.Health.IsAvailable)
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Passive health: whether one more destination may be ejected without passing the cap.</summary>
    internal bool MayEject()
    {
        int ejected = _destinations.Count(x => x.Health.IsEjected);
        return (ejected + 1) * 100 <= _destinations.Length * Passive.MaxEjectionPercent || ejected == 0 && _destinations.Length == 1;
    }

    public void Dispose()
    {
        _prober?.Dispose();
        foreach (DestinationModel destination in _destinations)
        {
            destination.Dispose();
        }
    }
}

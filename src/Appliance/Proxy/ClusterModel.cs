namespace Appliance.Proxy;

/// <summary>A cluster compiled from config: its destinations (with their pools) and how to choose between them.</summary>
public sealed class ClusterModel : IDisposable
{
    private readonly DestinationModel[] _destinations;
    private readonly int[] _weightedRing;
    private int _next = -1;

    public ClusterModel(string id, IReadOnlyList<DestinationModel> destinations, LoadBalancingPolicy policy, UpstreamTimeouts timeouts)
    {
        Id = id;
        _destinations = [.. destinations];
        Policy = policy;
        Timeouts = timeouts;
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
    }

    public string Id { get; }

    public LoadBalancingPolicy Policy { get; }

    public UpstreamTimeouts Timeouts { get; }

    public IReadOnlyList<DestinationModel> Destinations => _destinations;

    public DestinationModel? Pick()
    {
        DestinationModel[] d = _destinations;
        if (d.Length <= 1)
        {
            return d.Length == 0 ? null : d[0];
        }

        switch (Policy)
        {
            case LoadBalancingPolicy.LeastRequests:
                DestinationModel best = d[0];
                for (int i = 1; i < d.Length; i++)
                {
                    if (d[i].InFlight < best.InFlight)
                    {
                        best = d[i];
                    }
                }

                return best;
            case LoadBalancingPolicy.PowerOfTwoChoices:
                int a = Random.Shared.Next(d.Length);
                int b = Random.Shared.Next(d.Length - 1);
                if (b >= a)
                {
                    b++;
                }

                return d[a].InFlight <= d[b].InFlight ? d[a] : d[b];
            default:
                uint n = (uint)Interlocked.Increment(ref _next);
                return d[_weightedRing[n % (uint)_weightedRing.Length]];
        }
    }

    public void Dispose()
    {
        foreach (DestinationModel destination in _destinations)
        {
            destination.Dispose();
        }
    }
}

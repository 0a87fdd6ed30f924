namespace Appliance.Proxy;

/// <summary>A destination of a cluster and its runtime state (in-flight requests, connection pool).</summary>
public sealed class DestinationModel : IDisposable
{
    private int _inFlight;

    internal DestinationModel(string address, string host, int port, int weight, int maxConnections, UpstreamTimeouts timeouts,
        UpstreamTlsOptions? tls = null, UpstreamProtocol protocol = UpstreamProtocol.Http11, int maxPending = 0)
    {
        Address = address;
        Host = host;
        Port = port;
        Weight = weight;
        if (protocol == UpstreamProtocol.Http2)
        {
            Http2Pool = new Http2UpstreamPool(host, port, maxConnections, timeouts, tls);
        }
        else
        {
            Pool = new Http1UpstreamPool(host, port, maxConnections, timeouts, tls, maxPending);
        }
    }

    public string Address { get; }

    public string Host { get; }

    public int Port { get; }

    public int Weight { get; }

    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>The HTTP/1.1 pool (null on an HTTP/2 cluster).</summary>
    internal Http1UpstreamPool? Pool { get; }

    /// <summary>The HTTP/2 pool (null on an HTTP/1.1 cluster).</summary>
    internal Http2UpstreamPool? Http2Pool { get; }

    public int OpenConnections => Pool?.OpenConnections ?? Http2Pool?.OpenConnections ?? 0;

    public int PendingRequests => Pool?.PendingRequests ?? 0;

    public DestinationHealth Health { get; } = new();

    internal void Begin() => Interlocked.Increment(ref _inFlight);

    /// <summary>How fast a latency estimate fades while a destination gets no traffic (Linkerd's peak-EWMA default).</summary>
    internal static readonly TimeSpan LatencyDecay = TimeSpan.FromSeconds(10);

    private long _latencyMicros;
    private long _sampledAt; // Stopwatch timestamp of the last sample

    /// <summary>Exponentially weighted moving average of the time to the response head (α = 0.2); 0 before the first.</summary>
    public double LatencyEwmaMilliseconds => Volatile.Read(ref _latencyMicros) / 1000.0;

    /// <summary>A response head arrived this long after its request was sent.</summary>
    internal void RecordLatency(long elapsedTicks) => RecordLatency(elapsedTicks, Transport.LoopClock.Timestamp);

    internal void RecordLatency(long elapsedTicks, long now)
    {
        long sample = Math.Max(1, elapsedTicks * 1_000_000 / System.Diagnostics.Stopwatch.Frequency);
        long old = Volatile.Read(ref _latencyMicros);
        Volatile.Write(ref _latencyMicros, old == 0 ? sample : old + ((sample - old) / 5)); // a lost race loses one sample
        Volatile.Write(ref _sampledAt, now);
    }

    /// <summary>
    /// What power-of-two-choices compares: latency × (requests in flight + 1), the peak-EWMA cost of Finagle and
    /// Linkerd. A destination without a sample yet costs only its load, so it is tried soon. The latency fades with
    /// the time since its last sample (e^(−idle/10 s)): a destination that answered slowly once and then got no
    /// traffic is tried again, instead of losing every comparison for good (with two destinations nothing else
    /// would ever sample it again).
    /// </summary>
    internal long Cost => CostAt(Transport.LoopClock.Timestamp);

    internal long CostAt(long now)
    {
        long latency = Volatile.Read(ref _latencyMicros);
        double idle = (now - Volatile.Read(ref _sampledAt)) / (double)System.Diagnostics.Stopwatch.Frequency;
        if (latency > 0 && idle > 0)
        {
            latency = (long)(latency * Math.Exp(-idle / LatencyDecay.TotalSeconds));
        }

        return Math.Max(1, latency) * (InFlight + 1);
    }

    internal void End() => Interlocked.Decrement(ref _inFlight);

    public void Dispose()
    {
        Pool?.Dispose();
        Http2Pool?.Dispose();
    }
}

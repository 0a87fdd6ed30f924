namespace Appliance.Proxy;

/// <summary>A destination of a cluster and its runtime state (in-flight requests, connection pool).</summary>
public sealed class DestinationModel : IDisposable
{
    private int _inFlight;

    internal DestinationModel(string address, string host, int port, int weight, int maxConnections, UpstreamTimeouts timeouts, UpstreamTlsOptions? tls = null)
    {
        Address = address;
        Host = host;
        Port = port;
        Weight = weight;
        Pool = new Http1UpstreamPool(host, port, maxConnections, timeouts, tls);
    }

    public string Address { get; }

    public string Host { get; }

    public int Port { get; }

    public int Weight { get; }

    public int InFlight => Volatile.Read(ref _inFlight);

    internal Http1UpstreamPool Pool { get; }

    public DestinationHealth Health { get; } = new();

    internal void Begin() => Interlocked.Increment(ref _inFlight);

    internal void End() => Interlocked.Decrement(ref _inFlight);

    public void Dispose() => Pool.Dispose();
}

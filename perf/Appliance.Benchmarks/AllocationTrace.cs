using System.Diagnostics.Tracing;

namespace Appliance.Benchmarks;

/// <summary>
/// Which types a benchmark operation allocates: runs it many times under the runtime's GCAllocationTick events
/// (one sample per ~100 KB allocated) and prints the sampled types by count. `--alloc-trace Proxy` etc.
/// </summary>
internal sealed class AllocationTrace : EventListener
{
    private readonly Dictionary<string, int> _types = [];

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword: AllocationTick
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName == "GCAllocationTick_V4" && e.Payload is { } payload && e.PayloadNames!.IndexOf("TypeName") is int i and >= 0)
        {
            string type = payload[i]?.ToString() ?? "?";
            lock (_types)
            {
                _types[type] = _types.GetValueOrDefault(type) + 1;
            }
        }
    }

    public static void Run(string which, int operations)
    {
        Func<long> op;
        switch (which)
        {
            case "Proxy":
                var proxy = new ProxyBenchmarks();
                proxy.Setup();
                op = proxy.ProxiedRequest;
                break;
            case "AccessLog":
                var accessLog = new AccessLogBenchmarks { Format = Telemetry.AccessLogFormat.Json };
                accessLog.Setup();
                op = accessLog.FormatAndEnqueue;
                break;
            default:
                throw new ArgumentException("unknown benchmark " + which);
        }

        for (int i = 0; i < 10_000; i++)
        {
            op();
        }

        using var trace = new AllocationTrace();
        long before = GC.GetTotalAllocatedBytes(precise: true);
        for (int i = 0; i < operations; i++)
        {
            op();
        }

        long bytes = GC.GetTotalAllocatedBytes(precise: true) - before;
        Console.WriteLine($"{which}: {(double)bytes / operations:F1} bytes per operation over {operations}");
        lock (trace._types)
        {
            foreach ((string type, int count) in trace._types.OrderByDescending(kv => kv.Value))
            {
                Console.WriteLine($"  {count,6}  {type}");
            }
        }
    }
}

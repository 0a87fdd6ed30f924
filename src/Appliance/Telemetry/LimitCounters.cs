using System.Collections.Concurrent;

namespace Appliance.Telemetry;

/// <summary>
/// How often each limit tripped, by log reason (e.g. "h2_rapid_reset", "max_connections"). The admin API
/// exports these as a Prometheus counter; until then they are readable in tests and logs.
/// </summary>
public static class LimitCounters
{
    private static readonly ConcurrentDictionary<string, StrongBox> s_counters = new(StringComparer.Ordinal);

    public static void Increment(string reason) =>
        Interlocked.Increment(ref s_counters.GetOrAdd(reason, static _ => new StrongBox()).Value);

    public static long Get(string reason) => s_counters.TryGetValue(reason, out StrongBox? box) ? Interlocked.Read(ref box.Value) : 0;

    public static IEnumerable<KeyValuePair<string, long>> Snapshot() =>
        s_counters.Select(kv => new KeyValuePair<string, long>(kv.Key, Interlocked.Read(ref kv.Value.Value)));

    private sealed class StrongBox
    {
        public long Value;
    }
}

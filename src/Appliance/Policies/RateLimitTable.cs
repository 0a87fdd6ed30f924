using System.Collections.Concurrent;

namespace Appliance.Policies;

/// <summary>
/// Rate-limit state by key: one GCRA cell per key (the generic cell rate algorithm, a token bucket kept as a single
/// "theoretical arrival time"). A key may make <c>burst</c> requests at once, then one every <c>interval</c>:
/// a request at <c>now</c> conforms when <c>tat − now ≤ interval × (burst − 1)</c>, and moves <c>tat</c> to
/// <c>max(tat, now) + interval</c>. Cells are updated lock-free; a key already present costs one dictionary lookup
/// and one compare-exchange, and allocates nothing. At most <see cref="MaxKeys"/> keys are held: when full, cells
/// whose time has passed (a fresh key would behave the same) are swept, at most once a second (an O(keys) pass on
/// the request's thread); a new key that still finds the table full is let through uncounted and counted in
/// <see cref="Full"/>. A full table must not lock new clients out: a flood of new keys (random header values, many
/// addresses) would otherwise deny every newcomer. nginx's limit_req makes room the same way in effect, by evicting
/// its least recently used states (and answering 503 only when even that fails).
/// </summary>
public sealed class RateLimitTable
{
    private readonly ConcurrentDictionary<byte[], Cell> _cells = new(ByteKeyComparer.Instance);
    private readonly ConcurrentDictionary<byte[], Cell>.AlternateLookup<ReadOnlySpan<byte>> _lookup;
    private readonly TimeProvider _time;
    private readonly long _interval;  // timestamp units per request
    private readonly long _tolerance; // interval × (burst − 1)
    private readonly long _sweepEvery;
    private long _nextSweep;
    private int _count;
    private long _full;

    /// <param name="requests">Requests allowed per <paramref name="per"/>, sustained.</param>
    /// <param name="burst">Requests a key may make at once (at least 1).</param>
    /// <param name="maxKeys">Keys held at most.</param>
    public RateLimitTable(long requests, TimeSpan per, long burst, int maxKeys, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(requests, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(burst, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxKeys, 1);
        _time = time ?? TimeProvider.System;
        double unitsPerTick = _time.TimestampFrequency / (double)TimeSpan.TicksPerSecond;
        double interval = Math.Max(1, per.Ticks * unitsPerTick / requests);
        _interval = (long)Math.Min(interval, long.MaxValue / 4.0);
        _tolerance = (long)Math.Min((double)_interval * (burst - 1), long.MaxValue / 4.0);
        _sweepEvery = _time.TimestampFrequency;
        _lookup = _cells.GetAlternateLookup<ReadOnlySpan<byte>>();
        MaxKeys = maxKeys;
        _nextSweep = _time.GetTimestamp();
    }

    public int MaxKeys { get; }

    /// <summary>Keys held now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Requests of new keys let through uncounted because the table was full.</summary>
    public long Full => Interlocked.Read(ref _full);

    /// <summary>
    /// Takes one request for <paramref name="key"/>: true if it conforms (or the table is full and the key new);
    /// false with how long until it would.
    /// </summary>
    public bool TryAcquire(ReadOnlySpan<byte> key, out TimeSpan retryAfter)
    {
        long now = _time.GetTimestamp();
        if (!_lookup.TryGetValue(key, out Cell? cell))
        {
            cell = Add(key, now);
            if (cell is null)
            {
                Interlocked.Increment(ref _full);
                retryAfter = TimeSpan.Zero;
                return true;
            }
        }

        while (true)
        {
            long tat = Volatile.Read(ref cell.Tat);
            long start = Math.Max(tat, now);
            long ahead = start - now;
            if (ahead > _tolerance)
            {
                retryAfter = _time.GetElapsedTime(now, now + ahead - _tolerance);
                return false;
            }

            if (Interlocked.CompareExchange(ref cell.Tat, start + _interval, tat) == tat)
            {
                retryAfter = TimeSpan.Zero;
                return true;
            }
        }
    }

    private Cell? Add(ReadOnlySpan<byte> key, long now)
    {
        if (!Reserve(now))
        {
            return _lookup.TryGetValue(key, out Cell? raced) ? raced : null;
        }

        var cell = new Cell { Tat = now };
        if (_lookup.TryAdd(key, cell))
        {
            return cell;
        }

        Interlocked.Decrement(ref _count); // another thread added the key first
        return _lookup.TryGetValue(key, out Cell? existing) ? existing : cell;
    }

    /// <summary>Counts one more key if there is room, after a sweep if the table is full.</summary>
    private bool Reserve(long now)
    {
        for (int attempt = 0; attempt < 2; attempt++)
        {
            if (Interlocked.Increment(ref _count) <= MaxKeys)
            {
                return true;
            }

            Interlocked.Decrement(ref _count);
            if (attempt == 0 && !Sweep(now))
            {
                return false;
            }
        }

        return false;
    }

    /// <summary>
    /// Drops cells whose time has passed, at most once a second; true if any went. A request racing with the sweep
    /// on a dropped cell may be counted on the dropped copy: each request of that key in flight during the sweep can
    /// get one more than its limit.
    /// </summary>
    private bool Sweep(long now)
    {
        long due = Volatile.Read(ref _nextSweep);
        if (now < due || Interlocked.CompareExchange(ref _nextSweep, now + _sweepEvery, due) != due)
        {
            return false;
        }

        int removed = 0;
        foreach (KeyValuePair<byte[], Cell> entry in _cells)
        {
            if (Volatile.Read(ref entry.Value.Tat) <= now && _cells.TryRemove(entry))
            {
                removed++;
                Interlocked.Decrement(ref _count);
            }
        }

        return removed > 0;
    }

    private sealed class Cell
    {
        public long Tat;
    }
}

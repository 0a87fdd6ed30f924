using System.Collections.Concurrent;
using Appliance.State;

namespace Appliance.Telemetry;

/// <summary>The calendar period a quota counts over (UTC).</summary>
public enum QuotaPeriod
{
    Hour,
    Day,
    Month,
}

/// <summary>
/// Requests per consumer and UTC hour (<see cref="UsagePeriod.Hour"/>), counted in memory on the request path (a
/// lookup and an increment; a consumer's first request of an hour allocates its counter) and added to the state
/// database's usage table in one transaction every <see cref="FlushInterval"/>, before an admin read of a
/// consumer's usage, and when the gateway stops. A flush that fails (the disk full) puts its counts back for the
/// next one: nothing is lost while the process runs. For quotas it also keeps, per consumer and calendar period
/// asked about, the requests so far: read from the database once per period (after a flush) and counted on from
/// there, so a quota check is a lookup.
/// </summary>
public sealed class UsageMeter : IDisposable
{
    public static readonly TimeSpan FlushInterval = TimeSpan.FromSeconds(10);

    private readonly StateStore _store;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<(string Consumer, string Period), Counter> _counters = new();
    private readonly Lock _flush = new();
    private readonly ITimer? _timer;
    private readonly ConcurrentDictionary<(string Consumer, QuotaPeriod Period), Total> _totals = new();
    private volatile Hour _hour;
    private int _periodsInUse; // a bit per QuotaPeriod some quota has asked about: Count skips the others
    private long _loadRetryAt = long.MinValue; // UTC ticks: after a failed read, quota totals wait a second

    /// <param name="onFailure">
    /// Told when the database could not be written or read: the exception, and whether counts were lost (the last
    /// flush, at stop) rather than kept for the next try.
    /// </param>
    public UsageMeter(StateStore store, TimeProvider? time = null, Action<Exception, bool>? onFailure = null, bool timer = true)
    {
        _store = store;
        _time = time ?? TimeProvider.System;
        _hour = new Hour(_time.GetUtcNow());
        Failed = onFailure;
        store.Changed += OnChanged;
        if (timer)
        {
            _timer = _time.CreateTimer(static s => ((UsageMeter)s!).TryFlush(), this, FlushInterval, FlushInterval);
        }
    }

    private Action<Exception, bool>? Failed { get; }

    /// <summary>Requests counted and not yet in the database.</summary>
    public long Pending => _counters.Values.Sum(c => Interlocked.Read(ref c.Requests));

    /// <summary>One request of the consumer, now.</summary>
    public void Count(string consumerId)
    {
        Counter counter = CurrentCounter(consumerId);
        Interlocked.Increment(ref counter.Requests);
        int inUse = Volatile.Read(ref _periodsInUse);
        for (int p = 0; inUse != 0 && p <= (int)QuotaPeriod.Month; p++)
        {
            if ((inUse & (1 << p)) != 0 && _totals.TryGetValue((consumerId, (QuotaPeriod)p), out Total? total))
            {
                Interlocked.Increment(ref total.Requests);
            }
        }
    }

    /// <summary>The tokens one of the consumer's answers cost, now (added to the hour's counts, flushed with them).</summary>
    public void AddTokens(string consumerId, long inputTokens, long outputTokens)
    {
        Counter counter = CurrentCounter(consumerId);
        Interlocked.Add(ref counter.InputTokens, inputTokens);
        Interlocked.Add(ref counter.OutputTokens, outputTokens);
        int inUse = Volatile.Read(ref _periodsInUse);
        for (int p = 0; inUse != 0 && p <= (int)QuotaPeriod.Month; p++)
        {
            if ((inUse & (1 << p)) != 0 && _totals.TryGetValue((consumerId, (QuotaPeriod)p), out Total? total))
            {
                Interlocked.Add(ref total.Tokens, inputTokens + outputTokens);
            }
        }
    }

    private Counter CurrentCounter(string consumerId)
    {
        Hour hour = _hour;
        DateTimeOffset now = _time.GetUtcNow();
        if (now >= hour.End || now < hour.Start)
        {
            _hour = hour = new Hour(now);
        }

        return _counters.TryGetValue((consumerId, hour.Text), out Counter? found) ? found
            : _counters.GetOrAdd((consumerId, hour.Text), static _ => new Counter());
    }

    /// <summary>
    /// The consumer's requests so far in the current <paramref name="period"/> (all routes, this process's counts
    /// included), and how long until the period ends, by one reading of the clock. The first question per consumer
    /// and period reads the database once (one indexed sum, on the caller's thread); after that it is a lookup until
    /// the period ends. Where the database cannot be read, null: the caller decides (a quota lets the request
    /// through), and the database is not asked again for a second.
    /// </summary>
    public long? Used(string consumerId, QuotaPeriod period, out TimeSpan untilEnd) => Totals(consumerId, period, out untilEnd)?.Requests;

    /// <summary>As <see cref="Used"/>, with the tokens (input and output) of the consumer's answers too.</summary>
    public UsageSum? Totals(string consumerId, QuotaPeriod period, out TimeSpan untilEnd)
    {
        DateTimeOffset now = _time.GetUtcNow();
        if (_totals.TryGetValue((consumerId, period), out Total? total) && now >= total.Start && now < total.End)
        {
            untilEnd = total.End - now;
            return total.Sum;
        }

        (DateTimeOffset start, DateTimeOffset end) = Bounds(period, now);
        untilEnd = end - now;
        return Load(consumerId, period, start, end, now);
    }

    private UsageSum? Load(string consumerId, QuotaPeriod period, DateTimeOffset start, DateTimeOffset end, DateTimeOffset now)
    {
        if (now.UtcTicks < Volatile.Read(ref _loadRetryAt))
        {
            return null;
        }

        lock (_flush) // no flush moves counts between memory and the database while they are added up
        {
            if (_totals.TryGetValue((consumerId, period), out Total? raced) && raced.Start == start)
            {
                return raced.Sum;
            }

            // Registered first, so every request counted from here on lands in it; one counted between this and
            // the sum of the pending counters below is counted twice (an overcount, the safe side), none is lost.
            var total = new Total(start, end);
            Interlocked.Or(ref _periodsInUse, 1 << (int)period);
            _totals[(consumerId, period)] = total;
            string from = UsagePeriod.Hour(start);
            string to = UsagePeriod.Hour(end.AddHours(-1));
            long pending = 0, pendingTokens = 0;
            foreach (KeyValuePair<(string Consumer, string Period), Counter> entry in _counters)
            {
                if (entry.Key.Consumer == consumerId && string.CompareOrdinal(entry.Key.Period, from) >= 0 && string.CompareOrdinal(entry.Key.Period, to) <= 0)
                {
                    pending += Interlocked.Read(ref entry.Value.Requests); // not yet written (or put back by a failed write)
                    pendingTokens += Interlocked.Read(ref entry.Value.InputTokens) + Interlocked.Read(ref entry.Value.OutputTokens);
                }
            }

            UsageSum stored;
            try
            {
                stored = _store.SumHourly(consumerId, from, to);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _totals.TryRemove(new KeyValuePair<(string, QuotaPeriod), Total>((consumerId, period), total));
                Volatile.Write(ref _loadRetryAt, now.AddSeconds(1).UtcTicks);
                Failed?.Invoke(e, false);
                return null;
            }

            Interlocked.Add(ref total.Requests, stored.Requests + pending);
            Interlocked.Add(ref total.Tokens, stored.Tokens + pendingTokens);
            return total.Sum;
        }
    }

    /// <summary>
    /// After consumers change (one deleted, perhaps made again with the same id): pending counts are written now, so
    /// a deleted consumer's are dropped rather than handed to a namesake, and quota totals are read afresh.
    /// </summary>
    private void OnChanged(StateChange change)
    {
        if (change is StateChange.Consumers or StateChange.Tenants)
        {
            lock (_flush)
            {
                FlushLocked(final: false);
                _totals.Clear();
            }
        }
    }

    private static (DateTimeOffset Start, DateTimeOffset End) Bounds(QuotaPeriod period, DateTimeOffset now)
    {
        DateTime t = now.UtcDateTime;
        return period switch
        {
            QuotaPeriod.Hour => (new DateTimeOffset(t.Year, t.Month, t.Day, t.Hour, 0, 0, TimeSpan.Zero), new DateTimeOffset(t.Year, t.Month, t.Day, t.Hour, 0, 0, TimeSpan.Zero).AddHours(1)),
            QuotaPeriod.Day => (new DateTimeOffset(t.Year, t.Month, t.Day, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(t.Year, t.Month, t.Day, 0, 0, 0, TimeSpan.Zero).AddDays(1)),
            _ => (new DateTimeOffset(t.Year, t.Month, 1, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(t.Year, t.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(1)),
        };
    }

    /// <summary>Writes the pending counts in one transaction; false (counts kept for the next try) if that failed.</summary>
    public bool Flush()
    {
        lock (_flush)
        {
            return FlushLocked(final: false);
        }
    }

    private bool FlushLocked(bool final)
    {
        string expired = UsagePeriod.Hour(_time.GetUtcNow().AddHours(-2));
        var batch = new List<UsageIncrement>();
        var taken = new List<(Counter Counter, long Requests, long Input, long Output)>();
        foreach (KeyValuePair<(string Consumer, string Period), Counter> entry in _counters)
        {
            long requests = Interlocked.Exchange(ref entry.Value.Requests, 0);
            long input = Interlocked.Exchange(ref entry.Value.InputTokens, 0);
            long output = Interlocked.Exchange(ref entry.Value.OutputTokens, 0);
            if (requests > 0 || input > 0 || output > 0)
            {
                // The store takes at most 2^48 per increment; an hour's tokens past that (a provider's nonsense) are cut
                // rather than failing every consumer's flush from now on.
                const long max = 1L << 48;
                batch.Add(new UsageIncrement(entry.Key.Consumer, entry.Key.Period, Math.Min(requests, max), Math.Min(input, max), Math.Min(output, max)));
                taken.Add((entry.Value, requests, input, output));
            }
            else if (string.CompareOrdinal(entry.Key.Period, expired) < 0)
            {
                // An hour long past with nothing pending: no request can still be counting into it.
                _counters.TryRemove(entry);
            }
        }

        DateTimeOffset now = _time.GetUtcNow();
        foreach (KeyValuePair<(string Consumer, QuotaPeriod Period), Total> entry in _totals)
        {
            if (entry.Value.End < now)
            {
                _totals.TryRemove(entry); // a period over: the next question loads the new one
            }
        }

        try
        {
            _store.AddUsage(batch);
            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            foreach ((Counter counter, long requests, long input, long output) in taken)
            {
                Interlocked.Add(ref counter.Requests, requests);
                Interlocked.Add(ref counter.InputTokens, input);
                Interlocked.Add(ref counter.OutputTokens, output);
            }

            Failed?.Invoke(e, final);
            return false;
        }
    }

    /// <summary>Stops the timer and writes what is pending (a failure is reported as counts lost).</summary>
    public void Dispose()
    {
        _store.Changed -= OnChanged;
        _timer?.Dispose();
        lock (_flush)
        {
            FlushLocked(final: true);
        }
    }

    private void TryFlush()
    {
        lock (_flush)
        {
            FlushLocked(final: false);
        }
    }

    private sealed class Counter
    {
        public long Requests;
        public long InputTokens;
        public long OutputTokens;
    }

    /// <summary>A consumer's requests in one calendar period, for quotas.</summary>
    private sealed class Total(DateTimeOffset start, DateTimeOffset end)
    {
        public DateTimeOffset Start { get; } = start;

        public DateTimeOffset End { get; } = end;

        public long Requests;

        public long Tokens;

        public UsageSum Sum => new(Interlocked.Read(ref Requests), Interlocked.Read(ref Tokens));
    }

    /// <summary>The current hour's period text and bounds, made once an hour.</summary>
    private sealed class Hour(DateTimeOffset now)
    {
        public DateTimeOffset Start { get; } = new(now.UtcDateTime.Year, now.UtcDateTime.Month, now.UtcDateTime.Day, now.UtcDateTime.Hour, 0, 0, TimeSpan.Zero);

        public DateTimeOffset End => Start.AddHours(1);

        public string Text { get; } = UsagePeriod.Hour(now);
    }
}

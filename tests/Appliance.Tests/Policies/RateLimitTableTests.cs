using Appliance.Policies;

namespace Appliance.Tests.Policies;

/// <summary>The GCRA table on a clock that moves only when told to: bursts, the sustained rate, Retry-After, the key cap.</summary>
public sealed class RateLimitTableTests
{
    /// <summary>Timestamps in 100 ns ticks that advance by hand.</summary>
    private sealed class Clock : TimeProvider
    {
        public long Now { get; set; } = 1_000_000_000;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Now;

        public void Advance(TimeSpan by) => Now += by.Ticks;
    }

    private static bool Take(RateLimitTable table, string key, out TimeSpan retryAfter) =>
        table.TryAcquire(System.Text.Encoding.ASCII.GetBytes(key), out retryAfter);

    [Fact]
    public void A_burst_passes_at_once_then_one_request_per_interval()
    {
        var clock = new Clock();
        var table = new RateLimitTable(requests: 10, per: TimeSpan.FromSeconds(1), burst: 3, maxKeys: 100, clock);
        for (int i = 0; i < 3; i++)
        {
            Assert.True(Take(table, "a", out _), $"request {i} of the burst");
        }

        Assert.False(Take(table, "a", out TimeSpan wait));
        Assert.Equal(TimeSpan.FromMilliseconds(100), wait);
        clock.Advance(TimeSpan.FromMilliseconds(99));
        Assert.False(Take(table, "a", out wait));
        Assert.Equal(TimeSpan.FromMilliseconds(1), wait);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(Take(table, "a", out _));
        Assert.False(Take(table, "a", out _));
    }

    [Fact]
    public void Requests_at_the_sustained_rate_always_pass_and_refusals_do_not_count()
    {
        var clock = new Clock();
        var table = new RateLimitTable(requests: 5, per: TimeSpan.FromSeconds(1), burst: 1, maxKeys: 100, clock);
        for (int i = 0; i < 1000; i++)
        {
            Assert.True(Take(table, "k", out _), $"request {i}");
            Assert.False(Take(table, "k", out TimeSpan wait)); // a refused request does not push the next one back
            Assert.Equal(TimeSpan.FromMilliseconds(200), wait);
            clock.Advance(TimeSpan.FromMilliseconds(200));
        }
    }

    [Fact]
    public void Idle_time_refills_the_burst_but_no_further()
    {
        var clock = new Clock();
        var table = new RateLimitTable(requests: 60, per: TimeSpan.FromMinutes(1), burst: 60, maxKeys: 100, clock);
        for (int i = 0; i < 60; i++)
        {
            Assert.True(Take(table, "k", out _));
        }

        Assert.False(Take(table, "k", out _));
        clock.Advance(TimeSpan.FromHours(5));
        int passed = 0;
        while (Take(table, "k", out _))
        {
            passed++;
        }

        Assert.Equal(60, passed);
    }

    [Fact]
    public void Keys_are_counted_apart()
    {
        var clock = new Clock();
        var table = new RateLimitTable(requests: 1, per: TimeSpan.FromHours(1), burst: 1, maxKeys: 100, clock);
        Assert.True(Take(table, "a", out _));
        Assert.True(Take(table, "b", out _));
        Assert.False(Take(table, "a", out TimeSpan wait));
        Assert.Equal(TimeSpan.FromHours(1), wait);
        Assert.True(table.TryAcquire([], out _)); // the empty key is a key too
        Assert.Equal(3, table.Count);
    }

    [Fact]
    public void A_full_table_lets_new_keys_through_uncounted_until_a_sweep_frees_idle_ones()
    {
        var clock = new Clock();
        var table = new RateLimitTable(requests: 1, per: TimeSpan.FromSeconds(10), burst: 1, maxKeys: 3, clock);
        foreach (string key in new[] { "a", "b", "c" })
        {
            Assert.True(Take(table, key, out _));
        }

        // Full and every key still counting: a new key passes, uncounted, again and again (no lock-out, no cell).
        Assert.True(Take(table, "d", out _));
        Assert.True(Take(table, "d", out _));
        Assert.Equal(2, table.Full);
        Assert.False(Take(table, "a", out _)); // held keys are limited as before
        Assert.Equal(3, table.Count);

        // Once their time has passed the cells are as good as new: the next sweep (a second later at the soonest) drops them.
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.True(Take(table, "d", out _));
        Assert.False(Take(table, "d", out _)); // now it has a cell, and a limit
        Assert.Equal(2, table.Full);
        Assert.True(table.Count <= 3, $"{table.Count} keys held");
    }

    [Fact]
    public void Sweeps_run_at_most_once_a_second()
    {
        var clock = new Clock();
        var table = new RateLimitTable(requests: 1, per: TimeSpan.FromMilliseconds(100), burst: 1, maxKeys: 1, clock);
        Assert.True(Take(table, "a", out _));
        Assert.True(Take(table, "b", out _)); // the sweep at this instant found "a" still counting: "b" uncounted
        clock.Advance(TimeSpan.FromMilliseconds(500)); // "a" is idle now, but the last sweep was half a second ago
        Assert.True(Take(table, "b", out _));
        Assert.Equal(2, table.Full);
        clock.Advance(TimeSpan.FromMilliseconds(500));
        Assert.True(Take(table, "b", out _)); // swept "a": "b" has the cell now
        Assert.False(Take(table, "b", out _));
        Assert.Equal(2, table.Full);
    }

    [Fact]
    public void Concurrent_requests_on_one_key_get_exactly_the_burst()
    {
        var clock = new Clock();
        var table = new RateLimitTable(requests: 1, per: TimeSpan.FromHours(1), burst: 5000, maxKeys: 10, clock);
        int passed = 0;
        using var start = new Barrier(4);
        Thread[] workers = [.. Enumerable.Range(0, 4).Select(worker => new Thread(() =>
        {
            start.SignalAndWait();
            for (int i = 0; i < 2500; i++)
            {
                if (Take(table, "shared", out _))
                {
                    Interlocked.Increment(ref passed);
                }
            }
        }))];
        foreach (Thread t in workers)
        {
            t.Start();
        }

        foreach (Thread t in workers)
        {
            t.Join();
        }

        Assert.Equal(5000, passed);
        Assert.Equal(1, table.Count);
    }

    [Fact]
    public void Extreme_settings_do_not_overflow()
    {
        var clock = new Clock();
        var slow = new RateLimitTable(requests: 1, per: TimeSpan.FromDays(1), burst: 1_000_000_000, maxKeys: 1, clock);
        for (int i = 0; i < 1000; i++)
        {
            Assert.True(Take(slow, "k", out _)); // a burst of a billion: its tolerance is capped, not wrapped round
        }

        var daily = new RateLimitTable(requests: 1, per: TimeSpan.FromDays(1), burst: 1, maxKeys: 1, clock);
        Assert.True(Take(daily, "k", out _));
        Assert.False(Take(daily, "k", out TimeSpan day));
        Assert.Equal(TimeSpan.FromDays(1), day);
        var fast = new RateLimitTable(requests: 1_000_000_000, per: TimeSpan.FromSeconds(1), burst: 1, maxKeys: 1, clock);
        Assert.True(Take(fast, "k", out _));
        Assert.False(Take(fast, "k", out TimeSpan wait)); // one tick is the finest interval the clock has
        Assert.Equal(TimeSpan.FromTicks(1), wait);
        clock.Advance(TimeSpan.FromTicks(1));
        Assert.True(Take(fast, "k", out _));
    }
}

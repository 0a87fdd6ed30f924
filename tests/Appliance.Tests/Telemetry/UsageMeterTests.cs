using Appliance.State;
using Appliance.Telemetry;
using Appliance.Tests.State;

namespace Appliance.Tests.Telemetry;

/// <summary>Requests per consumer and hour, counted in memory and written in batches, against a real state database.</summary>
public sealed class UsageMeterTests : IDisposable
{
    private readonly StateTestDatabase _db = new();
    private readonly List<Exception> _failures = [];
    private readonly UsageMeter _meter;

    public UsageMeterTests()
    {
        _db.Store.CreateTenant("acme", "Acme");
        _meter = new UsageMeter(_db.Store, _db.Time, (e, lost) => _failures.Add(e), timer: false);
    }

    public void Dispose()
    {
        _meter.Dispose();
        _db.Dispose();
    }

    private long Requests(string consumer, string period) =>
        _db.Store.GetUsage(consumer, period, period).SingleOrDefault()?.Requests ?? 0;

    [Fact]
    public void Counts_land_per_consumer_and_hour_when_flushed()
    {
        string a = _db.Store.CreateConsumer("acme", "a").Id;
        string b = _db.Store.CreateConsumer("acme", "b").Id;
        string hour = UsagePeriod.Hour(_db.Time.GetUtcNow());
        for (int i = 0; i < 3; i++)
        {
            _meter.Count(a);
        }

        _meter.Count(b);
        Assert.Equal(0, Requests(a, hour)); // in memory until the flush
        Assert.Equal(4, _meter.Pending);
        Assert.True(_meter.Flush());
        Assert.Equal(3, Requests(a, hour));
        Assert.Equal(1, Requests(b, hour));
        Assert.Equal(0, _meter.Pending);

        _meter.Count(a);
        Assert.True(_meter.Flush());
        Assert.Equal(4, Requests(a, hour)); // added to, never overwritten
    }

    [Fact]
    public void Tokens_land_with_the_hours_requests_and_survive_a_failed_flush()
    {
        string a = _db.Store.CreateConsumer("acme", "a").Id;
        string hour = UsagePeriod.Hour(_db.Time.GetUtcNow());
        _meter.Count(a);
        _meter.AddTokens(a, 120, 30);
        _meter.AddTokens(a, 5, 1);
        Assert.True(_meter.Flush());
        UsageRecord row = _db.Store.GetUsage(a, hour, hour).Single();
        Assert.Equal((1L, 125L, 31L), (row.Requests, row.InputTokens, row.OutputTokens));

        _meter.AddTokens(a, 10, 10); // tokens alone (a stream that ended after its request was counted) are flushed too
        _db.Sql("ALTER TABLE usage RENAME TO usage_away");
        Assert.False(_meter.Flush());
        Assert.Single(_failures);
        _db.Sql("ALTER TABLE usage_away RENAME TO usage");
        Assert.True(_meter.Flush());
        row = _db.Store.GetUsage(a, hour, hour).Single();
        Assert.Equal((1L, 135L, 41L), (row.Requests, row.InputTokens, row.OutputTokens));
    }

    [Fact]
    public void A_new_hour_starts_a_new_period()
    {
        string a = _db.Store.CreateConsumer("acme", "a").Id;
        string first = UsagePeriod.Hour(_db.Time.GetUtcNow());
        _meter.Count(a);
        _db.Time.Advance(TimeSpan.FromHours(1));
        string second = UsagePeriod.Hour(_db.Time.GetUtcNow());
        _meter.Count(a);
        _meter.Count(a);
        Assert.True(_meter.Flush());
        Assert.NotEqual(first, second);
        Assert.Equal(1, Requests(a, first));
        Assert.Equal(2, Requests(a, second));
    }

    [Fact]
    public void A_failed_flush_keeps_its_counts_for_the_next()
    {
        string a = _db.Store.CreateConsumer("acme", "a").Id;
        string hour = UsagePeriod.Hour(_db.Time.GetUtcNow());
        _meter.Count(a);
        _meter.Count(a);
        _db.Sql("ALTER TABLE usage RENAME TO usage_away");
        Assert.False(_meter.Flush());
        Assert.Single(_failures);
        _meter.Count(a); // counting goes on meanwhile
        _db.Sql("ALTER TABLE usage_away RENAME TO usage");
        Assert.True(_meter.Flush());
        Assert.Equal(3, Requests(a, hour));
    }

    [Fact]
    public void Counts_of_a_deleted_consumer_are_dropped_and_the_rest_written()
    {
        string a = _db.Store.CreateConsumer("acme", "a").Id;
        string b = _db.Store.CreateConsumer("acme", "b").Id;
        _meter.Count(a);
        _meter.Count(b);
        _db.Store.DeleteConsumer(a);
        Assert.True(_meter.Flush());
        Assert.Equal(1, Requests(b, UsagePeriod.Hour(_db.Time.GetUtcNow())));
        Assert.Empty(_failures);
    }

    [Fact]
    public void Dispose_writes_what_is_pending()
    {
        string a = _db.Store.CreateConsumer("acme", "a").Id;
        var meter = new UsageMeter(_db.Store, _db.Time, timer: false);
        meter.Count(a);
        meter.Dispose();
        Assert.Equal(1, Requests(a, UsagePeriod.Hour(_db.Time.GetUtcNow())));
    }

    [Fact]
    public async Task Concurrent_counting_during_flushes_loses_nothing()
    {
        string a = _db.Store.CreateConsumer("acme", "a").Id;
        using var start = new Barrier(3);
        Thread[] counters = [.. Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (int i = 0; i < 20_000; i++)
            {
                _meter.Count(a);
            }
        }))];
        foreach (Thread t in counters)
        {
            t.Start();
        }

        start.SignalAndWait();
        while (counters.Any(t => t.IsAlive))
        {
            Assert.True(_meter.Flush());
            await Task.Yield();
        }

        Assert.True(_meter.Flush());
        Assert.Equal(40_000, Requests(a, UsagePeriod.Hour(_db.Time.GetUtcNow())));
    }

    private long? Used(string consumer, QuotaPeriod period) => _meter.Used(consumer, period, out _);

    [Fact]
    public void Quota_totals_start_from_the_database_and_count_on_in_memory()
    {
        string a = _db.Store.CreateConsumer("acme", "a").Id;
        DateTimeOffset now = _db.Time.GetUtcNow(); // 2025-11-29 12:00 UTC
        _db.Store.AddUsage(a, UsagePeriod.Hour(now.AddDays(-1)), 5);    // this month, yesterday
        _db.Store.AddUsage(a, UsagePeriod.Hour(now.AddHours(-1)), 7);   // today, the hour before
        _db.Store.AddUsage(a, UsagePeriod.Hour(now.AddMonths(-1)), 100); // last month: not counted
        _db.Store.AddUsage(a, "2025-11-29", 1000);                       // a day row, not an hour: not the meter's, not counted
        _db.Store.AddUsage(a, "2025-11", 1000);                          // a month row: the same
        _meter.Count(a); // pending, not yet in the database
        Assert.Equal(13, Used(a, QuotaPeriod.Month));
        Assert.Equal(8, Used(a, QuotaPeriod.Day));
        Assert.Equal(1, Used(a, QuotaPeriod.Hour));
        Assert.Equal(0, _db.Store.SumHourlyRequests(a, UsagePeriod.Hour(now), UsagePeriod.Hour(now))); // reading wrote nothing
        _meter.Count(a);
        Assert.Equal(14, Used(a, QuotaPeriod.Month));
        Assert.Equal(9, Used(a, QuotaPeriod.Day));
        Assert.Equal(2, _meter.Used(a, QuotaPeriod.Hour, out TimeSpan untilHour));
        Assert.Equal(TimeSpan.FromHours(1), untilHour);
        _meter.Used(a, QuotaPeriod.Month, out TimeSpan untilMonth);
        Assert.Equal(new DateTimeOffset(2025, 12, 1, 0, 0, 0, TimeSpan.Zero) - now, untilMonth);

        _db.Time.Advance(TimeSpan.FromHours(1)); // a new hour: its total starts again from the database
        Assert.Equal(0, Used(a, QuotaPeriod.Hour));
        Assert.Equal(9, Used(a, QuotaPeriod.Day));
        _db.Time.Advance(TimeSpan.FromDays(2)); // December
        Assert.Equal(0, Used(a, QuotaPeriod.Month));
        Assert.True(_meter.Flush());
        Assert.Equal(14, _db.Store.SumHourlyRequests(a, "2025-11-01T00", "2025-11-30T23")); // 5 + 7 + the 2 counted
    }

    [Fact]
    public void Token_totals_start_from_the_database_and_count_on_in_memory()
    {
        string a = _db.Store.CreateConsumer("acme", "a").Id;
        DateTimeOffset now = _db.Time.GetUtcNow();
        _db.Store.AddUsage(a, UsagePeriod.Hour(now.AddHours(-1)), 1, inputTokens: 300, outputTokens: 50); // today
        _db.Store.AddUsage(a, UsagePeriod.Hour(now.AddDays(-2)), 1, inputTokens: 1000, outputTokens: 0);  // this month
        _meter.AddTokens(a, 20, 5); // pending before the first question
        Assert.Equal(new UsageSum(2, 1375), _meter.Totals(a, QuotaPeriod.Month, out _));
        Assert.Equal(new UsageSum(1, 375), _meter.Totals(a, QuotaPeriod.Day, out _));

        _meter.Count(a);
        _meter.AddTokens(a, 10, 10); // counted into the totals already loaded
        Assert.Equal(new UsageSum(3, 1395), _meter.Totals(a, QuotaPeriod.Month, out _));
        Assert.Equal(new UsageSum(1, 45), _meter.Totals(a, QuotaPeriod.Hour, out _));
        Assert.True(_meter.Flush());
        Assert.Equal(new UsageSum(3, 1395), _db.Store.SumHourly(a, "2025-11-01T00", "2025-11-30T23"));
    }

    [Fact]
    public void Counts_a_failed_flush_put_back_are_in_the_quota_total()
    {
        string a = _db.Store.CreateConsumer("acme", "a").Id;
        _meter.Count(a);
        _meter.Count(a);
        _db.Sql("ALTER TABLE usage RENAME TO usage_away");
        Assert.False(_meter.Flush());
        _db.Sql("ALTER TABLE usage_away RENAME TO usage");
        Assert.Equal(2, Used(a, QuotaPeriod.Day));
    }

    [Fact]
    public void A_database_that_cannot_be_read_gives_no_total_and_is_asked_again_a_second_later()
    {
        string a = _db.Store.CreateConsumer("acme", "a").Id;
        _db.Store.AddUsage(a, UsagePeriod.Hour(_db.Time.GetUtcNow()), 4);
        _db.Sql("ALTER TABLE usage RENAME TO usage_away");
        Assert.Null(Used(a, QuotaPeriod.Day));
        Assert.Single(_failures);
        _db.Sql("ALTER TABLE usage_away RENAME TO usage");
        Assert.Null(Used(a, QuotaPeriod.Day)); // not asked again yet
        Assert.Single(_failures);
        _db.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(4, Used(a, QuotaPeriod.Day)); // nothing half-loaded was kept
    }

    [Fact]
    public void A_consumer_deleted_and_made_again_with_its_id_starts_from_nothing()
    {
        string a = _db.Store.CreateConsumer("acme", "a", "con_reused").Id;
        _meter.Count(a);
        _meter.Count(a);
        Assert.Equal(2, Used(a, QuotaPeriod.Month));
        _meter.Count(a); // pending when the consumer goes
        _db.Store.DeleteConsumer(a);
        _db.Store.CreateConsumer("acme", "again", "con_reused");
        Assert.Equal(0, Used(a, QuotaPeriod.Month));
        Assert.True(_meter.Flush());
        Assert.Equal(0, _db.Store.SumHourlyRequests(a, "2025-11-01T00", "2025-11-30T23"));
    }

}

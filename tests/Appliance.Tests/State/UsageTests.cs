using Appliance.State;

namespace Appliance.Tests.State;

/// <summary>Usage counters: upsert-increment per consumer and period, batches, ranges, validation.</summary>
public sealed class UsageTests : IDisposable
{
    private readonly StateTestDatabase _db = new();

    public UsageTests()
    {
        Store.CreateTenant("acme", "Acme");
        Store.CreateConsumer("acme", "Mobile", "mobile");
        Store.CreateConsumer("acme", "Web", "web");
    }

    private StateStore Store => _db.Store;

    public void Dispose() => _db.Dispose();

    [Fact]
    public void Increments_add_up_per_period()
    {
        Assert.Equal(new UsageRecord("mobile", "2025-11-29", 1, 10, 20), Store.AddUsage("mobile", "2025-11-29", 1, 10, 20));
        Assert.Equal(new UsageRecord("mobile", "2025-11-29", 3, 15, 20), Store.AddUsage("mobile", "2025-11-29", 2, 5));
        Store.AddUsage("mobile", "2025-11-30", 7);
        Store.AddUsage("web", "2025-11-29", 100);

        Assert.Equal(
            [new UsageRecord("mobile", "2025-11-29", 3, 15, 20), new UsageRecord("mobile", "2025-11-30", 7, 0, 0)],
            _db.Reopen().GetUsage("mobile"));
        Assert.Equal([new UsageRecord("mobile", "2025-11-30", 7, 0, 0)], Store.GetUsage("mobile", from: "2025-11-30"));
        Assert.Equal([new UsageRecord("mobile", "2025-11-29", 3, 15, 20)], Store.GetUsage("mobile", to: "2025-11-29"));
        Assert.Empty(Store.GetUsage("mobile", "2025-12-01", "2025-12-31"));
    }

    [Fact]
    public void Period_helpers_write_what_the_store_accepts()
    {
        var time = new DateTimeOffset(2025, 3, 4, 5, 6, 7, TimeSpan.FromHours(2));
        Assert.Equal("2025-03", UsagePeriod.Month(time));
        Assert.Equal("2025-03-04", UsagePeriod.Day(time));
        Assert.Equal("2025-03-04T03", UsagePeriod.Hour(time)); // UTC
        Store.AddUsage("mobile", UsagePeriod.Hour(time), 1);
        Store.AddUsage("mobile", UsagePeriod.Month(time), 1);
    }

    [Theory]
    [InlineData("")]
    [InlineData("2025")]
    [InlineData("2025-13")]
    [InlineData("2025-02-30")]
    [InlineData("2025-11-29T24")]
    [InlineData("2025-11-29 12")]
    [InlineData("2025-11-29T12:00")]
    [InlineData("29/11/2025")]
    [InlineData("2025-11-29'; DROP TABLE usage;--")]
    public void Malformed_periods_are_refused(string period)
    {
        StateException e = Assert.Throws<StateException>(() => Store.AddUsage("mobile", period, 1));
        Assert.Equal((StateErrorKind.Invalid, "period"), (e.Kind, e.Field));
        Assert.Equal("from", Assert.Throws<StateException>(() => Store.GetUsage("mobile", from: period)).Field);
    }

    [Fact]
    public void Negative_or_huge_counts_and_unknown_consumers_are_refused()
    {
        Assert.Equal("requests", Assert.Throws<StateException>(() => Store.AddUsage("mobile", "2025-11-29", -1)).Field);
        Assert.Equal("outputTokens", Assert.Throws<StateException>(() => Store.AddUsage("mobile", "2025-11-29", 1, 0, long.MaxValue)).Field);
        StateException e = Assert.Throws<StateException>(() => Store.AddUsage("ghost", "2025-11-29", 1));
        Assert.Equal((StateErrorKind.NotFound, "consumerId"), (e.Kind, e.Field));
        Assert.Empty(Store.GetUsage("mobile"));
    }

    [Fact]
    public void A_batch_applies_in_one_go_and_skips_consumers_deleted_since()
    {
        Store.CreateConsumer("acme", "Gone", "gone");
        Store.DeleteConsumer("gone");
        int applied = Store.AddUsage([
            new UsageIncrement("mobile", "2025-11-29", 1, 5, 6),
            new UsageIncrement("gone", "2025-11-29", 1),
            new UsageIncrement("mobile", "2025-11-29", 2),
            new UsageIncrement("web", "2025-11-29T10", 4),
        ]);
        Assert.Equal(3, applied);
        Assert.Equal([new UsageRecord("mobile", "2025-11-29", 3, 5, 6)], Store.GetUsage("mobile"));
        Assert.Equal([new UsageRecord("web", "2025-11-29T10", 4, 0, 0)], Store.GetUsage("web"));
        Assert.Equal(0, Store.AddUsage([]));
    }

    [Fact]
    public void A_batch_with_one_bad_increment_changes_nothing()
    {
        StateException e = Assert.Throws<StateException>(() => Store.AddUsage([
            new UsageIncrement("mobile", "2025-11-29", 1),
            new UsageIncrement("web", "yesterday", 1),
        ]));
        Assert.Equal("increments[1].period", e.Field);
        Assert.Empty(Store.GetUsage("mobile"));
    }
}

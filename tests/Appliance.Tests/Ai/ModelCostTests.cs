using Appliance.Ai;

namespace Appliance.Tests.Ai;

/// <summary>An answer's cost from its tokens and the model's prices per million tokens, and how it is written.</summary>
public sealed class ModelCostTests
{
    [Fact]
    public void Input_beyond_the_cached_part_output_and_cached_input_each_at_their_price()
    {
        var cost = new ModelCost(Input: 3m, CachedInput: 0.3m, Output: 15m);
        var usage = new TokenUsage { InputTokens = 1_000, CachedInputTokens = 400, OutputTokens = 200 };
        // 600 × 3 + 400 × 0.3 + 200 × 15 = 1,800 + 120 + 3,000 = 4,920 per million: 0.00492.
        Assert.Equal(4_920_000, cost.Nanos(usage));
        Assert.Equal("0.00492", ModelCost.Format(cost.Nanos(usage)));
    }

    [Fact]
    public void A_provider_counting_more_cached_than_input_pays_no_less_than_nothing_for_input()
    {
        var cost = new ModelCost(1m, 0.5m, 2m);
        Assert.Equal(5_000, cost.Nanos(new TokenUsage { InputTokens = 10, CachedInputTokens = 50 })); // 10 cached at 0.5
        Assert.Equal(0, cost.Nanos(new TokenUsage { InputTokens = -5, OutputTokens = -7 }));
    }

    [Fact]
    public void Fractions_of_a_nano_unit_round_to_the_nearest_and_huge_counts_stay_in_range()
    {
        var cost = new ModelCost(0.0375m, 0.0375m, 0.15m);
        Assert.Equal(38, cost.Nanos(new TokenUsage { InputTokens = 1 })); // 37.5 nano-units: away from zero
        var dearest = new ModelCost(ModelCost.MaxPrice, ModelCost.MaxPrice, ModelCost.MaxPrice);
        long most = dearest.Nanos(new TokenUsage { InputTokens = long.MaxValue, OutputTokens = long.MaxValue });
        Assert.Equal(2 * TokenUsage.MaxPerAnswer * 100_000 * 1_000, most); // counts clamped; no overflow
    }

    [Theory]
    [InlineData(0, "0")]
    [InlineData(1, "0.000000001")]
    [InlineData(10, "0.00000001")]
    [InlineData(1_500_000_000, "1.5")]
    [InlineData(12_000_000_000, "12")]
    [InlineData(123_456_789_012, "123.456789012")]
    [InlineData(long.MaxValue, "9223372036.854775807")]
    public void Nano_units_are_written_as_a_plain_decimal(long nanos, string text)
    {
        Assert.Equal(text, ModelCost.Format(nanos));
        Assert.True(text.Length <= ModelCost.MaxFormattedLength);
    }
}

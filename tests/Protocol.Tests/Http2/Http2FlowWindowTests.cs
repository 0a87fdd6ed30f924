using Appliance.Protocol.Http2;

namespace Appliance.Protocol.Tests.Http2;

public class Http2FlowWindowTests
{
    [Fact]
    public void Consuming_within_the_window_reduces_it()
    {
        var window = new Http2FlowWindow(65_535);

        Assert.True(window.TryConsume(65_000));
        Assert.True(window.TryConsume(535));
        Assert.True(window.TryConsume(0));
        Assert.Equal(0, window.Available);
    }

    [Fact]
    public void Consuming_beyond_the_window_fails_and_changes_nothing()
    {
        var window = new Http2FlowWindow(100);

        Assert.False(window.TryConsume(101));
        Assert.Equal(100, window.Available);
    }

    [Fact]
    public void Increase_up_to_2_pow_31_minus_1_succeeds()
    {
        var window = new Http2FlowWindow(1);

        Assert.True(window.TryIncrease(int.MaxValue - 1));
        Assert.Equal(int.MaxValue, window.Available);
    }

    [Theory]
    [InlineData(65_535, int.MaxValue)]
    [InlineData(int.MaxValue, 1)]
    [InlineData(1, int.MaxValue)]
    public void Window_update_past_2_pow_31_minus_1_is_refused(int initial, int increment)
    {
        // §6.9.1: a FLOW_CONTROL_ERROR; the window keeps its value.
        var window = new Http2FlowWindow(initial);

        Assert.False(window.TryIncrease(increment));
        Assert.Equal(initial, window.Available);
    }

    [Fact]
    public void Shrinking_initial_window_size_can_make_the_window_negative()
    {
        // §6.9.2: 65535 sent... 60000 consumed, then the peer lowers SETTINGS_INITIAL_WINDOW_SIZE to 16384.
        var window = new Http2FlowWindow(65_535);
        Assert.True(window.TryConsume(60_000));

        Assert.True(window.TryAdjust(16_384 - 65_535));
        Assert.Equal(5_535 - 49_151, window.Available);
        Assert.False(window.TryConsume(1));
        Assert.True(window.TryConsume(0));

        Assert.True(window.TryIncrease(43_616));
        Assert.Equal(0, window.Available);
        Assert.True(window.TryIncrease(10));
        Assert.True(window.TryConsume(10));
    }

    [Fact]
    public void Adjust_that_would_exceed_2_pow_31_minus_1_is_refused()
    {
        var window = new Http2FlowWindow(65_535);
        Assert.True(window.TryIncrease(int.MaxValue - 65_535));

        Assert.False(window.TryAdjust(1));
        Assert.Equal(int.MaxValue, window.Available);
    }

    [Fact]
    public void Adjust_to_the_lowest_possible_window_is_allowed()
    {
        var window = new Http2FlowWindow(0);

        Assert.True(window.TryAdjust(-int.MaxValue));
        Assert.Equal(-int.MaxValue, window.Available);
        Assert.True(window.TryAdjust(int.MaxValue));
        Assert.Equal(0, window.Available);
    }

    [Fact]
    public void Negative_amounts_are_programming_errors()
    {
        var window = new Http2FlowWindow(10);

        Assert.Throws<ArgumentOutOfRangeException>(() => window.TryConsume(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => window.TryIncrease(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Http2FlowWindow(-1));
    }
}

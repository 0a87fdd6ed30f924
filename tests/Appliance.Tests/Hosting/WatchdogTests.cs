using Appliance.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Tests.Hosting;

public sealed class WatchdogTests
{
    private readonly List<string> _sent = [];
    private readonly Queue<Action> _pool = new();
    private string? _problem;

    private Watchdog Create() => new(_sent.Add, () => _problem, () => "3 connection(s), config revision 7", _pool.Enqueue, NullLogger.Instance);

    [Fact]
    public void Pings_while_the_thread_pool_runs_its_work_items()
    {
        using Watchdog w = Create();
        for (int i = 0; i < 5; i++)
        {
            Assert.True(w.Tick(watchdog: true));
            _pool.Dequeue()(); // the pool runs the probe before the next tick
        }

        Assert.Equal(5, _sent.Count(s => s == "WATCHDOG=1"));
        Assert.Contains("STATUS=3 connection(s), config revision 7", _sent);
    }

    [Fact]
    public void Stops_pinging_when_the_thread_pool_stops_running_work_and_resumes_after()
    {
        using Watchdog w = Create();
        Assert.True(w.Tick(watchdog: true));
        // The probe queued at that tick never runs: a starved or deadlocked pool.
        Assert.False(w.Tick(watchdog: true));
        Assert.False(w.Tick(watchdog: true));
        Assert.Single(_pool); // no pile-up of probes while stuck
        Assert.Single(_sent, s => s == "WATCHDOG=1");

        _pool.Dequeue()();
        Assert.True(w.Tick(watchdog: true));
    }

    [Fact]
    public void Stops_pinging_when_an_accept_loop_has_died()
    {
        using Watchdog w = Create();
        _problem = "listener https: accept loop failed: boom";
        Assert.False(w.Tick(watchdog: true));
        Assert.Empty(_sent);
    }

    [Fact]
    public void Without_a_watchdog_only_the_status_is_sent()
    {
        using Watchdog w = Create();
        Assert.False(w.Tick(watchdog: false));
        Assert.Equal(["STATUS=3 connection(s), config revision 7"], _sent);
    }
}

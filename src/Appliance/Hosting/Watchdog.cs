using Microsoft.Extensions.Logging;

namespace Appliance.Hosting;

/// <summary>
/// systemd's watchdog (WatchdogSec=): WATCHDOG=1 every quarter interval, but only while the process can still do its
/// work. A timer alone would keep a wedged server alive; this one runs on its own thread and pings only when
/// <list type="bullet">
/// <item>the work item it queued to the thread pool at the previous tick has run (requests run there: a starved or
/// deadlocked pool means nothing is served), and</item>
/// <item>every event loop ran the probe posted to it at the previous tick (a loop stuck in one connection's work
/// holds all of the connections on it), and every listener's accept loop is still running (the host's check names
/// the first that is not).</item>
/// </list>
/// Three failed ticks in a row (a problem that lasts about three quarters of the interval) let the interval lapse, and
/// systemd kills and restarts the service (Result=watchdog); a loop busy for a moment does not.
/// The same thread refreshes the STATUS= line.
/// </summary>
public sealed class Watchdog : IDisposable
{
    private readonly Action<string> _notify;
    private readonly Func<string?> _problem;
    private readonly Func<string> _status;
    private readonly Action<Action> _queue;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private long _queuedTick;
    private long _ranTick;
    private long _tick;
    private string? _lastFailure;

    /// <param name="notify">Sends one sd_notify state.</param>
    /// <param name="problem">Null when every event loop and accept loop runs; otherwise what is wrong.</param>
    /// <param name="status">The STATUS= text.</param>
    /// <param name="queue">Queues a work item to the thread pool (replaceable in tests).</param>
    public Watchdog(Action<string> notify, Func<string?> problem, Func<string> status, Action<Action> queue, ILogger logger)
    {
        _notify = notify;
        _problem = problem;
        _status = status;
        _queue = queue;
        _logger = logger;
    }

    /// <summary>WATCHDOG_USEC when it is meant for this process (WATCHDOG_PID unset or ours); null otherwise.</summary>
    public static TimeSpan? IntervalFromEnvironment()
    {
        string? pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        if (pid is not null && pid != Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture))
        {
            return null;
        }

        return long.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), out long usec) && usec > 0
            ? TimeSpan.FromMicroseconds(usec)
            : null;
    }

    public static void QueueToThreadPool(Action work) => ThreadPool.UnsafeQueueUserWorkItem(static w => w(), work, preferLocal: false);

    /// <summary>Starts the thread: ticks every quarter watchdog interval, or every 10 s for STATUS only.</summary>
    public void Start(TimeSpan? interval)
    {
        TimeSpan period = interval is { } i ? i / 4 : TimeSpan.FromSeconds(10);
        var thread = new Thread(() =>
        {
            while (!_stop.Token.WaitHandle.WaitOne(period))
            {
                Tick(interval is not null);
            }
        })
        {
            IsBackground = true,
            Name = "systemd watchdog",
        };
        thread.Start();
    }

    /// <summary>One check; returns whether WATCHDOG=1 was sent.</summary>
    public bool Tick(bool watchdog)
    {
        long tick = ++_tick;
        string? failure = Volatile.Read(ref _ranTick) < Volatile.Read(ref _queuedTick)
            ? "the thread pool did not run a work item within a quarter of the watchdog interval"
            : _problem();

        if (failure is null)
        {
            if (watchdog)
            {
                _notify("WATCHDOG=1");
            }

            _notify("STATUS=" + _status());
            _lastFailure = null;
        }
        else if (failure != _lastFailure)
        {
            _lastFailure = failure;
            _logger.LogCritical("watchdog: {Failure}; no longer telling systemd we are alive", failure);
        }

        // The next tick checks that this one ran.
        if (Volatile.Read(ref _ranTick) >= Volatile.Read(ref _queuedTick))
        {
            Volatile.Write(ref _queuedTick, tick);
            _queue(() => Volatile.Write(ref _ranTick, tick));
        }

        return failure is null && watchdog;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }
}

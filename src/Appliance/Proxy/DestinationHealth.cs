namespace Appliance.Proxy;

/// <summary>
/// Health of one destination from two sources: active probes (consecutive results against thresholds) and
/// passive observation of real traffic (consecutive failures eject it for a while, longer each time it
/// happens again). A destination is used when the probe says healthy and it is not ejected.
/// </summary>
public sealed class DestinationHealth
{
    private volatile bool _activeHealthy = true;
    private int _activeSuccesses;
    private int _activeFailures;
    private int _passiveFailures;
    private int _ejections;
    private long _ejectedUntil;

    public bool ActiveHealthy => _activeHealthy;

    public bool IsEjected => Transport.LoopClock.Milliseconds < Volatile.Read(ref _ejectedUntil);

    public bool IsAvailable => _activeHealthy && !IsEjected;

    public int Ejections => Volatile.Read(ref _ejections);

    private TaskCompletionSource _probed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the next active probe result has been taken into account.</summary>
    public Task NextProbe => Volatile.Read(ref _probed).Task;

    /// <summary>An active probe result; returns true when the state changed.</summary>
    public bool ReportProbe(bool success, int healthyThreshold, int unhealthyThreshold)
    {
        try
        {
            return ApplyProbe(success, healthyThreshold, unhealthyThreshold);
        }
        finally
        {
            Interlocked.Exchange(ref _probed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }

    private bool ApplyProbe(bool success, int healthyThreshold, int unhealthyThreshold)
    {
        if (success)
        {
            Interlocked.Exchange(ref _activeFailures, 0);
            if (!_activeHealthy && Interlocked.Increment(ref _activeSuccesses) >= healthyThreshold)
            {
                _activeHealthy = true;
                Interlocked.Exchange(ref _ejectedUntil, 0); // a passing probe ends a passive ejection too
                return true;
            }

            return false;
        }

        Interlocked.Exchange(ref _activeSuccesses, 0);
        if (_activeHealthy && Interlocked.Increment(ref _activeFailures) >= unhealthyThreshold)
        {
            _activeHealthy = false;
            return true;
        }

        return false;
    }

    public void ReportSuccess(PassiveHealthOptions options)
    {
        if (Volatile.Read(ref _passiveFailures) != 0)
        {
            Interlocked.Exchange(ref _passiveFailures, 0);
        }

        if (options.FailurePercentage > 0)
        {
            CountInWindow(options, failed: false);
        }
    }

    /// <summary>
    /// A failed request (connect error, reset, 5xx); returns true when this ejects the destination: after the
    /// configured consecutive failures, or when failures reach the configured share of its requests in the current
    /// interval (Envoy's failure_percentage, with a minimum number of requests).
    /// </summary>
    public bool ReportFailure(PassiveHealthOptions options, ClusterModel cluster)
    {
        bool byRate = options.FailurePercentage > 0 && CountInWindow(options, failed: true);
        bool byCount = options.ConsecutiveFailures > 0 && Interlocked.Increment(ref _passiveFailures) >= options.ConsecutiveFailures;
        if (!(byRate || byCount) || IsEjected || !cluster.MayEject())
        {
            return false;
        }

        // Backoff: each ejection lasts longer (base × ejections), up to ten times the base.
        int n = Math.Min(Interlocked.Increment(ref _ejections), 10);
        Volatile.Write(ref _ejectedUntil, Environment.TickCount64 + (long)options.EjectionTime.TotalMilliseconds * n);
        Interlocked.Exchange(ref _passiveFailures, 0);
        Interlocked.Exchange(ref _windowStart, Environment.TickCount64); // a fresh window after the ejection
        Interlocked.Exchange(ref _windowRequests, 0);
        Interlocked.Exchange(ref _windowFailures, 0);
        return true;
    }

    private long _windowStart = Environment.TickCount64;
    private int _windowRequests;
    private int _windowFailures;

    /// <summary>Counts a request in the current interval; true when it is a failure that puts the share over the limit.</summary>
    private bool CountInWindow(PassiveHealthOptions options, bool failed)
    {
        long now = Transport.LoopClock.Milliseconds;
        long start = Volatile.Read(ref _windowStart);
        if (now - start > (long)options.FailurePercentageInterval.TotalMilliseconds
            && Interlocked.CompareExchange(ref _windowStart, now, start) == start)
        {
            Interlocked.Exchange(ref _windowRequests, 0); // approximate across the switch, as statistics may be
            Interlocked.Exchange(ref _windowFailures, 0);
        }

        int requests = Interlocked.Increment(ref _windowRequests);
        if (!failed)
        {
            return false;
        }

        int failures = Interlocked.Increment(ref _windowFailures);
        return requests >= options.FailurePercentageMinimumRequests && failures * 100L >= options.FailurePercentage * (long)requests;
    }
}

/// <summary>Passive health settings of a cluster.</summary>
public sealed record PassiveHealthOptions
{
    /// <summary>Consecutive failed requests that eject a destination; 0 turns passive health off. Default 5.</summary>
    public int ConsecutiveFailures { get; init; } = 5;
    public TimeSpan EjectionTime { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>At most this share of a cluster's destinations is ejected at once. Default 50.</summary>
    public int MaxEjectionPercent { get; init; } = 50;
    /// <summary>Responses with a status at or above this count as failures. Default 500 (5xx).</summary>
    public int FailureStatus { get; init; } = 500;
    /// <summary>Failures, in percent of a destination's requests in one interval, that eject it; 0 (default) turns it off.</summary>
    public int FailurePercentage { get; init; }
    /// <summary>Requests an interval needs before its failure share counts. Default 20.</summary>
    public int FailurePercentageMinimumRequests { get; init; } = 20;
    public TimeSpan FailurePercentageInterval { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>Active health check settings of a cluster (null = off).</summary>
public sealed record ActiveHealthOptions
{
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(5);
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);
    public string Path { get; init; } = "/";
    public int MinStatus { get; init; } = 200;
    public int MaxStatus { get; init; } = 399;
    public int HealthyThreshold { get; init; } = 2;
    public int UnhealthyThreshold { get; init; } = 3;
}

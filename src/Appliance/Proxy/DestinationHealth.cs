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

    public bool IsEjected => Environment.TickCount64 < Volatile.Read(ref _ejectedUntil);

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

    public void ReportSuccess()
    {
        if (Volatile.Read(ref _passiveFailures) != 0)
        {
            Interlocked.Exchange(ref _passiveFailures, 0);
        }
    }

    /// <summary>A failed request (connect error, reset, 5xx); returns true when this ejects the destination.</summary>
    public bool ReportFailure(PassiveHealthOptions options, Func<bool> mayEject)
    {
        if (options.ConsecutiveFailures <= 0)
        {
            return false;
        }

        if (Interlocked.Increment(ref _passiveFailures) < options.ConsecutiveFailures || IsEjected || !mayEject())
        {
            return false;
        }

        // Backoff: each ejection lasts longer (base × ejections), up to ten times the base.
        int n = Math.Min(Interlocked.Increment(ref _ejections), 10);
        Volatile.Write(ref _ejectedUntil, Environment.TickCount64 + (long)options.EjectionTime.TotalMilliseconds * n);
        Interlocked.Exchange(ref _passiveFailures, 0);
        return true;
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

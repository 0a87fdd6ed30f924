namespace Appliance.Transport;

/// <summary>
/// What the <see cref="ConnectionRegistry"/> knows about a live connection: an id, a deadline checked by the
/// heartbeat (Kestrel's design: one timer drives every timeout, nothing allocates a timer per request),
/// and the two ways to end it: gracefully (drain) or at once.
/// </summary>
public abstract class TrackedConnection
{
    private static long s_nextId;
    private long _deadline = long.MaxValue;

    protected TrackedConnection()
    {
        Id = Interlocked.Increment(ref s_nextId);
    }

    public long Id { get; }

    /// <summary>Environment.TickCount64 value past which <see cref="OnTimeout"/> runs; long.MaxValue = none.</summary>
    public long Deadline => Volatile.Read(ref _deadline);

    public void SetDeadline(TimeSpan fromNow) =>
        Volatile.Write(ref _deadline, LoopClock.Milliseconds + (long)fromNow.TotalMilliseconds);

    public void ClearDeadline() => Volatile.Write(ref _deadline, long.MaxValue);

    /// <summary>Called on the heartbeat thread once per tick (so implementations can also check data rates).</summary>
    public virtual void OnHeartbeat(long now)
    {
        if (now >= Deadline)
        {
            ClearDeadline();
            OnTimeout();
        }
    }

    /// <summary>The current deadline passed.</summary>
    protected abstract void OnTimeout();

    /// <summary>The listener the connection came in on (to drain a removed listener's connections).</summary>
    public virtual string? ListenerName => null;

    /// <summary>Finish what is in flight, then close (shutdown, listener removed).</summary>
    public abstract void RequestClose();

    /// <summary>Close now.</summary>
    public abstract void Abort(string reason);
}

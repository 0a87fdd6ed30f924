using System.Runtime.CompilerServices;

namespace Appliance.Tls;

/// <summary>
/// A lock for the short sections a connection enters on every request (its socket's readiness state, its TLS record
/// layer, the upstream pool): one compare-exchange to enter and a release store to leave, where
/// <see cref="Lock"/> costs two interlocked operations and a thread-id lookup (perf/RESULTS.md, 2026-12-02 10:34).
/// A waiter spins, then gives its core away (Thread.Yield and Sleep(0)) until the holder leaves; it never sleeps a
/// millisecond at a time as <see cref="SpinLock"/>'s waiters do once spinning is over, so a holder that was preempted
/// or paused by a collection delays a waiting event loop by no more than its own delay. Not reentrant: a thread that
/// enters twice waits for itself forever. A struct: keep it in a field that is not readonly, and never copy it.
/// Here, in the TLS library, because the record layer and the appliance's transport both use it.
/// </summary>
public struct SpinGate
{
    private int _held;

    /// <summary>Whether a thread holds the gate (tests).</summary>
    public readonly bool IsHeld => Volatile.Read(in _held) != 0;

    public void Enter()
    {
        if (Interlocked.CompareExchange(ref _held, 1, 0) != 0)
        {
            EnterContended();
        }
    }

    /// <summary>Leaves the gate: a release store, so what was written inside is seen by the next holder.</summary>
    public void Exit() => Volatile.Write(ref _held, 0);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void EnterContended()
    {
        SpinWait spin = default;
        do
        {
            spin.SpinOnce(sleep1Threshold: -1);
        }
        while (Volatile.Read(ref _held) != 0 || Interlocked.CompareExchange(ref _held, 1, 0) != 0);
    }
}

using Appliance.Transport;

namespace Appliance.Tests.Transport;

/// <summary>Work posted to an event loop from other threads, and the watchdog's probe of a loop that is stuck.</summary>
public sealed class EventLoopTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Posted_work_runs_on_the_loop_thread()
    {
        var loop = new EventLoop(90);
        var ran = new TaskCompletionSource<(bool OnLoop, int Thread)>(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Post(() => ran.TrySetResult((EventLoop.OnLoopThread, Environment.CurrentManagedThreadId)));
        (bool onLoop, int thread) = await ran.Task.WaitAsync(Patience);
        Assert.True(onLoop);
        Assert.NotEqual(Environment.CurrentManagedThreadId, thread);

        // Many posts from many threads: each runs once, none is lost between wake-ups.
        int count = 0;
        var all = new CountdownEvent(1000);
        Parallel.For(0, 1000, _ => loop.Post(() =>
        {
            Interlocked.Increment(ref count);
            all.Signal();
        }));
        Assert.True(all.Wait(Patience));
        Assert.Equal(1000, Volatile.Read(ref count));
    }

    [Fact]
    public void A_loop_stuck_in_one_piece_of_work_fails_the_watchdog_check_until_it_comes_back()
    {
        var loop = new EventLoop(91);
        EventLoop[] loops = [loop];
        Assert.Null(SocketEngine.CheckLoops(loops)); // nothing asked yet; posts the first probe
        Assert.True(SpinWait.SpinUntil(() => loop.ProbeAnswered, Patience));
        Assert.Null(SocketEngine.CheckLoops(loops));
        Assert.True(SpinWait.SpinUntil(() => loop.ProbeAnswered, Patience));

        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        loop.Post(() =>
        {
            entered.Set();
            release.Wait(); // a handler that blocks its loop thread
        });
        Assert.True(entered.Wait(Patience));

        Assert.Null(SocketEngine.CheckLoops(loops)); // the probe posted before it had run: this one is queued behind the block
        Assert.False(loop.ProbeAnswered);
        long posted = loop.ProbesPosted;
        Assert.Equal("event loop 91 did not run its probe since the last check (its thread is stuck)", SocketEngine.CheckLoops(loops));
        Assert.Equal("event loop 91 did not run its probe since the last check (its thread is stuck)", SocketEngine.CheckLoops(loops));
        Assert.Equal(posted, loop.ProbesPosted); // no pile of probes meanwhile

        release.Set();
        Assert.True(SpinWait.SpinUntil(() => loop.ProbeAnswered, Patience));
        Assert.Null(SocketEngine.CheckLoops(loops));
    }
}

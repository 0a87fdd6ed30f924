namespace Appliance.Tls.Tests;

public sealed class SpinGateTests
{
    private sealed class Shared
    {
        public SpinGate Gate; // a field, entered in place
        public long Count;    // plain increments: only the gate keeps them whole
        public int Inside;
        public int MostInside;
    }

    [Fact]
    public void A_new_gate_is_open_and_entering_holds_it_until_exit()
    {
        var shared = new Shared();
        Assert.False(shared.Gate.IsHeld);
        shared.Gate.Enter();
        Assert.True(shared.Gate.IsHeld);
        shared.Gate.Exit();
        Assert.False(shared.Gate.IsHeld);
        shared.Gate.Enter(); // enterable again after exit
        shared.Gate.Exit();
    }

    [Fact]
    public void Threads_that_contend_enter_one_at_a_time_and_lose_no_update()
    {
        const int threads = 4, rounds = 200_000;
        var shared = new Shared();
        using var start = new Barrier(threads);
        Thread[] workers = [.. Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            start.SignalAndWait();
            for (int i = 0; i < rounds; i++)
            {
                shared.Gate.Enter();
                try
                {
                    int inside = Interlocked.Increment(ref shared.Inside);
                    if (inside > shared.MostInside)
                    {
                        shared.MostInside = inside;
                    }

                    shared.Count++; // a read, an add and a write: two threads inside at once would lose one
                    Interlocked.Decrement(ref shared.Inside);
                }
                finally
                {
                    shared.Gate.Exit();
                }
            }
        }))];
        foreach (Thread t in workers)
        {
            t.Start();
        }

        foreach (Thread t in workers)
        {
            t.Join();
        }

        Assert.Equal(threads * (long)rounds, shared.Count);
        Assert.Equal(1, shared.MostInside);
        Assert.False(shared.Gate.IsHeld);
    }

    [Fact]
    public void A_waiter_enters_once_the_holder_exits()
    {
        var shared = new Shared();
        shared.Gate.Enter();
        using var waiting = new ManualResetEventSlim();
        bool entered = false;
        var waiter = new Thread(() =>
        {
            waiting.Set();
            shared.Gate.Enter();
            Volatile.Write(ref entered, true);
            shared.Gate.Exit();
        });
        waiter.Start();
        waiting.Wait();
        Assert.False(waiter.Join(50)); // held: the waiter cannot be through
        Assert.False(Volatile.Read(ref entered));
        shared.Gate.Exit();
        Assert.True(waiter.Join(TimeSpan.FromSeconds(10)));
        Assert.True(entered);
    }
}

using System.Net.Sockets;
using Appliance.Proxy;
using Appliance.Tests.Support;

namespace Appliance.Tests.Proxy;

/// <summary>
/// The response-headers timeout of a pooled upstream connection: one timer per connection that follows a moving
/// deadline, so it must still fire after thousands of arm/reset cycles, never cancel a request whose head came, and
/// hand out a fresh source after it fired. A real loopback connection; the upstream never answers.
/// </summary>
public sealed class UpstreamTimeoutTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static async Task<(UpstreamConnection Connection, Socket Peer)> ConnectAsync()
    {
        (Socket client, Stream stream, Socket peer) = await LoopbackPair.ConnectAsync(Bound);
        return (new UpstreamConnection(client, stream), peer);
    }

    private static Task Cancelled(CancellationTokenSource source)
    {
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        source.Token.Register(() => fired.TrySetResult());
        return fired.Task.WaitAsync(Bound);
    }

    [Fact]
    public async Task A_head_that_does_not_come_cancels_the_source_at_the_deadline()
    {
        (UpstreamConnection connection, Socket peer) = await ConnectAsync();
        using (peer)
        using (connection)
        {
            long start = Environment.TickCount64;
            connection.ArmTimeout(TimeSpan.FromMilliseconds(100));
            await Cancelled(connection.Timeout);
            Assert.True(Environment.TickCount64 - start >= 90, "fired early"); // (the tick clock's own granularity aside)
        }
    }

    [Fact]
    public async Task Thousands_of_answered_requests_never_fire_and_the_next_silent_one_still_does()
    {
        (UpstreamConnection connection, Socket peer) = await ConnectAsync();
        using (peer)
        using (connection)
        {
            CancellationTokenSource first = connection.Timeout;
            for (int i = 0; i < 5000; i++)
            {
                connection.ArmTimeout(TimeSpan.FromMilliseconds(30));
                connection.ResetTimeout();
            }

            Assert.Same(first, connection.Timeout); // no source was cancelled, so none was replaced
            connection.ArmTimeout(TimeSpan.FromMilliseconds(50));
            await Cancelled(connection.Timeout);
        }
    }

    [Fact]
    public async Task A_deadline_sooner_than_the_running_timer_moves_the_timer()
    {
        // A GET's 60 s timeout leaves the timer due in a minute; the next request on the connection waits 50 ms (the
        // 100-continue wait is one such): it must fire then, not when the minute is up.
        (UpstreamConnection connection, Socket peer) = await ConnectAsync();
        using (peer)
        using (connection)
        {
            connection.ArmTimeout(TimeSpan.FromMinutes(1));
            connection.ResetTimeout();
            connection.ArmTimeout(TimeSpan.FromMilliseconds(50));
            await Cancelled(connection.Timeout);
        }
    }

    [Fact]
    public async Task After_it_fired_the_next_request_gets_a_fresh_source_with_its_own_deadline()
    {
        (UpstreamConnection connection, Socket peer) = await ConnectAsync();
        using (peer)
        using (connection)
        {
            connection.ArmTimeout(TimeSpan.FromMilliseconds(20));
            CancellationTokenSource fired = connection.Timeout;
            await Cancelled(fired);

            // The 100-continue case: the wait ran out, the request goes on with a new timeout on the same connection.
            connection.ArmTimeout(TimeSpan.FromMilliseconds(40));
            Assert.NotSame(fired, connection.Timeout);
            Assert.False(connection.Timeout.IsCancellationRequested);
            await Cancelled(connection.Timeout);

            // The head came just as the deadline passed (the timer took it): the reset leaves a usable source.
            connection.ResetTimeout();
            Assert.False(connection.Timeout.IsCancellationRequested);
            connection.ArmTimeout(TimeSpan.FromMilliseconds(30));
            await Cancelled(connection.Timeout);
        }
    }
}

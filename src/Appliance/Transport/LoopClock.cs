using System.Diagnostics;

namespace Appliance.Transport;

/// <summary>
/// The time of the current round of events on an event-loop thread, read from the clock at most once per 16 events of
/// a round (at the first ask after epoll_wait returned, and again after every 16th event and before the round's
/// deferred flushes), as nginx caches its time once per loop iteration (ngx_time_update) and Envoy keeps the
/// dispatcher's approximateMonotonicTime. A proxied request asked the clock about ten times (when it
/// arrived, when its upstream head left and its answer came, the pool's idle times, the stream's closing…), each a
/// vDSO call that reads the TSC; in a busy round the requests share one reading. Off a loop thread, the clock itself.
/// </summary>
/// <remarks>
/// What a round's time means: every event of the round was ready by then. A request's start taken from it is when
/// its bytes were there to read, so time spent on the round's earlier events counts against that request, as it
/// should. Ends that are reported (the access log's) read the clock itself. A reading is at most 16 events old:
/// microseconds for requests, some milliseconds for full RSA handshakes, far below any timeout it feeds (a deadline
/// set from it comes that much early).
/// </remarks>
internal static class LoopClock
{
    /// <summary>Stopwatch ticks, as <see cref="Stopwatch.GetTimestamp"/>.</summary>
    public static long Timestamp => EventLoop.Current is { } loop ? loop.RoundTimestamp() : Stopwatch.GetTimestamp();

    /// <summary>
    /// When something that waited since <paramref name="since"/> (a <see cref="Timestamp"/>) arrived: this round's time,
    /// or the clock itself when that is no later (an upstream that answered before the round that sent it was over,
    /// whose wait the round's time cannot tell).
    /// </summary>
    public static long ArrivedSince(long since)
    {
        long now = Timestamp;
        return now > since ? now : Stopwatch.GetTimestamp();
    }

    /// <summary>Milliseconds, as <see cref="Environment.TickCount64"/>.</summary>
    public static long Milliseconds => EventLoop.Current is { } loop ? loop.RoundMilliseconds() : Environment.TickCount64;
}

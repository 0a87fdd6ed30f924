using Appliance.Telemetry;

namespace Appliance.Tests.Support;

/// <summary>Waiting for the appliance to log a line, on <see cref="RecentLogs.Appended"/> rather than by polling.</summary>
internal static class RecentLogsWaits
{
    /// <summary>
    /// The first line containing <paramref name="text"/> logged at or after sequence <paramref name="from"/> (0: any kept
    /// line); throws <see cref="TimeoutException"/> naming the text when none came within <paramref name="timeout"/> (20 s).
    /// </summary>
    public static async Task<string> WaitForLineAsync(this RecentLogs logs, long from, string text, TimeSpan? timeout = null)
    {
        TimeSpan limit = timeout ?? TimeSpan.FromSeconds(20);
        using var deadline = new CancellationTokenSource(limit);
        long next = from;
        var lines = new List<string>();
        while (true)
        {
            Task appended = logs.Appended; // taken before the read: a line added after the read completes it
            lines.Clear(); // only the lines since the last read: the earlier ones held no match
            next = logs.Read(next, lines);
            if (lines.FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal)) is { } found)
            {
                return found;
            }

            try
            {
                await appended.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no log line containing \"{text}\" within {limit}");
            }
        }
    }
}

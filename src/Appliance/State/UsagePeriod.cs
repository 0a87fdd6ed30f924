using System.Globalization;

namespace Appliance.State;

/// <summary>
/// Usage periods are UTC calendar buckets written as text that sorts in time order: a month <c>2025-11</c>, a
/// day <c>2025-11-29</c> or an hour <c>2025-11-29T19</c>. Text rather than a number so the rows read well in
/// sqlite3 and a range query is a plain string comparison.
/// </summary>
public static class UsagePeriod
{
    private static readonly string[] Formats = ["yyyy-MM", "yyyy-MM-dd", "yyyy-MM-dd'T'HH"];

    public static string Month(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM", CultureInfo.InvariantCulture);

    public static string Day(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public static string Hour(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH", CultureInfo.InvariantCulture);

    /// <summary>True for a real month, day or hour in one of the three forms (so 2025-02-30 is refused).</summary>
    public static bool IsValid(string? period) =>
        period is { Length: 7 or 10 or 13 }
        && DateTime.TryParseExact(period, Formats, CultureInfo.InvariantCulture, DateTimeStyles.None, out _);
}

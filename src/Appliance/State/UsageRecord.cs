namespace Appliance.State;

/// <summary>A consumer's counters for one period (see <see cref="UsagePeriod"/>).</summary>
public sealed record UsageRecord(string ConsumerId, string Period, long Requests, long InputTokens, long OutputTokens);

/// <summary>A consumer's requests and tokens (input and output together) over some periods.</summary>
public readonly record struct UsageSum(long Requests, long Tokens);

/// <summary>Counts to add to a consumer's period; the request path sums these in memory and flushes them in batches.</summary>
public readonly record struct UsageIncrement(string ConsumerId, string Period, long Requests, long InputTokens = 0, long OutputTokens = 0);

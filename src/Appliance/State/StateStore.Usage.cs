using Microsoft.Data.Sqlite;

namespace Appliance.State;

/// <summary>Usage counters per consumer and period, added to with an upsert so concurrent flushes never lose counts.</summary>
public sealed partial class StateStore
{
    private const string UpsertUsage = """
        INSERT INTO usage (consumer_id, period, requests, input_tokens, output_tokens)
        SELECT $consumer, $period, $requests, $input, $output WHERE EXISTS (SELECT 1 FROM consumers WHERE id = $consumer)
        ON CONFLICT (consumer_id, period) DO UPDATE SET
            requests = requests + excluded.requests,
            input_tokens = input_tokens + excluded.input_tokens,
            output_tokens = output_tokens + excluded.output_tokens
        """;

    /// <summary>Adds to one consumer's counters for <paramref name="period"/>; returns the new totals.</summary>
    public UsageRecord AddUsage(string consumerId, string period, long requests, long inputTokens = 0, long outputTokens = 0)
    {
        StateValidation.Id(consumerId, "consumerId");
        StateValidation.Period(period);
        StateValidation.Count(requests, "requests");
        StateValidation.Count(inputTokens, "inputTokens");
        StateValidation.Count(outputTokens, "outputTokens");
        return Write(StateChange.Usage, tx =>
        {
            if (Execute(tx, UpsertUsage, ("$consumer", consumerId), ("$period", period), ("$requests", requests), ("$input", inputTokens), ("$output", outputTokens)) == 0)
            {
                throw StateException.NotFound("consumerId", $"no consumer '{consumerId}'");
            }

            return LoadUsage(tx, consumerId, period, period)[0];
        });
    }

    /// <summary>
    /// Adds a batch in one transaction (one fsync for all). Counts of consumers deleted since they were counted
    /// are dropped rather than failing the batch; returns how many increments were applied.
    /// </summary>
    public int AddUsage(IReadOnlyList<UsageIncrement> increments)
    {
        for (int i = 0; i < increments.Count; i++)
        {
            UsageIncrement u = increments[i];
            StateValidation.Id(u.ConsumerId, $"increments[{i}].consumerId");
            StateValidation.Period(u.Period, $"increments[{i}].period");
            StateValidation.Count(u.Requests, $"increments[{i}].requests");
            StateValidation.Count(u.InputTokens, $"increments[{i}].inputTokens");
            StateValidation.Count(u.OutputTokens, $"increments[{i}].outputTokens");
        }

        if (increments.Count == 0)
        {
            return 0;
        }

        return Write(StateChange.Usage, tx =>
        {
            using SqliteCommand command = Command(tx, UpsertUsage, ("$consumer", ""), ("$period", ""), ("$requests", 0L), ("$input", 0L), ("$output", 0L));
            int applied = 0;
            foreach (UsageIncrement u in increments)
            {
                command.Parameters["$consumer"].Value = u.ConsumerId;
                command.Parameters["$period"].Value = u.Period;
                command.Parameters["$requests"].Value = u.Requests;
                command.Parameters["$input"].Value = u.InputTokens;
                command.Parameters["$output"].Value = u.OutputTokens;
                applied += command.ExecuteNonQuery();
            }

            return applied;
        });
    }

    /// <summary>A consumer's counters in period order, between <paramref name="from"/> and <paramref name="to"/> inclusive when given.</summary>
    public IReadOnlyList<UsageRecord> GetUsage(string consumerId, string? from = null, string? to = null)
    {
        StateValidation.Id(consumerId, "consumerId");
        if (from is not null)
        {
            StateValidation.Period(from, "from");
        }

        if (to is not null)
        {
            StateValidation.Period(to, "to");
        }

        return Read(tx =>
        {
            RequireConsumer(tx, consumerId);
            return LoadUsage(tx, consumerId, from, to);
        });
    }

    /// <summary>
    /// A consumer's requests in the hour periods from <paramref name="fromHour"/> to <paramref name="toHour"/>
    /// inclusive (what the gateway's usage meter writes); rows of a day or a month are not hours and are left out.
    /// 0 for a consumer with none, or none at all.
    /// </summary>
    public long SumHourlyRequests(string consumerId, string fromHour, string toHour) => SumHourly(consumerId, fromHour, toHour).Requests;

    /// <summary>The consumer's requests and tokens (input and output) in the hour rows from one hour to another, both included.</summary>
    public UsageSum SumHourly(string consumerId, string fromHour, string toHour)
    {
        StateValidation.Id(consumerId, "consumerId");
        StateValidation.Period(fromHour, "fromHour");
        StateValidation.Period(toHour, "toHour");
        return Read(tx => Query(tx, """
            SELECT coalesce(sum(requests), 0), coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) FROM usage
            WHERE consumer_id = $consumer AND length(period) = 13 AND period >= $from AND period <= $to
            """, r => new UsageSum(r.GetInt64(0), r.GetInt64(1)), ("$consumer", consumerId), ("$from", fromHour), ("$to", toHour))[0]);
    }

    private List<UsageRecord> LoadUsage(SqliteTransaction tx, string consumerId, string? from, string? to) =>
        Query(tx, """
            SELECT consumer_id, period, requests, input_tokens, output_tokens FROM usage
            WHERE consumer_id = $consumer AND ($from IS NULL OR period >= $from) AND ($to IS NULL OR period <= $to)
            ORDER BY period
            """, r => new UsageRecord(r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4)),
            ("$consumer", consumerId), ("$from", from), ("$to", to));
}

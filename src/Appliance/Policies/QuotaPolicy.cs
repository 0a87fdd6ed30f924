using Appliance.Server;
using Appliance.Telemetry;

namespace Appliance.Policies;

/// <summary>
/// routes[].policies.quota as compiled: at most <see cref="Requests"/> requests and <see cref="Tokens"/> tokens per
/// calendar <see cref="Period"/> (UTC); 0 is no limit of that kind.
/// </summary>
public sealed record QuotaSettings(long Requests, QuotaPeriod Period, int Status, long Tokens = 0);

/// <summary>
/// routes[].policies.quota: the consumer the route's apiKey policy accepted may make at most
/// <see cref="QuotaSettings.Requests"/> requests, and spend at most <see cref="QuotaSettings.Tokens"/> tokens on AI
/// answers (a token budget), per calendar hour, day or month (UTC), counted across every route (its usage,
/// <see cref="UsageMeter"/>), refused ones not included. Past either: the configured status (429 by default) with
/// <c>Retry-After</c> until the period ends. Runs last in the chain, so a request another policy refused never uses
/// quota. Concurrent requests may overshoot by the requests in flight, and a token budget by the answer that crosses
/// it (tokens are known once an answer ends; the next request is the one refused); the counts are this process's and
/// the database's (several appliances each count their own).
/// </summary>
public sealed class QuotaPolicy(QuotaSettings settings) : RequestPolicy
{
    private static string PeriodName(QuotaPeriod period) => period switch { QuotaPeriod.Hour => "hourly", QuotaPeriod.Day => "daily", _ => "monthly" };

    private readonly byte[] _problem = ProblemDetails.Json(settings.Status,
        $"The {PeriodName(settings.Period)} quota of {settings.Requests} requests is used up; see Retry-After.");

    private readonly byte[] _tokensProblem = ProblemDetails.Json(settings.Status,
        $"The {PeriodName(settings.Period)} budget of {settings.Tokens} tokens is spent; see Retry-After.");

    public override string Name => "quota";

    public QuotaSettings Settings => settings;

    public override ValueTask<PolicyVerdict> CheckAsync(RequestContext context, PolicyEnvironment environment)
    {
        // Without a consumer (no apiKey before it) or a readable database the request goes through: a quota is a
        // business limit, and a database that cannot be read must not stop all traffic (the meter logs it).
        if (context.ConsumerId is not { } consumer || environment.Usage is not { } usage
            || usage.Totals(consumer, settings.Period, out TimeSpan untilEnd) is not { } used)
        {
            return new(PolicyVerdict.Pass);
        }

        byte[]? problem = settings.Requests > 0 && used.Requests >= settings.Requests ? _problem
            : settings.Tokens > 0 && used.Tokens >= settings.Tokens ? _tokensProblem
            : null;
        return problem is null
            ? new(PolicyVerdict.Pass)
            : new(Refuse(settings.Status, problem, (int)Math.Clamp(Math.Ceiling(untilEnd.TotalSeconds), 1, int.MaxValue)));
    }
}

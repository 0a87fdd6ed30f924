using Appliance.Server;
using Appliance.Telemetry;

namespace Appliance.Policies;

/// <summary>routes[].policies.quota as compiled: at most <see cref="Requests"/> per calendar <see cref="Period"/> (UTC).</summary>
public sealed record QuotaSettings(long Requests, QuotaPeriod Period, int Status);

/// <summary>
/// routes[].policies.quota: the consumer the route's apiKey policy accepted may make at most
/// <see cref="QuotaSettings.Requests"/> requests per calendar hour, day or month (UTC), counted across every route
/// (its usage, <see cref="UsageMeter"/>), refused ones not included. Past it: the configured status (429 by
/// default) with <c>Retry-After</c> until the period ends. Runs last in the chain, so a request another policy
/// refused never uses quota. Concurrent requests may overshoot by the requests in flight; the counts are this
/// process's and the database's (several appliances each count their own).
/// </summary>
public sealed class QuotaPolicy(QuotaSettings settings) : RequestPolicy
{
    private readonly byte[] _problem = ProblemDetails.Json(settings.Status,
        $"The {settings.Period switch { QuotaPeriod.Hour => "hourly", QuotaPeriod.Day => "daily", _ => "monthly" }} quota of {settings.Requests} requests is used up; see Retry-After.");

    public override string Name => "quota";

    public QuotaSettings Settings => settings;

    public override ValueTask<PolicyVerdict> CheckAsync(RequestContext context, PolicyEnvironment environment)
    {
        // Without a consumer (no apiKey before it) or a readable database the request goes through: a quota is a
        // business limit, and a database that cannot be read must not stop all traffic (the meter logs it).
        if (context.ConsumerId is not { } consumer || environment.Usage is not { } usage
            || usage.Used(consumer, settings.Period, out TimeSpan untilEnd) is not { } used || used < settings.Requests)
        {
            return new(PolicyVerdict.Pass);
        }

        return new(Refuse(settings.Status, _problem, (int)Math.Clamp(Math.Ceiling(untilEnd.TotalSeconds), 1, int.MaxValue)));
    }
}

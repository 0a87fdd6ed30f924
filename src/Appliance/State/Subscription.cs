namespace Appliance.State;

/// <summary>A subscription starts pending; an operator approves or rejects it once.</summary>
public enum SubscriptionStatus
{
    Pending,
    Approved,
    Rejected,
}

/// <summary>A consumer's request to use one API (a route id), and the decision on it.</summary>
public sealed record Subscription(
    string Id,
    string ConsumerId,
    string ApiId,
    SubscriptionStatus Status,
    DateTimeOffset CreatedAt,
    DateTimeOffset? DecidedAt,
    string? DecidedBy);

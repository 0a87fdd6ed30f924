namespace Appliance.State;

/// <summary>A client of a tenant's APIs (an application, a team); it holds API keys, subscriptions and usage.</summary>
public sealed record Consumer(string Id, string TenantId, string Name, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

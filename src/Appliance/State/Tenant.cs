namespace Appliance.State;

/// <summary>A tenant created at run time; every consumer belongs to one. A domain belongs to at most one tenant.</summary>
public sealed record Tenant(string Id, string Name, IReadOnlyList<string> Domains, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

namespace Appliance.Policies;

/// <summary>
/// What the policies of every route share at run time, owned by the gateway host: the credentials from the state
/// database once it is open (null before, and where there is none: every API key is then refused), and the meter
/// that counts each accepted consumer's requests.
/// </summary>
public sealed class PolicyEnvironment
{
    /// <summary>An environment of its own with no credentials (every API key refused): tests, benchmarks, a dispatcher without a host.</summary>
    public static PolicyEnvironment Empty => new();

    public ConsumerDirectory? Consumers { get; internal set; }

    /// <summary>Where requests of an accepted consumer are counted (the usage table); null without a state database.</summary>
    public Telemetry.UsageMeter? Usage { get; internal set; }

    public TimeProvider Time { get; init; } = TimeProvider.System;
}

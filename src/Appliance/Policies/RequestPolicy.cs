using Appliance.Server;

namespace Appliance.Policies;

/// <summary>
/// One step of a route's policy chain (DESIGN.md: authenticate → subscription → authorize → rate limit → request
/// transforms → cache lookup), run after the route matched and before its handler. A policy lets the request on
/// (<see cref="PolicyVerdict.Pass"/>) or answers it with a refusal; it never touches the response otherwise.
/// </summary>
public abstract class RequestPolicy
{
    private long _refusals;

    /// <summary>The policy's config name ("access", "rateLimit"), for logs and the refusal metric.</summary>
    public abstract string Name { get; }

    /// <summary>Requests this policy refused since it was compiled (carried over with its state on a config apply).</summary>
    public long Refusals => Interlocked.Read(ref _refusals);

    /// <summary>
    /// Looks at the request. Synchronous policies return a completed task (no allocation); a policy that must wait
    /// (a shared store, a key lookup) may complete later.
    /// </summary>
    public abstract ValueTask<PolicyVerdict> CheckAsync(RequestContext context, PolicyEnvironment environment);

    /// <summary>A WWW-Authenticate value (RFC 9110 §11.6.1): the scheme, then its parameters that are not null, comma-separated.</summary>
    protected static byte[] Challenge(string scheme, params string?[] parameters)
    {
        string joined = string.Join(", ", parameters.Where(p => p is not null));
        return System.Text.Encoding.ASCII.GetBytes(joined.Length == 0 ? scheme : $"{scheme} {joined}");
    }

    /// <summary>Counts a refusal and returns it.</summary>
    protected PolicyVerdict Refuse(int status, byte[] problem, int retryAfterSeconds = -1, byte[]? challenge = null)
    {
        Interlocked.Increment(ref _refusals);
        return new PolicyVerdict(status, problem, retryAfterSeconds, challenge);
    }
}

/// <summary>
/// A policy's answer: <see cref="Status"/> 0 lets the request on; otherwise the status and problem+json body it is
/// answered with, a <c>Retry-After</c> in seconds when <see cref="RetryAfterSeconds"/> is not negative, and the
/// <c>WWW-Authenticate</c> challenge of a 401 (RFC 9110 §11.6.1).
/// </summary>
public readonly record struct PolicyVerdict(int Status, byte[]? Problem, int RetryAfterSeconds = -1, byte[]? Challenge = null)
{
    public static PolicyVerdict Pass => default;

    public bool Passed => Status == 0;
}

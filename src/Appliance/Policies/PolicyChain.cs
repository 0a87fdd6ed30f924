using Appliance.Server;

namespace Appliance.Policies;

/// <summary>
/// A route's policies in their fixed order: access (the client's network, so that a refused network never gets to
/// try keys), API key with its subscription check, JWT, rate limit, quota (last, so a refused request uses none). The
/// first refusal answers the request; the rest do not run.
/// </summary>
public sealed class PolicyChain
{
    private readonly RequestPolicy[] _policies;

    public PolicyChain(RequestPolicy[] policies)
    {
        ArgumentOutOfRangeException.ThrowIfZero(policies.Length);
        _policies = policies;
    }

    public IReadOnlyList<RequestPolicy> Policies => _policies;

    /// <summary>The policy of this kind in the chain, or null.</summary>
    public T? Find<T>() where T : RequestPolicy
    {
        foreach (RequestPolicy p in _policies)
        {
            if (p is T found)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>Runs the policies in order; completes synchronously, without allocating, when each of them does.</summary>
    public ValueTask<PolicyVerdict> RunAsync(RequestContext context, PolicyEnvironment environment)
    {
        for (int i = 0; i < _policies.Length; i++)
        {
            ValueTask<PolicyVerdict> check = _policies[i].CheckAsync(context, environment);
            if (!check.IsCompletedSuccessfully)
            {
                return RunRestAsync(check, context, environment, i);
            }

            PolicyVerdict verdict = check.Result;
            if (!verdict.Passed)
            {
                return new ValueTask<PolicyVerdict>(verdict);
            }
        }

        return new ValueTask<PolicyVerdict>(PolicyVerdict.Pass);
    }

    private async ValueTask<PolicyVerdict> RunRestAsync(ValueTask<PolicyVerdict> pending, RequestContext context, PolicyEnvironment environment, int index)
    {
        PolicyVerdict verdict = await pending.ConfigureAwait(false);
        for (int i = index + 1; verdict.Passed && i < _policies.Length; i++)
        {
            verdict = await _policies[i].CheckAsync(context, environment).ConfigureAwait(false);
        }

        return verdict;
    }
}

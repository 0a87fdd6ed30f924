using System.Net;
using Appliance.Server;

namespace Appliance.Policies;

/// <summary>
/// routes[].policies.access: which client addresses may use the route (nginx's allow/deny, Kong's ip-restriction).
/// An address in <see cref="Deny"/> is refused; with <see cref="Allow"/> given, so is every address outside it.
/// A deny entry wins over an allow entry, so "allow 10.0.0.0/8, deny 10.9.0.0/16" keeps one subnet out. The address
/// is the connection's peer (the PROXY protocol's client where the listener takes it); a Unix-socket client has
/// none and is refused where an allow list is given. 403 with a problem+json body.
/// </summary>
public sealed class AccessPolicy(IPNetwork[] allow, IPNetwork[] deny) : RequestPolicy
{
    private static readonly byte[] s_refused = ProblemDetails.Json(403, "The client's address may not use this route.");

    public override string Name => "access";

    public IReadOnlyList<IPNetwork> Allow => allow;

    public IReadOnlyList<IPNetwork> Deny => deny;

    public override ValueTask<PolicyVerdict> CheckAsync(RequestContext context, PolicyEnvironment environment) =>
        new(Permits(context.Connection.ClientAddress) ? PolicyVerdict.Pass : Refuse(403, s_refused));

    /// <summary>Whether the address may use the route (null: a Unix-socket client).</summary>
    public bool Permits(IPAddress? address)
    {
        if (address is null)
        {
            return allow.Length == 0;
        }

        foreach (IPNetwork network in deny)
        {
            if (network.Contains(address))
            {
                return false;
            }
        }

        if (allow.Length == 0)
        {
            return true;
        }

        foreach (IPNetwork network in allow)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The same networks in the same order (a config apply then keeps this policy and its refusal count).</summary>
    public bool SameSettings(AccessPolicy other) => allow.AsSpan().SequenceEqual(other.Allow.ToArray()) && deny.AsSpan().SequenceEqual(other.Deny.ToArray());
}

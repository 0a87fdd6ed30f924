using System.Collections.Frozen;
using Appliance.Server;

namespace Appliance.Routing;

/// <summary>
/// All routes, grouped by host like nginx server blocks: routes naming the exact host first, then those
/// naming a matching "*.suffix" wildcard, then host-less ones; inside a group, by order and path specificity.
/// Lookup works on the request's lowercased host bytes and allocates nothing.
/// </summary>
public sealed class RouteTable
{
    private readonly FrozenDictionary<string, RouteModel[]> _exact;
    private readonly FrozenDictionary<string, RouteModel[]>.AlternateLookup<ReadOnlySpan<char>> _exactLookup;
    private readonly FrozenDictionary<string, RouteModel[]> _wildcard;
    private readonly FrozenDictionary<string, RouteModel[]>.AlternateLookup<ReadOnlySpan<char>> _wildcardLookup;
    private readonly RouteModel[] _anyHost;

    public RouteTable(IReadOnlyList<RouteModel> routes)
    {
        Routes = routes;
        var exact = new Dictionary<string, List<RouteModel>>(StringComparer.OrdinalIgnoreCase);
        var wildcard = new Dictionary<string, List<RouteModel>>(StringComparer.OrdinalIgnoreCase);
        var any = new List<RouteModel>();
        foreach (RouteModel route in routes)
        {
            if (route.Hosts.Count == 0)
            {
                any.Add(route);
                continue;
            }

            foreach (string host in route.Hosts)
            {
                string h = host.ToLowerInvariant().TrimEnd('.');
                if (h.StartsWith("*.", StringComparison.Ordinal))
                {
                    Add(wildcard, h[2..], route);
                }
                else
                {
                    Add(exact, h, route);
                }
            }
        }

        _exact = exact.ToFrozenDictionary(kv => kv.Key, kv => Sort(kv.Value), StringComparer.OrdinalIgnoreCase);
        _wildcard = wildcard.ToFrozenDictionary(kv => kv.Key, kv => Sort(kv.Value), StringComparer.OrdinalIgnoreCase);
        _exactLookup = _exact.GetAlternateLookup<ReadOnlySpan<char>>();
        _wildcardLookup = _wildcard.GetAlternateLookup<ReadOnlySpan<char>>();
        _anyHost = Sort(any);

        static void Add(Dictionary<string, List<RouteModel>> map, string key, RouteModel route)
        {
            if (!map.TryGetValue(key, out List<RouteModel>? list))
            {
                map[key] = list = [];
            }

            if (!list.Contains(route))
            {
                list.Add(route);
            }
        }
    }

    public IReadOnlyList<RouteModel> Routes { get; }

    public static RouteModel[] Sort(IEnumerable<RouteModel> routes) =>
        routes.OrderBy(r => r.Order)
            .ThenBy(r => r.Path.Specificity.Kind)
            .ThenBy(r => r.Path.Specificity.Weight)
            .ThenBy(r => r.MethodMask == 0 ? 1 : 0)
            .ThenBy(r => r.Index)
            .ToArray();

    public enum MatchResult
    {
        Matched,
        NotFound,
        MethodNotAllowed,
    }

    /// <summary>Finds the route for the request; fills its route values. On MethodNotAllowed, <paramref name="allowed"/> has the methods the path accepts.</summary>
    [System.Runtime.CompilerServices.SkipLocalsInit] // chars is written before it is read
    public MatchResult Match(RequestContext context, out RouteModel? route, out uint allowed)
    {
        route = null;
        allowed = 0;
        ReadOnlySpan<byte> host = context.HostName;
        Span<char> chars = stackalloc char[256];
        bool pathMatched = false;
        if (host.Length is > 0 and <= 256 && (_exact.Count > 0 || _wildcard.Count > 0))
        {
            for (int i = 0; i < host.Length; i++)
            {
                chars[i] = (char)host[i];
            }

            ReadOnlySpan<char> name = chars[..host.Length];
            if (_exact.Count > 0 && _exactLookup.TryGetValue(name, out RouteModel[]? exactRoutes)
                && TryMatch(exactRoutes, context, ref route, ref allowed, ref pathMatched))
            {
                return MatchResult.Matched;
            }

            int dot = name.IndexOf('.');
            if (_wildcard.Count > 0 && dot > 0 && _wildcardLookup.TryGetValue(name[(dot + 1)..], out RouteModel[]? wildRoutes)
                && TryMatch(wildRoutes, context, ref route, ref allowed, ref pathMatched))
            {
                return MatchResult.Matched;
            }
        }

        if (TryMatch(_anyHost, context, ref route, ref allowed, ref pathMatched))
        {
            return MatchResult.Matched;
        }

        return pathMatched ? MatchResult.MethodNotAllowed : MatchResult.NotFound;
    }

    private static bool TryMatch(RouteModel[] routes, RequestContext context, ref RouteModel? route, ref uint allowed, ref bool pathMatched)
    {
        ReadOnlySpan<byte> path = context.Path;
        foreach (RouteModel r in routes)
        {
            if (!r.Path.TryMatch(path, null))
            {
                continue;
            }

            if (!r.AllowsMethod(context.Method, context.MethodToken))
            {
                pathMatched = true;
                allowed |= r.MethodMask;
                continue;
            }

            context.RouteValues.Clear();
            r.Path.TryMatch(path, context.RouteValues);
            route = r;
            return true;
        }

        return false;
    }
}

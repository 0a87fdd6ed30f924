using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using Appliance.Server;

namespace Appliance.Routing;

/// <summary>Matches the request against the current route table and runs the route's handler; 404/405 as problem+json.</summary>
public sealed class RouteDispatcher(Func<RouteTable> table) : IRequestDispatcher
{
    private static readonly byte[] s_notFound = ProblemDetails.Json(404, "No route matches this request.");

    private static readonly byte[] s_methodNotAllowed = ProblemDetails.Json(405, "The route does not accept this method.");

    public ValueTask DispatchAsync(RequestContext context)
    {
        switch (table().Match(context, out RouteModel? route, out uint allowed))
        {
            case RouteTable.MatchResult.Matched:
                context.Route = route;
                if (route!.Hsts is { } hsts && context.IsHttps)
                {
                    context.StrictTransportSecurity = hsts; // RFC 6797 §7.2: only over secure transport
                }

                return route.Handler.HandleAsync(context);
            case RouteTable.MatchResult.MethodNotAllowed:
                Span<byte> allow = stackalloc byte[128];
                int n = FormatAllow(allowed, allow);
                context.ResponseHeaders.Add(KnownHeader.None, "Allow"u8, allow[..n]);
                return Problem(context, 405, s_methodNotAllowed);
            default:
                return Problem(context, 404, s_notFound);
        }
    }

    private static ValueTask Problem(RequestContext context, int status, byte[] body)
    {
        // Drain a small body so the connection stays usable; Http1Connection closes on large ones.
        return context.RespondAsync(status, "application/problem+json"u8, body);
    }

    private static int FormatAllow(uint mask, Span<byte> destination)
    {
        int n = 0;
        for (int m = 1; m <= (int)HttpMethod.Connect; m++)
        {
            if ((mask & (1u << m)) == 0)
            {
                continue;
            }

            ReadOnlySpan<byte> name = HttpMethods.ToBytes((HttpMethod)m);
            if (n > 0)
            {
                ", "u8.CopyTo(destination[n..]);
                n += 2;
            }

            name.CopyTo(destination[n..]);
            n += name.Length;
        }

        return n;
    }
}

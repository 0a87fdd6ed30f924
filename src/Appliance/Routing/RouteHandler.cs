using Appliance.Server;

namespace Appliance.Routing;

/// <summary>What a matched route does with the request: direct, redirect, and later proxy, AI, MCP.</summary>
public abstract class RouteHandler
{
    public abstract ValueTask HandleAsync(RequestContext context);
}

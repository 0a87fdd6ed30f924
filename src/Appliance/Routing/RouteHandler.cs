using Appliance.Server;

namespace Appliance.Routing;

/// <summary>What a matched route does with the request: direct, redirect, and later proxy, AI, MCP.</summary>
public abstract class RouteHandler
{
    public abstract ValueTask HandleAsync(RequestContext context);

    /// <summary>
    /// The handler leaves the tokens an answer cost on the request (<see cref="RequestContext.InputTokens"/>,
    /// <see cref="RequestContext.OutputTokens"/>): the dispatcher adds them to the consumer's usage when it is done.
    /// </summary>
    public virtual bool CountsTokens => false;
}

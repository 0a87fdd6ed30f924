namespace Appliance.Server;

/// <summary>What the connection loops call for each parsed request: routing, policies and the handler live behind it.</summary>
public interface IRequestDispatcher
{
    ValueTask DispatchAsync(RequestContext context);
}

using System.Net.Sockets;
using Appliance.Config;
using Appliance.Routing;
using Appliance.Server;
using Appliance.Transport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Appliance.Hosting;

/// <summary>
/// Binds the listeners of the config and runs their accept loops; on stop (SIGTERM) stops accepting, lets
/// in-flight requests finish within server.shutdownTimeout, then closes what is left.
/// </summary>
public sealed class GatewayHost : IHostedService
{
    private readonly ILogger _logger;
    private readonly ConnectionRegistry _registry;
    private readonly List<SocketListener> _listeners = [];
    private volatile ConfigSnapshot _snapshot;

    public GatewayHost(ConfigSource source, ILoggerFactory loggers)
    {
        _logger = loggers.CreateLogger("appliance");
        _snapshot = source.Initial;
        _registry = new ConnectionRegistry(static now => DateHeader.Update(DateTimeOffset.UtcNow));
    }

    public ConfigSnapshot Snapshot => _snapshot;

    public IReadOnlyList<SocketListener> Listeners => _listeners;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        ConfigSnapshot snapshot = _snapshot;
        var dispatcher = new RouteDispatcher(() => _snapshot.Routes);
        try
        {
            foreach (ListenerModel model in snapshot.Listeners)
            {
                var runtime = new ListenerRuntime(model.Name, BuildState(model, snapshot, dispatcher));
                SocketListener listener = SocketListener.Bind(
                    new SocketListenerOptions(model.Name, model.EndPoint, model.Backlog, model.ReusePort, model.MaxConnections),
                    (socket, l) => new HttpConnection(socket, l, runtime, _registry, _logger).RunAsync(),
                    _logger);
                _listeners.Add(listener);
                _logger.LogInformation("listener {Name}: {Scheme}://{EndPoint}{Redirect}", model.Name, model.Tls ? "https" : "http",
                    listener.LocalEndPoint, model.RedirectToHttps ? $" (redirects to https port {model.HttpsPort})" : "");
            }
        }
        catch (SocketException e)
        {
            _logger.LogCritical("cannot bind a listener: {Error}", e.Message);
            throw;
        }

        foreach (SocketListener listener in _listeners)
        {
            listener.Start();
        }

        _logger.LogInformation("appliance {Version} ready: {Listeners} listener(s), {Routes} route(s), {Certificates} certificate(s)",
            Program.Version, _listeners.Count, snapshot.Routes.Routes.Count, snapshot.Certificates.Count);
        return Task.CompletedTask;
    }

    private static ListenerRuntime.State BuildState(ListenerModel model, ConfigSnapshot snapshot, IRequestDispatcher routes)
    {
        IRequestDispatcher dispatcher = model.RedirectToHttps ? new HttpsRedirectDispatcher(model.HttpsPort) : routes;
        return new ListenerRuntime.State(model.Certificates, model.Limits, dispatcher,
            Http2Enabled: model.Protocols.Contains(System.Net.Security.SslApplicationProtocol.Http2));
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (SocketListener listener in _listeners)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }

        _registry.RequestCloseAll();
        _logger.LogInformation("stopping: no new connections; waiting up to {Timeout} for {Count} connection(s)",
            Duration.Format(_snapshot.ShutdownTimeout), _registry.Count);
        using var deadline = new CancellationTokenSource(_snapshot.ShutdownTimeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        await _registry.DrainAsync(linked.Token).ConfigureAwait(false);
        _registry.Dispose();
        _logger.LogInformation("stopped");
    }
}

using System.Net;
using Appliance.Server;
using Appliance.Transport;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Tests.Support;

/// <summary>
/// A listener built in code (no config, no process) on a free loopback port, serving each connection it accepts as
/// an <see cref="HttpConnection"/> of <paramref name="runtime"/>: for tests that need their own handler or limits.
/// </summary>
internal static class CodeListener
{
    /// <param name="accepted">Sees each connection before it runs (tests that look at its state later).</param>
    public static SocketListener Start(ListenerRuntime runtime, ConnectionRegistry registry, Action<HttpConnection>? accepted = null,
        int backlog = 16, int maxConnections = 16)
    {
        SocketListener listener = SocketListener.Bind(
            new SocketListenerOptions(runtime.Name, new IPEndPoint(IPAddress.Loopback, 0), Backlog: backlog, ReusePort: false, MaxConnections: maxConnections),
            (socket, l) =>
            {
                var connection = new HttpConnection(socket, l, runtime, registry, NullLogger.Instance);
                accepted?.Invoke(connection);
                return connection.RunAsync();
            },
            NullLogger.Instance);
        listener.Start();
        return listener;
    }
}

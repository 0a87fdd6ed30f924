using System.Net;
using System.Net.Sockets;

namespace Appliance.Proxy;

/// <summary>
/// Keep-alive HTTP/1.1 connections to one destination: opened lazily, reused most-recent-first (warm sockets,
/// and the oldest age out), capped in number; past the cap a request is refused (503), never queued without
/// bound. Connections idle longer than the idle timeout, or closed by the upstream while idle, are dropped.
/// </summary>
internal sealed class Http1UpstreamPool : IDisposable
{
    private readonly Stack<UpstreamConnection> _idle = new();
    private readonly object _lock = new();
    private readonly string _host;
    private readonly int _port;
    private readonly IPAddress? _address;
    private readonly int _maxConnections;
    private readonly UpstreamTimeouts _timeouts;
    private int _open;
    private bool _disposed;

    private readonly UpstreamTlsOptions? _tls;

    public Http1UpstreamPool(string host, int port, int maxConnections, UpstreamTimeouts timeouts, UpstreamTlsOptions? tls = null)
    {
        _tls = tls;
        _host = host;
        _port = port;
        _address = IPAddress.TryParse(host.Trim('[', ']'), out IPAddress? ip) ? ip : null;
        _maxConnections = maxConnections;
        _timeouts = timeouts;
    }

    public int OpenConnections => Volatile.Read(ref _open);

    /// <summary>An idle connection, a new one, or null when the destination is at its connection cap.</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<UpstreamConnection?> RentAsync(CancellationToken cancellationToken)
    {
        long now = Environment.TickCount64;
        lock (_lock)
        {
            while (_idle.TryPop(out UpstreamConnection? idle))
            {
                long idleFor = now - idle.LastUsed;
                // Probing the socket costs a poll(2); only connections idle for a while are worth it (the retry on a
                // stale connection covers the rest).
                if (idleFor < (long)_timeouts.Idle.TotalMilliseconds && (idleFor < 1000 || !idle.LooksClosed))
                {
                    return idle;
                }

                _open--;
                idle.Dispose();
            }

            if (_open >= _maxConnections)
            {
                return null;
            }

            _open++;
        }

        try
        {
            return await ConnectAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            lock (_lock)
            {
                _open--;
            }

            throw;
        }
    }

    private async Task<UpstreamConnection> ConnectAsync(CancellationToken cancellationToken)
    {
        (Socket socket, Stream stream, _) = await UpstreamConnector.ConnectAsync(_host, _port, _address, _tls,
            System.Net.Security.SslApplicationProtocol.Http11, _timeouts.Connect, cancellationToken).ConfigureAwait(false);
        return new UpstreamConnection(socket, stream);
    }

    public void Return(UpstreamConnection connection, bool reusable)
    {
        lock (_lock)
        {
            if (reusable && !_disposed)
            {
                connection.LastUsed = Environment.TickCount64;
                _idle.Push(connection);
                return;
            }

            _open--;
        }

        connection.Dispose();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            while (_idle.TryPop(out UpstreamConnection? c))
            {
                _open--;
                c.Dispose();
            }
        }
    }
}

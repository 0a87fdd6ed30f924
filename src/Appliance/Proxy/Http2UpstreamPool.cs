using System.Net;
using System.Net.Security;

namespace Appliance.Proxy;

/// <summary>
/// Multiplexed HTTP/2 connections to one destination: a request takes a stream slot on the first connection the
/// upstream's SETTINGS_MAX_CONCURRENT_STREAMS allows, a new connection is opened (lazily, one at a time) only when
/// all are full, and past the connection cap the request is refused (503), never queued without bound. Over TLS
/// the upstream must choose h2 by ALPN; without TLS it is spoken with prior knowledge (h2c).
/// </summary>
internal sealed class Http2UpstreamPool : IDisposable
{
    private readonly List<Http2UpstreamConnection> _connections = [];
    private readonly Lock _lock = new();
    private readonly string _host;
    private readonly int _port;
    private readonly IPAddress? _address;
    private readonly int _maxConnections;
    private readonly UpstreamTimeouts _timeouts;
    private readonly UpstreamTlsOptions? _tls;
    private Task<Http2UpstreamConnection>? _connecting;
    private bool _disposed;

    public Http2UpstreamPool(string host, int port, int maxConnections, UpstreamTimeouts timeouts, UpstreamTlsOptions? tls)
    {
        _host = host;
        _port = port;
        _address = IPAddress.TryParse(host.Trim('[', ']'), out IPAddress? ip) ? ip : null;
        _maxConnections = maxConnections;
        _timeouts = timeouts;
        _tls = tls;
    }

    public int OpenConnections
    {
        get
        {
            lock (_lock)
            {
                return _connections.Count;
            }
        }
    }

    /// <summary>A connection with a stream slot reserved for the caller, or null when every allowed connection is full.</summary>
    public async ValueTask<Http2UpstreamConnection?> RentAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task<Http2UpstreamConnection>? connecting;
            bool mine = false;
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                long now = Environment.TickCount64;
                for (int i = _connections.Count - 1; i >= 0; i--)
                {
                    Http2UpstreamConnection c = _connections[i];
                    if (c.IsFinished || (c.ActiveStreams == 0 && now - c.LastUsed > (long)_timeouts.Idle.TotalMilliseconds))
                    {
                        _connections.RemoveAt(i);
                        c.Dispose();
                    }
                }

                foreach (Http2UpstreamConnection c in _connections)
                {
                    if (c.TryReserve())
                    {
                        return c;
                    }
                }

                connecting = _connecting;
                if (connecting is null)
                {
                    if (_connections.Count >= _maxConnections)
                    {
                        return null;
                    }

                    connecting = _connecting = ConnectAsync(cancellationToken);
                    mine = true;
                }
            }

            Http2UpstreamConnection connection;
            try
            {
                connection = await connecting.ConfigureAwait(false);
            }
            finally
            {
                if (mine)
                {
                    lock (_lock)
                    {
                        _connecting = null;
                        if (connecting.IsCompletedSuccessfully)
                        {
                            if (_disposed)
                            {
                                connecting.Result.Dispose();
                            }
                            else
                            {
                                _connections.Add(connecting.Result);
                            }
                        }
                    }
                }
            }

            if (connection.TryReserve())
            {
                return connection;
            }
        }
    }

    private async Task<Http2UpstreamConnection> ConnectAsync(CancellationToken cancellationToken)
    {
        await Task.Yield(); // the caller registers the task before it can complete
        (System.Net.Sockets.Socket socket, Stream stream, SslApplicationProtocol alpn) = await UpstreamConnector.ConnectAsync(
            _host, _port, _address, _tls, SslApplicationProtocol.Http2, _timeouts.Connect, cancellationToken).ConfigureAwait(false);
        if (_tls is not null && alpn != SslApplicationProtocol.Http2)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw new UpstreamTlsException($"{_host}:{_port} did not choose h2 by ALPN");
        }

        return new Http2UpstreamConnection(socket, stream, tls: _tls is not null);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (Http2UpstreamConnection c in _connections)
            {
                c.Dispose();
            }

            _connections.Clear();
        }
    }
}

using System.Net;
using System.Net.Sockets;
using Appliance.Telemetry;

namespace Appliance.Proxy;

/// <summary>
/// Keep-alive HTTP/1.1 connections to one destination: opened lazily, reused most-recent-first (warm sockets,
/// and the oldest age out), capped in number; past the cap a request is refused (503), never queued without
/// bound. Connections idle longer than the idle timeout, or closed by the upstream while idle, are dropped.
/// </summary>
internal sealed class Http1UpstreamPool : IDisposable
{
    /// <summary>Idle connections, most recently used last.</summary>
    private readonly List<UpstreamConnection> _idle = [];

    /// <summary>How far back from the most recent idle connection a rental looks for one on its own event thread.</summary>
    private const int AffinityScan = 8;
    private Appliance.Tls.SpinGate _lock; // both loops take it twice per request; nothing under it takes it again (not readonly: a struct)
    private readonly string _host;
    private readonly int _port;
    private readonly IPAddress? _address;
    private readonly int _maxConnections;
    private readonly int _maxPending;
    private readonly Queue<TaskCompletionSource> _waiters = new();
    private int _pending;
    private readonly UpstreamTimeouts _timeouts;
    private int _open;
    private bool _disposed;

    private readonly UpstreamTlsOptions? _tls;

    public Http1UpstreamPool(string host, int port, int maxConnections, UpstreamTimeouts timeouts, UpstreamTlsOptions? tls = null, int maxPending = 0)
    {
        _maxPending = maxPending;
        _tls = tls;
        _host = host;
        _port = port;
        _address = IPAddress.TryParse(host.Trim('[', ']'), out IPAddress? ip) ? ip : null;
        _maxConnections = maxConnections;
        _timeouts = timeouts;
    }

    public int OpenConnections => Volatile.Read(ref _open);

    /// <summary>Requests waiting for a connection at the cap.</summary>
    public int PendingRequests => Volatile.Read(ref _pending);

    /// <summary>
    /// An idle connection or a new one. At the connection cap the request waits for one to come back, up to the
    /// cluster's pending limit and for at most the connect timeout (Envoy's max_pending_requests); past either it
    /// gets null (503).
    /// </summary>
    public ValueTask<UpstreamConnection?> RentAsync(CancellationToken cancellationToken)
    {
        UpstreamConnection? connection = TryRentOrReserve(out bool reserved);
        return connection is not null
            ? new ValueTask<UpstreamConnection?>(connection) // the usual case, an idle one: no async frame
            : RentSlowAsync(reserved, cancellationToken);
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(Appliance.Runtime.PooledValueTaskMethodBuilder<>))]
    private async ValueTask<UpstreamConnection?> RentSlowAsync(bool reserved, CancellationToken cancellationToken)
    {
        UpstreamConnection? connection = null;
        if (!reserved)
        {
            (connection, reserved) = await WaitForCapacityAsync().ConfigureAwait(false);
        }

        if (connection is not null || !reserved)
        {
            return connection;
        }

        try
        {
            return await ConnectAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            ReleaseSlot();
            throw;
        }
    }

    /// <summary>Waits in line for a returned connection or a free slot; (null, false) when the line is full or the wait times out.</summary>
    private async ValueTask<(UpstreamConnection?, bool)> WaitForCapacityAsync()
    {
        long deadline = Environment.TickCount64 + (long)_timeouts.Connect.TotalMilliseconds;
        while (true)
        {
            TaskCompletionSource wait;
            _lock.Enter();
            try
            {
                if (_pending >= _maxPending)
                {
                    return (null, false);
                }

                _pending++;
                wait = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Enqueue(wait);
            }
            finally
            {
                _lock.Exit();
            }

            long left = deadline - Environment.TickCount64;
            bool signalled = left > 0 && await Task.WhenAny(wait.Task, Task.Delay((int)left)).ConfigureAwait(false) == wait.Task;
            _lock.Enter();
            try
            {
                _pending--;
            }
            finally
            {
                _lock.Exit();
            }

            if (!signalled)
            {
                wait.TrySetCanceled(); // its turn, if it comes, passes to the next in line
                LimitCounters.Increment("upstream_pending_timeout");
                return (null, false);
            }

            UpstreamConnection? connection = TryRentOrReserve(out bool reserved);
            if (connection is not null || reserved)
            {
                return (connection, reserved);
            }
        }
    }

    /// <summary>Wakes the first waiter still waiting: a connection came back or a slot was freed.</summary>
    private void WakeOneLocked()
    {
        while (_waiters.TryDequeue(out TaskCompletionSource? waiter))
        {
            if (waiter.TrySetResult())
            {
                return;
            }
        }
    }

    private void ReleaseSlot()
    {
        _lock.Enter();
        try
        {
            _open--;
            WakeOneLocked();
        }
        finally
        {
            _lock.Exit();
        }
    }

    /// <summary>An idle connection, or a reserved slot to open one (<paramref name="reserved"/>), or neither at the cap.</summary>
    private UpstreamConnection? TryRentOrReserve(out bool reserved)
    {
        reserved = false;
        while (true)
        {
            UpstreamConnection? idle;
            _lock.Enter();
            try
            {
                idle = TakeIdleLocked();
                if (idle is null)
                {
                    if (_open >= _maxConnections)
                    {
                        return null;
                    }

                    _open++;
                    reserved = true;
                    return null;
                }
            }
            finally
            {
                _lock.Exit();
            }

            // Out of the lock, which both loops take on every request: the connection is this caller's alone now.
            // Probing the socket costs a poll(2); only connections idle for a while are worth it (the retry on a
            // stale connection covers the rest).
            long idleFor = Transport.LoopClock.Milliseconds - idle.LastUsed;
            if (idleFor < (long)_timeouts.Idle.TotalMilliseconds && (idleFor < 1000 || !idle.LooksClosed))
            {
                return idle;
            }

            idle.Dispose();
            _lock.Enter();
            _open--; // its slot is free: the next turn takes another idle connection or reserves one
            _lock.Exit();
        }
    }

    /// <summary>
    /// The most recently used idle connection whose socket events arrive on this thread, among the last few, else the
    /// most recent one. With inline completions a request runs on its client socket's event thread; an upstream
    /// connection on the same thread keeps the whole exchange there (no cross-thread wake-ups or cache traffic).
    /// </summary>
    private UpstreamConnection? TakeIdleLocked()
    {
        int last = _idle.Count - 1;
        if (last < 0)
        {
            return null;
        }

        int thread = Environment.CurrentManagedThreadId;
        int pick = last;
        for (int i = last; i >= 0 && i > last - AffinityScan; i--)
        {
            if (_idle[i].EventThread == thread)
            {
                pick = i;
                break;
            }
        }

        UpstreamConnection connection = _idle[pick];
        _idle.RemoveAt(pick);
        return connection;
    }

    private async Task<UpstreamConnection> ConnectAsync(CancellationToken cancellationToken)
    {
        (Socket socket, Stream stream, _) = await UpstreamConnector.ConnectAsync(_host, _port, _address, _tls,
            System.Net.Security.SslApplicationProtocol.Http11, _timeouts.Connect, cancellationToken).ConfigureAwait(false);
        return new UpstreamConnection(socket, stream);
    }

    public void Return(UpstreamConnection connection, bool reusable)
    {
        _lock.Enter();
        try
        {
            if (reusable && !_disposed)
            {
                connection.LastUsed = Transport.LoopClock.Milliseconds;
                _idle.Add(connection);
                WakeOneLocked();
                return;
            }

            _open--;
            WakeOneLocked();
        }
        finally
        {
            _lock.Exit();
        }

        connection.Dispose();
    }

    public void Dispose()
    {
        List<UpstreamConnection> idle = [];
        _lock.Enter();
        try
        {
            _disposed = true;
            while (TakeIdleLocked() is { } c)
            {
                _open--;
                idle.Add(c);
            }
        }
        finally
        {
            _lock.Exit();
        }

        foreach (UpstreamConnection c in idle)
        {
            c.Dispose(); // out of the lock: closing sockets and freeing TLS state is not for a lock the loops spin on
        }
    }
}

using System.Collections.Concurrent;

namespace Appliance.Transport;

/// <summary>
/// Every live connection of the process, and the one-second heartbeat that enforces their deadlines.
/// Shutdown asks each to drain and waits until the set is empty or the deadline passes.
/// </summary>
public sealed class ConnectionRegistry : IDisposable
{
    private readonly ConcurrentDictionary<long, TrackedConnection> _connections = new();
    private readonly Timer _timer;
    private readonly Action<long>? _tick;
    private TaskCompletionSource? _emptied;

    public ConnectionRegistry(Action<long>? onTick = null, TimeSpan? period = null)
    {
        _tick = onTick;
        TimeSpan p = period ?? TimeSpan.FromSeconds(1);
        _timer = new Timer(static s => ((ConnectionRegistry)s!).Heartbeat(), this, p, p);
    }

    public int Count => _connections.Count;

    /// <summary>The connections now (tests).</summary>
    internal IEnumerable<TrackedConnection> Live => _connections.Values;

    public bool IsDraining => Volatile.Read(ref _emptied) is not null;

    public void Add(TrackedConnection connection)
    {
        _connections[connection.Id] = connection;
        if (IsDraining)
        {
            connection.RequestClose(); // accepted just before the listeners closed
        }
    }

    public void Remove(TrackedConnection connection)
    {
        _connections.TryRemove(connection.Id, out _);
        if (_connections.IsEmpty)
        {
            Volatile.Read(ref _emptied)?.TrySetResult();
        }
    }

    /// <summary>Asks every connection to finish what is in flight and close (responses get Connection: close).</summary>
    public void RequestCloseAll()
    {
        Interlocked.CompareExchange(ref _emptied, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), null);
        foreach (TrackedConnection c in _connections.Values)
        {
            c.RequestClose();
        }

        if (_connections.IsEmpty)
        {
            _emptied!.TrySetResult();
        }
    }

    /// <summary>Asks the connections of one listener (removed by a reload) to finish and close.</summary>
    public void RequestClose(string listenerName)
    {
        foreach (TrackedConnection c in _connections.Values)
        {
            if (c.ListenerName == listenerName)
            {
                c.RequestClose();
            }
        }
    }

    /// <summary>Drains: completes when every connection has gone, or aborts the rest when the token fires.</summary>
    public async Task DrainAsync(CancellationToken deadline)
    {
        RequestCloseAll();
        try
        {
            await _emptied!.Task.WaitAsync(deadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            foreach (TrackedConnection c in _connections.Values)
            {
                c.Abort("shutdown deadline reached");
            }
        }
    }

    private void Heartbeat()
    {
        long now = Environment.TickCount64;
        _tick?.Invoke(now);
        foreach (KeyValuePair<long, TrackedConnection> entry in _connections)
        {
            try
            {
                entry.Value.OnHeartbeat(now);
            }
            catch (Exception)
            {
                // A connection's timeout handling must never stop the heartbeat for the others.
            }
        }
    }

    public void Dispose() => _timer.Dispose();
}

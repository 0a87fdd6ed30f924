using Microsoft.Extensions.Logging;

namespace Appliance.Telemetry;

/// <summary>
/// The last lines the appliance logged (Information and above), kept in memory for <c>GET /v1/logs</c> and
/// <c>appliance ctl logs tail</c>: an operator sees what happened without reaching journald. A ring of fixed size;
/// followers wait on <see cref="Appended"/> for the next line.
/// </summary>
public sealed class RecentLogs
{
    private readonly string[] _ring;
    private readonly object _lock = new();
    private long _next;
    private TaskCompletionSource _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public RecentLogs(int capacity = 2000) => _ring = new string[capacity];

    /// <summary>The sequence number the next line will get.</summary>
    public long Next
    {
        get
        {
            lock (_lock)
            {
                return _next;
            }
        }
    }

    /// <summary>Completes when a line is added after this call.</summary>
    public Task Appended
    {
        get
        {
            lock (_lock)
            {
                return _appended.Task;
            }
        }
    }

    public void Append(string line)
    {
        TaskCompletionSource appended;
        lock (_lock)
        {
            _ring[_next % _ring.Length] = line;
            _next++;
            appended = _appended;
            _appended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        appended.TrySetResult();
    }

    /// <summary>The lines from sequence <paramref name="from"/> on (or the oldest kept); returns the sequence after the last.</summary>
    public long Read(long from, List<string> into)
    {
        lock (_lock)
        {
            long start = Math.Max(from, Math.Max(0, _next - _ring.Length));
            for (long i = start; i < _next; i++)
            {
                into.Add(_ring[i % _ring.Length]);
            }

            return _next;
        }
    }

    /// <summary>A logger that writes to <paramref name="inner"/> and keeps a copy of each Information+ line here.</summary>
    public ILogger Tee(ILogger inner) => new TeeLogger(inner, this);

    private sealed class TeeLogger(ILogger inner, RecentLogs recent) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information || inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (inner.IsEnabled(logLevel))
            {
                inner.Log(logLevel, eventId, state, exception, formatter);
            }

            if (logLevel >= LogLevel.Information)
            {
                string level = logLevel switch
                {
                    LogLevel.Information => "info",
                    LogLevel.Warning => "warn",
                    LogLevel.Error => "fail",
                    _ => "crit",
                };
                string message = formatter(state, exception);
                recent.Append(exception is null
                    ? $"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {level} {message}"
                    : $"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {level} {message}: {exception.GetType().Name}: {exception.Message}");
            }
        }
    }
}

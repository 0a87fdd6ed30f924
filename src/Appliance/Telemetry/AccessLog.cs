using System.Diagnostics;
using Appliance.Server;
using Microsoft.Extensions.Logging;

namespace Appliance.Telemetry;

/// <summary>
/// The access log (server.accessLog): one line per completed request. A request's thread formats its line into a
/// thread-local buffer and copies it into a bounded queue (bytes, under a short lock); a single background thread
/// writes what has queued up in one write per batch (every 32 KiB, or 200 ms after the first line), rotates the file past maxSize (LZ4 segments are compressed on a
/// thread of their own), and reopens it on demand (SIGUSR1, the admin API). A full queue drops the line and counts it
/// (<c>access_log_dropped_total</c>): a slow disk never holds a request up. One per host, for its lifetime; a reload
/// hands it new options.
/// </summary>
public sealed class AccessLog : IAsyncDisposable
{
    /// <summary>Queued bytes beyond which lines are dropped.</summary>
    public const int MaxQueuedBytes = 4 << 20;

    private const int InitialQueueBytes = 64 << 10;

    /// <summary>Queued bytes that wake the writer at once; below them it writes every <see cref="WriteInterval"/>.</summary>
    private const int WakeBytes = 32 << 10;

    /// <summary>
    /// How long a line may wait in the queue (nginx's access_log flush=): waking the writer for every line would cost
    /// a request a futex call; this way a busy server pays one wake per 32 KiB and an idle one none.
    /// </summary>
    private static readonly TimeSpan WriteInterval = TimeSpan.FromMilliseconds(200);

    [ThreadStatic]
    private static byte[]? t_line;

    private static readonly List<TaskCompletionSource<string?>> s_noReopens = [];
    private static readonly List<TaskCompletionSource> s_noFlushes = [];

    private readonly object _lock = new();
    private readonly ILogger? _logger;
    private readonly AccessLogSegments _segments;
    private volatile AccessLogOptions? _options;

    // Guarded by _lock.
    private byte[] _queue = new byte[InitialQueueBytes];
    private byte[] _spare = new byte[InitialQueueBytes];
    private int _queued;
    private long _lines;
    private long _dropped;
    private (AccessLogOptions? Options, FileStream? File)? _switchTo;
    private List<TaskCompletionSource<string?>>? _reopens;
    private List<TaskCompletionSource>? _flushes;
    private bool _stopping;
    private Thread? _thread;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // The writer thread's own.
    private AccessLogOptions? _writing;
    private FileStream? _file;
    private long _size;

    public AccessLog(ILogger? logger = null)
    {
        _logger = logger;
        _segments = new AccessLogSegments(logger);
    }

    /// <summary>The options in force; null when requests are not logged.</summary>
    public AccessLogOptions? Options => _options;

    /// <summary>Lines accepted into the queue since start.</summary>
    public long Lines => Interlocked.Read(ref _lines);

    /// <summary>Lines dropped because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>
    /// Applies server.accessLog (null: stop logging). A changed path is opened here, on the caller's thread, so a
    /// file that cannot be opened is the caller's error (start fails, a reload is refused) and the log stays as it was.
    /// Lines queued before the change are written to the file they were meant for.
    /// </summary>
    /// <exception cref="IOException">The file cannot be created or opened for appending.</exception>
    /// <exception cref="UnauthorizedAccessException">Permission denied.</exception>
    public void Configure(AccessLogOptions? options)
    {
        AccessLogOptions? current = _options;
        if (Equals(current, options))
        {
            return;
        }

        FileStream? file = options is null ? null : Open(options.Path);
        lock (_lock)
        {
            if (_switchTo is { File: { } unused })
            {
                unused.Dispose(); // two changes before the writer woke: the last one wins
            }

            _switchTo = (options, file);
            if (options is not null && _thread is null && !_stopping)
            {
                _thread = new Thread(WriterLoop) { IsBackground = true, Name = "access-log" };
                _thread.Start();
            }

            _options = options;
            Monitor.Pulse(_lock);
        }

        if (options is not null && options.Lz4)
        {
            _segments.Resume(options); // segments a crash left uncompressed
        }
    }

    // ---------------- the request's side ----------------

    /// <summary>Logs a completed request, unless the log is off or the route asked for none. Never blocks on I/O.</summary>
    /// <param name="streamId">HTTP/2 stream id; 0 on HTTP/1.x.</param>
    public void Record(RequestContext context, int streamId, long requestBodyBytes)
    {
        AccessLogOptions? options = _options;
        if (options is null || context.SkipAccessLog)
        {
            return;
        }

        long end = Stopwatch.GetTimestamp();
        int max = AccessLogFormatter.MaxLength(context);
        byte[] line = t_line is { } buffer && buffer.Length >= max ? buffer : (t_line = new byte[Math.Max(max, 8192)]);
        int length = AccessLogFormatter.Format(options.Format, context, streamId, requestBodyBytes, end, DateTime.UtcNow, line);
        Enqueue(line.AsSpan(0, length));
    }

    private void Enqueue(ReadOnlySpan<byte> line)
    {
        lock (_lock)
        {
            if (_queued + line.Length > _queue.Length)
            {
                if (_queued + line.Length > MaxQueuedBytes || _stopping)
                {
                    _dropped++;
                    return;
                }

                // Grows to the bound once; steady state reuses the two buffers.
                Array.Resize(ref _queue, Math.Min(MaxQueuedBytes, Math.Max(_queue.Length * 2, _queued + line.Length)));
            }

            line.CopyTo(_queue.AsSpan(_queued));
            bool wake = _queued < WakeBytes && _queued + line.Length >= WakeBytes;
            _queued += line.Length;
            _lines++;
            if (wake)
            {
                Monitor.Pulse(_lock);
            }
        }
    }

    // ---------------- commands ----------------

    /// <summary>Completes when every line queued before the call is in the file (and rotated segments are compressed).</summary>
    public async Task FlushAsync()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_thread is null)
            {
                return;
            }

            (_flushes ??= []).Add(done);
            Monitor.Pulse(_lock);
        }

        await done.Task.ConfigureAwait(false);
        await _segments.IdleAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Closes and opens the file again by its path (what logrotate's postrotate asks nginx with SIGUSR1): after a
    /// rename, new lines go to a new file. Returns the path, or null when the log is off; throws when it cannot be opened.
    /// </summary>
    public async Task<string?> ReopenAsync()
    {
        var done = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_thread is null || _options is null)
            {
                return null;
            }

            (_reopens ??= []).Add(done);
            Monitor.Pulse(_lock);
        }

        return await done.Task.ConfigureAwait(false);
    }

    /// <summary>Writes everything queued, closes the file and ends the writer (shutdown).</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            _stopping = true;
            _options = null;
            if (_thread is null)
            {
                _stopped.TrySetResult();
            }

            Monitor.Pulse(_lock);
        }

        await _stopped.Task.ConfigureAwait(false);
        await _segments.IdleAsync().ConfigureAwait(false);
    }

    // ---------------- the writer thread ----------------

    private void WriterLoop()
    {
        while (true)
        {
            byte[] batch;
            int length;
            (AccessLogOptions? Options, FileStream? File)? switchTo;
            List<TaskCompletionSource<string?>>? reopens;
            List<TaskCompletionSource>? flushes;
            bool stopping;
            lock (_lock)
            {
                while (_queued < WakeBytes && _switchTo is null && _reopens is null && _flushes is null && !_stopping)
                {
                    if (!Monitor.Wait(_lock, WriteInterval) && _queued > 0)
                    {
                        break; // the interval is up: write what there is
                    }
                }

                batch = _queue;
                length = _queued;
                (_queue, _spare) = (_spare, _queue);
                _queued = 0;
                switchTo = _switchTo;
                reopens = _reopens;
                flushes = _flushes;
                stopping = _stopping;
                _switchTo = null;
                _reopens = null;
                _flushes = null;
            }

            if (length > 0)
            {
                Write(batch.AsSpan(0, length));
            }

            if (switchTo is { } s)
            {
                _file?.Dispose();
                _file = s.File;
                _writing = s.Options;
                _size = _file?.Length ?? 0;
            }

            foreach (TaskCompletionSource<string?> reopen in reopens ?? s_noReopens)
            {
                try
                {
                    Reopen();
                    reopen.TrySetResult(_writing?.Path);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    reopen.TrySetException(e);
                }
            }

            foreach (TaskCompletionSource flush in flushes ?? s_noFlushes)
            {
                flush.TrySetResult();
            }

            if (stopping)
            {
                _file?.Dispose();
                _file = null;
                _stopped.TrySetResult();
                return;
            }
        }
    }

    private void Write(ReadOnlySpan<byte> lines)
    {
        while (!lines.IsEmpty)
        {
            if (_file is null || _writing is not { } o)
            {
                return; // logging was turned off with lines still queued for no file, or the file could not be reopened
            }

            // The file's end as it is now, not where this handle last wrote (.NET opens without O_APPEND): another
            // handle on the same file (a reload's) or a copytruncate may have moved it. Rotation happens between
            // lines: the file takes lines up to the one that passes maxSize.
            int take = lines.Length;
            try
            {
                _size = RandomAccess.GetLength(_file.SafeFileHandle);
                if (o.MaxSize > 0 && _size + lines.Length >= o.MaxSize)
                {
                    int crossing = (int)Math.Max(0, o.MaxSize - _size - 1);
                    int newline = lines[crossing..].IndexOf((byte)'\n');
                    take = newline < 0 ? lines.Length : crossing + newline + 1;
                }

                RandomAccess.Write(_file.SafeFileHandle, lines[..take], _size);
                _size += take;
            }
            catch (IOException e)
            {
                lock (_lock)
                {
                    _dropped += Count(lines[..take]);
                }

                _logger?.LogWarning("access log: cannot write {Path}: {Error}", o.Path, e.Message);
            }

            lines = lines[take..];
            if (o.MaxSize > 0 && _size >= o.MaxSize)
            {
                Rotate();
            }
        }
    }

    private static long Count(ReadOnlySpan<byte> lines) => lines.Count((byte)'\n');

    private void Rotate()
    {
        AccessLogOptions o = _writing!;
        _file!.Dispose();
        _file = null;
        try
        {
            _segments.Rotate(o);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger?.LogWarning("access log: rotating {Path} failed: {Error}", o.Path, e.Message);
        }

        try
        {
            _file = Open(o.Path);
            _size = _file.Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger?.LogError("access log: cannot open {Path} after rotation: {Error}", o.Path, e.Message);
        }
    }

    private void Reopen()
    {
        if (_writing is not { } o)
        {
            return;
        }

        FileStream file = Open(o.Path); // throws: the old file stays in use
        _file?.Dispose();
        _file = file;
        _size = file.Length;
        _logger?.LogInformation("access log: reopened {Path}", o.Path);
    }

    private static FileStream Open(string path)
    {
        if (System.IO.Path.GetDirectoryName(path) is { Length: > 0 } directory)
        {
            Directory.CreateDirectory(directory);
        }

        // Unbuffered: the writer hands over whole batches. Others may read, rename or delete the file meanwhile.
        return new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Append,
            Access = FileAccess.Write,
            Share = FileShare.ReadWrite | FileShare.Delete,
            BufferSize = 0,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead,
        });
    }
}

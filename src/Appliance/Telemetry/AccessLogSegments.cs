using System.Globalization;
using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;
using Microsoft.Extensions.Logging;

namespace Appliance.Telemetry;

/// <summary>
/// The access log's rotated files, named as logrotate names them: <c>access.log.1</c> is the newest, older ones shift
/// up, and the one past maxFiles is deleted. With compression the live file is renamed aside
/// (<c>access.log.rotating.N</c>, a rename only, so the writer goes on at once) and a thread of its own writes it as
/// an LZ4 frame, <c>access.log.1.lz4</c> (the format the <c>lz4</c> CLI reads), then deletes it. A segment left aside
/// by a crash is compressed at the next start.
/// </summary>
internal sealed class AccessLogSegments(ILogger? logger)
{
    private const string Aside = ".rotating.";

    private readonly object _lock = new();
    private readonly HashSet<string> _queued = new(StringComparer.Ordinal);
    private Task _tail = Task.CompletedTask;
    private long _sequence;

    /// <summary>Completes when no compression is running or queued.</summary>
    public Task IdleAsync()
    {
        lock (_lock)
        {
            return _tail;
        }
    }

    /// <summary>Moves the live file (closed by the caller) out of the way.</summary>
    public void Rotate(AccessLogOptions o)
    {
        if (!File.Exists(o.Path))
        {
            return; // moved away by someone else meanwhile
        }

        if (!o.Lz4)
        {
            Shift(o.Path, "", o.MaxFiles);
            File.Move(o.Path, o.Path + ".1");
            return;
        }

        string aside;
        do
        {
            aside = o.Path + Aside + Interlocked.Increment(ref _sequence).ToString(CultureInfo.InvariantCulture);
        }
        while (File.Exists(aside));

        File.Move(o.Path, aside);
        Queue(o, aside);
    }

    /// <summary>Queues segments left aside (by a crash, or an appliance stopped mid-compression), oldest first.</summary>
    public void Resume(AccessLogOptions o)
    {
        string? directory = Path.GetDirectoryName(o.Path);
        if (directory is null || !Directory.Exists(directory))
        {
            return;
        }

        string prefix = Path.GetFileName(o.Path) + Aside;
        var found = new List<(long Sequence, string Path)>();
        foreach (string file in Directory.EnumerateFiles(directory, prefix + "*"))
        {
            if (long.TryParse(Path.GetFileName(file).AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long n))
            {
                found.Add((n, file));
                InterlockedMax(ref _sequence, n);
            }
        }

        foreach ((_, string file) in found.OrderBy(f => f.Sequence))
        {
            Queue(o, file);
        }
    }

    private void Queue(AccessLogOptions o, string aside)
    {
        lock (_lock)
        {
            if (!_queued.Add(aside))
            {
                return;
            }

            _tail = _tail.ContinueWith(_ => Compress(o, aside), CancellationToken.None, TaskContinuationOptions.LongRunning, TaskScheduler.Default);
        }
    }

    private void Compress(AccessLogOptions o, string aside)
    {
        string temporary = o.Path + ".1.lz4.tmp";
        try
        {
            using (FileStream input = new(aside, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
            using (FileStream output = new(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            using (LZ4EncoderStream lz4 = LZ4Stream.Encode(output, new LZ4EncoderSettings { CompressionLevel = LZ4Level.L00_FAST, ContentChecksum = true }))
            {
                input.CopyTo(lz4, 1 << 16);
            }

            Shift(o.Path, ".lz4", o.MaxFiles);
            File.Move(temporary, o.Path + ".1.lz4");
            File.Delete(aside);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger?.LogWarning("access log: compressing {Segment} failed (kept as it is): {Error}", aside, e.Message);
            File.Delete(temporary);
        }
        finally
        {
            lock (_lock)
            {
                _queued.Remove(aside);
            }
        }
    }

    /// <summary>path.N → deleted (N = maxFiles), path.(i) → path.(i+1): path.1 is free after.</summary>
    private static void Shift(string path, string suffix, int maxFiles)
    {
        File.Delete($"{path}.{maxFiles}{suffix}");
        for (int i = maxFiles - 1; i >= 1; i--)
        {
            string from = $"{path}.{i}{suffix}";
            if (File.Exists(from))
            {
                File.Move(from, $"{path}.{i + 1}{suffix}", overwrite: true);
            }
        }
    }

    private static void InterlockedMax(ref long target, long value)
    {
        long seen;
        while ((seen = Interlocked.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }
}

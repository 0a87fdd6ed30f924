using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Appliance.Transport;

/// <summary>
/// The write side of a connection as a <see cref="PipeWriter"/> over its stream, in place of .NET's StreamPipeWriter:
/// what is written goes into pooled segments, and a flush hands each segment to the stream as one write, with no async
/// state machine or token source of its own.
/// </summary>
/// <remarks>
/// <para>Segments are <c>segmentSize</c> bytes (32 KiB for a client connection: SslStream's largest write on Linux, so a
/// 16 KiB body and its head leave in one SSL_write and one send). They go back to the pool after every flush: an idle
/// connection holds none.</para>
/// <para><see cref="CancelPendingFlush"/> does not interrupt a write the stream has started (half a TLS record cannot
/// be taken back): the flush in progress, or the next one, returns <see cref="FlushResult.IsCanceled"/> once its data
/// is written. A flush whose token is cancelled throws what the stream throws.</para>
/// </remarks>
public sealed class ConnectionWriter : PipeWriter, IValueTaskSource<FlushResult>
{
    private readonly Stream _stream;
    private readonly int _segmentSize;
    private Action? _onWritten; // made at the first write that does not finish at once: most connections never have one

    private byte[]? _current;
    private int _written;
    private Segment[] _full = [];  // segments filled before the flush, in order
    private int _fullCount;
    private long _fullBytes;
    private bool _completed;
    private int _cancelRequested;

    private ManualResetValueTaskSourceCore<FlushResult> _source;
    private ConfiguredValueTaskAwaitable.ConfiguredValueTaskAwaiter _write; // the stream write in flight
    private bool _flushing;
    private int _next; // the segment the flush writes next (_fullCount: the current one)
    private CancellationToken _flushToken;

    public ConnectionWriter(Stream stream, int segmentSize)
    {
        _stream = stream;
        _segmentSize = segmentSize;
    }

    /// <summary>Whether the writer holds a segment (an idle connection holds none).</summary>
    internal bool HoldsBuffer => _current is not null || _fullCount > 0;

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes => _fullBytes + _written;

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        EnsureSpace(sizeHint);
        return _current.AsMemory(_written);
    }

    public override Span<byte> GetSpan(int sizeHint = 0)
    {
        EnsureSpace(sizeHint);
        return _current.AsSpan(_written);
    }

    public override void Advance(int bytes)
    {
        if (_current is null || (uint)bytes > (uint)(_current.Length - _written))
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), "Advanced past the memory the writer gave.");
        }

        _written += bytes;
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfCompleted();
        if (_flushing)
        {
            throw new InvalidOperationException("A flush is already in progress.");
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<FlushResult>(cancellationToken);
        }

        _next = 0;
        _flushToken = cancellationToken;
        try
        {
            if (WriteSegments())
            {
                return new ValueTask<FlushResult>(new FlushResult(TakeCancel(), isCompleted: false));
            }
        }
        catch (Exception e)
        {
            Release();
            return ValueTask.FromException<FlushResult>(e);
        }

        _flushing = true;
        _source.Reset();
        _write.UnsafeOnCompleted(_onWritten ??= OnWritten);
        return new ValueTask<FlushResult>(this, _source.Version);
    }

    public override void CancelPendingFlush() => Interlocked.Exchange(ref _cancelRequested, 1);

    public override void Complete(Exception? exception = null)
    {
        if (_completed)
        {
            return;
        }

        _completed = true;
        if (_flushing)
        {
            return; // the write in flight still reads its segment: leave them to the collector
        }

        try
        {
            if (exception is null)
            {
                for (int i = 0; i < _fullCount; i++)
                {
                    _stream.Write(_full[i].Array, 0, _full[i].Length);
                }

                if (_written > 0)
                {
                    _stream.Write(_current!, 0, _written);
                }
            }
        }
        finally
        {
            Release();
        }
    }

    public override async ValueTask CompleteAsync(Exception? exception = null)
    {
        if (_completed)
        {
            return;
        }

        if (exception is null && !_flushing && UnflushedBytes > 0)
        {
            try
            {
                await FlushAsync().ConfigureAwait(false);
            }
            finally
            {
                _completed = true;
                Release();
            }

            return;
        }

        Complete(exception);
    }

    private void EnsureSpace(int sizeHint)
    {
        ThrowIfCompleted();
        int need = Math.Max(sizeHint, 1);
        if (_current is not null)
        {
            if (_current.Length - _written >= need)
            {
                return;
            }

            if (_written == 0)
            {
                LoopBuffers.Return(_current);
            }
            else
            {
                // Keep the filled one for the flush.
                if (_fullCount == _full.Length)
                {
                    Array.Resize(ref _full, Math.Max(4, _full.Length * 2));
                }

                _full[_fullCount++] = new Segment(_current, _written);
                _fullBytes += _written;
            }

            _current = null;
            _written = 0;
        }

        _current = LoopBuffers.Rent(Math.Max(need, _segmentSize));
    }

    /// <summary>Writes the segments from <see cref="_next"/> on; false when a write went pending (in <see cref="_write"/>).</summary>
    private bool WriteSegments()
    {
        while (_next <= _fullCount)
        {
            Segment segment = _next < _fullCount ? _full[_next] : new Segment(_current!, _written);
            _next++;
            if (segment.Length == 0)
            {
                continue;
            }

            ValueTask write = _stream.WriteAsync(segment.Array.AsMemory(0, segment.Length), _flushToken);
            if (!write.IsCompleted)
            {
                _write = write.ConfigureAwait(false).GetAwaiter();
                return false;
            }

            write.GetAwaiter().GetResult();
        }

        Release();
        return true;
    }

    private void OnWritten()
    {
        try
        {
            _write.GetResult();
            _write = default;
            if (!WriteSegments())
            {
                _write.UnsafeOnCompleted(_onWritten ??= OnWritten);
                return;
            }
        }
        catch (Exception e)
        {
            _write = default;
            _flushing = false;
            Release();
            _source.SetException(e);
            return;
        }

        _flushing = false;
        _source.SetResult(new FlushResult(TakeCancel(), isCompleted: false));
    }

    private bool TakeCancel() => Volatile.Read(ref _cancelRequested) != 0 && Interlocked.Exchange(ref _cancelRequested, 0) != 0;

    /// <summary>Gives every segment back to the pool, written or not.</summary>
    private void Release()
    {
        for (int i = 0; i < _fullCount; i++)
        {
            LoopBuffers.Return(_full[i].Array);
            _full[i] = default;
        }

        _fullCount = 0;
        _fullBytes = 0;
        if (_current is { } current)
        {
            _current = null;
            LoopBuffers.Return(current);
        }

        _written = 0;
    }

    private void ThrowIfCompleted()
    {
        if (_completed)
        {
            throw new InvalidOperationException("Writing is not allowed after the writer was completed.");
        }
    }

    FlushResult IValueTaskSource<FlushResult>.GetResult(short token) => _source.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<FlushResult>.GetStatus(short token) => _source.GetStatus(token);

    void IValueTaskSource<FlushResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);

    private readonly record struct Segment(byte[] Array, int Length);
}

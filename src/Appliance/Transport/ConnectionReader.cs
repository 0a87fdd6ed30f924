using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Appliance.Transport;

/// <summary>
/// The read side of a connection as a <see cref="PipeReader"/> over its stream (SslStream, or the socket itself), in
/// place of .NET's StreamPipeReader: one contiguous buffer, and a wait that is the stream's own, with no async state
/// machine, linked token source or segment chain of its own per read.
/// </summary>
/// <remarks>
/// <para>Why: per HTTPS request StreamPipeReader cost about 1,500 instructions around SslStream's read (its async
/// method's box and ExecutionContext, a lock to get its token source, the caller's token registered with the socket on
/// every parked read, a segment rented and returned), for what is one read into one buffer (perf/RESULTS.md).</para>
/// <para>Idle connections hold no buffer: with nothing buffered the reader waits with a zero-byte read (SslStream and
/// <see cref="SocketStream"/> both wait for data without a buffer), returns its buffer to the pool before it waits,
/// and rents one when data is there.</para>
/// <para>Cancellation (<see cref="CancelPendingRead"/>, or the token of <see cref="ReadAsync"/>) completes the waiting
/// read at once and leaves the stream's read in flight: the next read waits on that one instead of starting another,
/// so the stream is never asked to cancel a read half-way through a TLS record. The states below hand the reader
/// between the consumer, the stream's completion and a cancelling thread: only the one that moves the state out of
/// <see cref="Waiting"/> completes the waiting read.</para>
/// </remarks>
public sealed class ConnectionReader : PipeReader, IValueTaskSource<ReadResult>, IThreadPoolWorkItem
{

    private const int Idle = 0;     // no stream read in flight; the consumer owns the reader
    private const int Waiting = 1;  // a ReadAsync waits on the stream read in flight
    private const int Running = 2;  // the stream read finished and its completion owns the reader
    private const int Detached = 3; // the waiting ReadAsync was cancelled; the stream read is still in flight
    private const int Landed = 4;   // the detached stream read finished; its outcome waits for the next read
    private const int Closed = 5;   // completed while nothing was in flight: the buffer went back to the pool

    private static readonly Action<object?, CancellationToken> s_onTokenCancelled =
        static (state, token) => ((ConnectionReader)state!).OnTokenCancelled(token);

    private readonly Stream _stream;
    private readonly int _bufferSize;
    private readonly int _minimumReadSize;
    private readonly Action _onStreamRead;
    private ManualResetValueTaskSourceCore<ReadResult> _source;
    private int _state;
    private int _cancelRequested;

    private byte[]? _buffer;
    private int _start; // first unconsumed byte
    private int _end;   // end of the data read
    private bool _examinedAll;
    private bool _streamEnded;
    private bool _completed;

    private ConfiguredValueTaskAwaitable<int>.ConfiguredValueTaskAwaiter _read; // the stream read in flight
    private bool _readIsProbe;  // ...is a zero-byte read (no buffer)
    private bool _probed;       // a zero-byte read just finished: data is there, read it
    private int _landedBytes;
    private Exception? _landedError;

    private CancellationToken _token;           // the token of the read in progress (or the last one)
    private CancellationToken _registeredToken; // the token _registration is with: kept while reads pass the same one
    private CancellationTokenRegistration _registration;
    private ReadResult _cancelled;       // what a cancelled read returns, set before its completion is queued
    private Exception? _cancelError;

    /// <param name="bufferSize">The buffer rented when data arrives; it doubles while the consumer holds more.</param>
    /// <param name="minimumReadSize">Room a read needs at the end of the buffer, made by moving or growing it.</param>
    public ConnectionReader(Stream stream, int bufferSize = 4096, int minimumReadSize = 1024)
    {
        _stream = stream;
        _bufferSize = bufferSize;
        _minimumReadSize = Math.Min(minimumReadSize, bufferSize);
        _onStreamRead = OnStreamRead;
    }

    /// <summary>Whether the reader holds a buffer (an idle connection holds none).</summary>
    internal bool HoldsBuffer => _buffer is not null;

    private ReadOnlySequence<byte> Buffered =>
        _buffer is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(_buffer, _start, _end - _start);

    public override bool TryRead(out ReadResult result)
    {
        ThrowIfCompleted();
        if (Volatile.Read(ref _state) == Landed)
        {
            TakeLanded();
        }

        return TryTake(out result);
    }

    /// <summary>
    /// <see cref="TryRead"/>, and when nothing new is buffered, a read of the stream if it completes at once (the bytes
    /// are in the socket or in TLS's buffer already). A read that would wait stays in flight, and the next
    /// <see cref="ReadAsync"/> waits on it. For a relay that flushes only when no more bytes are at hand.
    /// </summary>
    public bool TryReadMore(out ReadResult result)
    {
        ThrowIfCompleted();
        int state = Volatile.Read(ref _state);
        if (state == Landed)
        {
            TakeLanded();
        }

        if (TryTake(out result))
        {
            return true;
        }

        if (state == Detached)
        {
            return false; // a read is in flight already
        }

        if (Pump(out result))
        {
            return true;
        }

        Volatile.Write(ref _state, Detached); // nobody waits on it yet
        _read.UnsafeOnCompleted(_onStreamRead);
        return false;
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfCompleted();
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ReadResult>(cancellationToken);
        }

        if (!cancellationToken.Equals(_registeredToken))
        {
            ReleaseToken(); // another token, or none: the registration with the last one goes
        }

        _token = cancellationToken;
        try
        {
            int state = Volatile.Read(ref _state);
            if (state == Landed)
            {
                TakeLanded();
            }

            if (TryTake(out ReadResult result))
            {
                return new ValueTask<ReadResult>(result);
            }

            if (state == Detached)
            {
                // The read a cancelled ReadAsync started is still in flight: wait on that one.
                _source.Reset();
                if (Interlocked.CompareExchange(ref _state, Waiting, Detached) == Detached)
                {
                    return Waited(cancellationToken);
                }

                TakeLanded(); // it finished in between
            }

            if (Pump(out result))
            {
                return new ValueTask<ReadResult>(result);
            }

            _source.Reset();
            Interlocked.Exchange(ref _state, Waiting);
            _read.UnsafeOnCompleted(_onStreamRead);
            return Waited(cancellationToken);
        }
        catch (Exception e)
        {
            return ValueTask.FromException<ReadResult>(e);
        }
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        ThrowIfCompleted();
        int c = IndexOf(consumed);
        int e = IndexOf(examined);
        if (e < c)
        {
            throw new InvalidOperationException("The examined position is before the consumed one.");
        }

        _start = c;
        _examinedAll = e == _end;
        if (c == _end && Volatile.Read(ref _state) == Idle)
        {
            // Everything consumed and no read in flight: the buffer goes back now, not when the next read starts. A
            // pooled upstream connection may idle for long after its response, and hundreds of them holding buffers
            // would outgrow the shared pool, so that every response rented a new one.
            ReturnBuffer();
        }
    }

    public override void CancelPendingRead()
    {
        Interlocked.Exchange(ref _cancelRequested, 1);
        TryCancelWaiting(error: null, inline: false);
    }

    public override void Complete(Exception? exception = null)
    {
        if (_completed)
        {
            return;
        }

        _completed = true;
        // The buffer goes back to the pool only from a reader nothing else can touch: with a stream read in flight, or
        // its completion running (a pool closing the connection from another thread), it is left to the collector.
        if (Interlocked.CompareExchange(ref _state, Closed, Idle) == Idle || Interlocked.CompareExchange(ref _state, Closed, Landed) == Landed)
        {
            ReleaseToken();
            ReturnBuffer();
        }
    }

    /// <summary>
    /// Reads until there is something for the consumer (true) or a stream read is pending (false: the caller makes
    /// the consumer wait on it). Runs on the reader's owner: the consumer, or a completion in <see cref="Running"/>.
    /// </summary>
    private bool Pump(out ReadResult result)
    {
        while (true)
        {
            if (TryTake(out result))
            {
                return true;
            }

            if (_streamEnded)
            {
                result = new ReadResult(Buffered, isCanceled: false, isCompleted: true);
                return true;
            }

            ValueTask<int> read = StartRead();
            if (!read.IsCompleted)
            {
                _read = read.ConfigureAwait(false).GetAwaiter();
                return false;
            }

            Land(read.GetAwaiter().GetResult()); // throws what the stream threw
        }
    }

    private ValueTask<int> StartRead()
    {
        if (_start == _end)
        {
            _start = _end = 0;
            if (!_probed)
            {
                // Nothing buffered: wait for data without holding a buffer.
                ReturnBuffer();
                _readIsProbe = true;
                return _stream.ReadAsync(Memory<byte>.Empty);
            }
        }

        _probed = false;
        _readIsProbe = false;
        if (_buffer is null)
        {
            _buffer = LoopBuffers.Rent(_bufferSize);
        }
        else if (_buffer.Length - _end < _minimumReadSize)
        {
            int live = _end - _start;
            if (_buffer.Length - live >= _minimumReadSize)
            {
                _buffer.AsSpan(_start, live).CopyTo(_buffer);
            }
            else
            {
                byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, live + _minimumReadSize));
                _buffer.AsSpan(_start, live).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = larger;
            }

            _start = 0;
            _end = live;
        }

        return _stream.ReadAsync(_buffer.AsMemory(_end));
    }

    /// <summary>Takes the outcome of a stream read that finished.</summary>
    private void Land(int bytes)
    {
        if (_readIsProbe)
        {
            _probed = true;
        }
        else if (bytes == 0)
        {
            _streamEnded = true;
        }
        else
        {
            _end += bytes;
            _examinedAll = false;
        }
    }

    private bool TryTake(out ReadResult result)
    {
        if (Volatile.Read(ref _cancelRequested) != 0 && Interlocked.Exchange(ref _cancelRequested, 0) != 0)
        {
            result = new ReadResult(Buffered, isCanceled: true, isCompleted: _streamEnded);
            return true;
        }

        if (_end > _start && (!_examinedAll || _streamEnded))
        {
            result = new ReadResult(Buffered, isCanceled: false, isCompleted: _streamEnded);
            return true;
        }

        result = default;
        return false;
    }

    /// <summary>The consumer takes the outcome of a detached read that finished (state <see cref="Landed"/>).</summary>
    private void TakeLanded()
    {
        Exception? error = _landedError;
        int bytes = _landedBytes;
        _landedError = null;
        Volatile.Write(ref _state, Idle);
        if (error is not null)
        {
            throw error;
        }

        Land(bytes);
    }

    /// <summary>The consumer waits on the stream read in flight; a cancellation that came meanwhile takes effect.</summary>
    private ValueTask<ReadResult> Waited(CancellationToken cancellationToken)
    {
        var wait = new ValueTask<ReadResult>(this, _source.Version);
        if (cancellationToken.CanBeCanceled && !cancellationToken.Equals(_registeredToken))
        {
            // One registration serves every read with this token (a connection's reads pass the same one request
            // after request), so the usual read registers nothing.
            _registeredToken = cancellationToken;
            _registration = cancellationToken.UnsafeRegister(s_onTokenCancelled, this);
        }

        if (Volatile.Read(ref _cancelRequested) != 0)
        {
            TryCancelWaiting(error: null, inline: true);
        }
        else if (cancellationToken.IsCancellationRequested)
        {
            // Cancelled since ReadAsync looked: a registration kept from an earlier read has run already.
            TryCancelWaiting(new OperationCanceledException(cancellationToken), inline: true);
        }

        return wait;
    }

    private void OnStreamRead()
    {
        int bytes = 0;
        Exception? error = null;
        try
        {
            bytes = _read.GetResult();
        }
        catch (Exception e)
        {
            error = e;
        }

        _read = default;
        while (true)
        {
            int state = Volatile.Read(ref _state);
            if (state == Waiting)
            {
                if (Interlocked.CompareExchange(ref _state, Running, Waiting) == Waiting)
                {
                    break;
                }
            }
            else if (state == Detached)
            {
                // The ReadAsync that waited was cancelled. The next one takes this outcome.
                _landedBytes = bytes;
                _landedError = error;
                if (Interlocked.CompareExchange(ref _state, Landed, Detached) == Detached)
                {
                    return;
                }
            }
            else
            {
                return; // completed: nobody reads any more
            }
        }

        if (error is not null)
        {
            Finish(default, error);
            return;
        }

        ReadResult result;
        try
        {
            Land(bytes);
            if (!Pump(out result))
            {
                // Another stream read went pending: wait on it, unless a cancellation came while this ran.
                Interlocked.Exchange(ref _state, Waiting);
                if (Volatile.Read(ref _cancelRequested) != 0)
                {
                    TryCancelWaiting(error: null, inline: true);
                }
                else if (_token.IsCancellationRequested)
                {
                    TryCancelWaiting(new OperationCanceledException(_token), inline: true);
                }

                _read.UnsafeOnCompleted(_onStreamRead);
                return;
            }
        }
        catch (Exception e)
        {
            Finish(default, e);
            return;
        }

        Finish(result, null);
    }

    private void Finish(ReadResult result, Exception? error)
    {
        Volatile.Write(ref _state, Idle);
        if (error is null)
        {
            _source.SetResult(result);
        }
        else
        {
            _source.SetException(error);
        }
    }

    private void OnTokenCancelled(CancellationToken token)
    {
        if (token.Equals(_token))
        {
            TryCancelWaiting(new OperationCanceledException(token), inline: false);
        }
    }

    /// <summary>
    /// Completes the waiting read now, cancelled (a null error) or with the token's exception. Called by another thread
    /// (a timeout, a drain, a stream that finished) it hands the consumer's continuation to the thread pool rather than
    /// run it inside the caller, which may hold locks or be the one heartbeat thread for every connection (as
    /// <see cref="SocketStream"/> never runs a continuation inside a canceller).
    /// </summary>
    private void TryCancelWaiting(Exception? error, bool inline)
    {
        if (Interlocked.CompareExchange(ref _state, Detached, Waiting) != Waiting)
        {
            return; // nothing waits, or another thread completes it; a CancelPendingRead stays for the next read
        }

        if (error is null)
        {
            Interlocked.Exchange(ref _cancelRequested, 0);
            // While a read waits nobody moves _start or _end: the stream read in flight only writes past _end.
            _cancelled = new ReadResult(Buffered, isCanceled: true, isCompleted: _streamEnded);
        }

        _cancelError = error;
        if (inline)
        {
            ((IThreadPoolWorkItem)this).Execute();
        }
        else
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    void IThreadPoolWorkItem.Execute()
    {
        Exception? error = _cancelError;
        ReadResult result = _cancelled;
        _cancelError = null;
        _cancelled = default;
        if (error is null)
        {
            _source.SetResult(result);
        }
        else
        {
            _source.SetException(error);
        }
    }

    private void ReleaseToken()
    {
        if (_registeredToken.CanBeCanceled)
        {
            // Dispose, not Unregister: a callback already running on another thread is waited for, so it cannot
            // cancel the read that starts next (it runs only a CAS; on this thread it is not waited for).
            _registration.Dispose();
            _registration = default;
            _registeredToken = default;
        }

        _token = default;
    }

    private int IndexOf(SequencePosition position)
    {
        object? array = position.GetObject();
        int index = position.GetInteger();
        if (array is not null && array == _buffer)
        {
            if (index < _start || index > _end)
            {
                throw new InvalidOperationException("The position is outside the data this reader returned.");
            }

            return index;
        }

        if (_start == _end && index == 0 && array is null or byte[] { Length: 0 })
        {
            return _start; // a position of an empty result
        }

        throw new InvalidOperationException("The position does not belong to the buffer this reader returned.");
    }

    private void ReturnBuffer()
    {
        if (_buffer is { } buffer)
        {
            _buffer = null;
            _start = _end = 0;
            LoopBuffers.Return(buffer);
        }
    }

    private void ThrowIfCompleted()
    {
        if (_completed)
        {
            throw new InvalidOperationException("Reading is not allowed after the reader was completed.");
        }
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _source.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _source.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);
}

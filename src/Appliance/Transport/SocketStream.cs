using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace Appliance.Transport;

/// <summary>
/// A connected non-blocking socket as a Stream, on one of our <see cref="EventLoop"/>s: the transport under
/// SslStream and the pipes, in place of NetworkStream and .NET's socket engine.
/// </summary>
/// <remarks>
/// <para>Why: .NET's engine tries every receive before it waits, so a read issued when nothing can have arrived
/// yet (the next request on a keep-alive connection, the upstream's answer just after the request went out) costs
/// a recv that fails with EAGAIN. On a proxied HTTP/1.1 request that was two syscalls of six. Here each direction
/// remembers whether the socket may have more: a read that came back short drained the socket, so the next read
/// waits for the edge-triggered event without a syscall, as HAProxy does. Only a read that filled its buffer, an
/// event, or a peer that hung up makes the next read try the socket first.</para>
/// <para>Races: an event bumps a per-direction sequence number under the lock; a read or write that found the
/// socket empty or full parks only if no event came since it looked, and otherwise tries again. A pending
/// operation completes on the loop thread, inline (the continuation runs there, as with
/// DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS); a cancelled or aborted one completes on the thread pool.</para>
/// <para>Limit: a short read means "drained" for stream sockets except where recv stops early on purpose: at TCP
/// urgent data (MSG_OOB) or after a Unix socket's SCM_RIGHTS message. A peer that sends either stalls its own
/// connection until its next bytes or the connection's timeout; nothing else on the loop is affected.</para>
/// </remarks>
public sealed class SocketStream : Stream
{
    private static readonly Action<object?, CancellationToken> s_cancelRead = static (s, t) => ((SocketStream)s!).Cancel(read: true, t);
    private static readonly Action<object?, CancellationToken> s_cancelWrite = static (s, t) => ((SocketStream)s!).Cancel(read: false, t);

    private readonly Socket _socket;
    private readonly EventLoop _loop;
    private Appliance.Tls.SpinGate _lock; // twice per request, for a few field writes; nothing under it takes it again (not readonly: a struct)
    private readonly Operation _read;
    private Operation? _write; // made at the first write that has to wait (a connect in progress, a full socket buffer): most connections never have one
    private int _disposed;

    // Guarded by _lock (the fast paths read them without it, and re-check under it before they park).
    private int _readSeq;
    private bool _readReady; // set in the constructor
    private Memory<byte> _readBuffer;
    private int _writeSeq;
    private bool _writeReady;
    private ReadOnlyMemory<byte> _writeBuffer;

    // The peer hung up or the socket failed: no further edge will come, so every operation tries the socket.
    private volatile bool _readEnded;
    private volatile bool _writeEnded;

    // Calls queued on the loop's SocketRing (loop thread; _ringCalls and the two flags under _lock): a read's and a
    // write's buffers are pinned until their results come, and a dispose or shutdown meanwhile from another thread is
    // left to the last result, since the ring still names the descriptor.
    private System.Buffers.MemoryHandle _sendPin;
    private System.Buffers.MemoryHandle _receivePin;
    private int _ringCalls;
    private bool _closeAfterRing;
    private bool _shutdownAfterRing;

    /// <param name="connecting">A connect is in progress: writes wait for the socket's first writable event.</param>
    /// <param name="readOnLoop">The first read waits for the loop's first event instead of trying the socket (made on the loop's own thread with its ring, it is tried in the round's flush instead).</param>
    public SocketStream(Socket socket, bool connecting, bool readOnLoop = false)
        : this(socket, connecting, readOnLoop, loop: null)
    {
    }

    /// <param name="loop">The loop that carries the socket; the next one in turn when null.</param>
    internal SocketStream(Socket socket, bool connecting, bool readOnLoop, EventLoop? loop)
    {
        _loop = loop ?? SocketEngine.NextLoop();

        // Made on its own loop's thread (a connection its loop accepted) with the ring, the first read is tried in the
        // round's flush: the bytes that came with the connection (a ClientHello) are read without waiting one round
        // for epoll to report them, and an empty socket costs the round's io_uring_enter nothing more.
        _readReady = !readOnLoop || (EventLoop.Current == _loop && _loop.Ring is not null);
        _socket = socket;
        _read = new Operation(this);
        int fd = (int)socket.SafeHandle.DangerousGetHandle();
        if (socket.Blocking && !SocketListener.IsAcceptedNonBlocking(socket))
        {
            // O_NONBLOCK on the descriptor only: Socket.Blocking = false would also make .NET create its per-socket
            // engine state (152 B), which nothing here uses. Our reads and writes are our own syscalls.
            Syscalls.SetNonBlocking(fd);
        }

        _writeReady = !connecting;
        _loop.Register(this, fd);
    }

    public Socket Socket => _socket;

    /// <summary>The write operation, made on first use (under the lock).</summary>
    private Operation WriteOperation => _write ??= new Operation(this);

    // For Operation: a struct field of another instance of a Stream (a MarshalByRefObject) is not entered in place.
    private void Enter() => _lock.Enter();

    private void Exit() => _lock.Exit();

    /// <summary>The loop that carries the socket.</summary>
    internal EventLoop Loop => _loop;

    internal int Slot { get; set; }

    internal uint Generation { get; set; }

    /// <summary>
    /// Sees every byte handed to a write before it is sent, while set: the TLS handshake's watcher of the server's
    /// first flight (<see cref="Tls.ServerFlightObserver"/>), here rather than in a stream of its own between SslStream
    /// and the socket, which every request then paid for. Set and cleared by the connection around its handshake.
    /// </summary>
    internal Action<ReadOnlySpan<byte>>? SendObserver { get; set; }

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Flush() { }
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(cancellationToken);
        }

        if (_disposed != 0)
        {
            return ValueTask.FromException<int>(new ObjectDisposedException(nameof(SocketStream)));
        }

        while (true)
        {
            int seq = Volatile.Read(ref _readSeq);
            if (Volatile.Read(ref _readReady) || _readEnded)
            {
                if (buffer.IsEmpty)
                {
                    return new ValueTask<int>(0); // a zero-byte read only asks "is there something": maybe
                }

                if (!_readEnded && _loop.Ring is { } ring && EventLoop.Current == _loop)
                {
                    // On the loop thread (the reader's continuation after an event or a flush): made with the round's
                    // other calls.
                    _readBuffer = buffer;
                    if (TryQueueReceive(ring))
                    {
                        return new ValueTask<int>(_read, StartOnRing(_read, cancellationToken, s_cancelRead));
                    }

                    _readBuffer = default;
                }

                int n = Receive(buffer.Span, out SocketError error);
                if (n >= 0)
                {
                    if (n > 0 && n < buffer.Length)
                    {
                        MarkDrained(seq);
                    }

                    return new ValueTask<int>(n);
                }

                if (error != SocketError.WouldBlock)
                {
                    return ValueTask.FromException<int>(Error("read from", error));
                }
            }

            int id;
            short version;
            _lock.Enter();
            try
            {
                if (_disposed != 0)
                {
                    return ValueTask.FromException<int>(Error("read from", SocketError.OperationAborted));
                }

                if (_readSeq != seq)
                {
                    continue; // an event came since we looked: look again
                }

                _readReady = false;
                _readBuffer = buffer;
                _read.Start(cancellationToken);
                id = _read.Id;
                version = _read.Version;
            }
            finally
            {
                _lock.Exit();
            }

            if (cancellationToken.CanBeCanceled)
            {
                RegisterCancellation(_read, id, cancellationToken, s_cancelRead);
            }

            return new ValueTask<int>(_read, version);
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        if (_disposed != 0)
        {
            return ValueTask.FromException(new ObjectDisposedException(nameof(SocketStream)));
        }

        SendObserver?.Invoke(buffer.Span);

        while (!buffer.IsEmpty)
        {
            int seq = Volatile.Read(ref _writeSeq);
            if (Volatile.Read(ref _writeReady) || _writeEnded)
            {
                if (!_writeEnded && _loop.Ring is { } ring && EventLoop.Current == _loop && TryQueue(ring, buffer, cancellationToken, out short queued))
                {
                    return new ValueTask(_write!, queued); // sent at the end of this round, with the others
                }

                int n = Send(buffer.Span, out SocketError error);
                if (n >= 0)
                {
                    buffer = buffer[n..];
                    continue; // all sent, or the socket buffer filled: the next send says which (EAGAIN arms the edge)
                }

                if (error != SocketError.WouldBlock)
                {
                    return ValueTask.FromException(Error("write to", error));
                }
            }

            int id;
            short version;
            _lock.Enter();
            try
            {
                if (_disposed != 0)
                {
                    return ValueTask.FromException(Error("write to", SocketError.OperationAborted));
                }

                if (_writeSeq != seq)
                {
                    continue;
                }

                _writeReady = false;
                _writeBuffer = buffer;
                Operation write = WriteOperation;
                write.Start(cancellationToken);
                id = write.Id;
                version = write.Version;
            }
            finally
            {
                _lock.Exit();
            }

            if (cancellationToken.CanBeCanceled)
            {
                RegisterCancellation(_write!, id, cancellationToken, s_cancelWrite);
            }

            return new ValueTask(_write!, version);
        }

        return default;
    }

    /// <summary>
    /// Loop thread: queues the write on the loop's <see cref="SocketRing"/> instead of sending it now; the write
    /// completes when the ring is flushed at the end of the round (<see cref="OnQueuedSend"/>). The ring's call is not
    /// cancelled (it ends within the round either way); what it leaves parked (a short send, EAGAIN) is, by
    /// <paramref name="cancellationToken"/>. False when the ring is full or the stream is disposed.
    /// </summary>
    private unsafe bool TryQueue(SocketRing ring, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken, out short version)
    {
        version = 0;
        if (!TryReserveRingCall())
        {
            return false;
        }

        System.Buffers.MemoryHandle pin = buffer.Pin();
        if (!ring.TryQueueSend(this, (int)_socket.SafeHandle.DangerousGetHandle(), (byte*)pin.Pointer, buffer.Length, Syscalls.MSG_NOSIGNAL))
        {
            pin.Dispose();
            RingCallDone();
            return false;
        }

        _sendPin = pin;
        _writeBuffer = buffer;
        version = StartOnRing(WriteOperation, cancellationToken, s_cancelWrite);
        return true;
    }

    /// <summary>
    /// Loop thread: starts <paramref name="op"/> for a call just queued on the ring, not pending (an event in this
    /// round must not make it a second time), and returns its version. The ring's call is not cancelled; what its
    /// result leaves parked (a short send, EAGAIN) is, by <paramref name="token"/>.
    /// </summary>
    private short StartOnRing(Operation op, CancellationToken token, Action<object?, CancellationToken> onCancel)
    {
        _lock.Enter();
        op.Start(token);
        op.Pending = false;
        int id = op.Id;
        short version = op.Version;
        _lock.Exit();
        if (token.CanBeCanceled)
        {
            RegisterCancellation(op, id, token, onCancel);
        }

        return version;
    }

    /// <summary>
    /// Loop thread, before a call on the ring names the descriptor: counts the call, or returns false once the stream
    /// is disposed. Counted first, a dispose from another thread meanwhile leaves the close to the call's result; one
    /// made before leaves nothing on the ring naming a closed descriptor, whose number a socket accepted in the same
    /// round may already have again. A caller whose call is not queued after all undoes it with <see cref="RingCallDone"/>.
    /// </summary>
    private bool TryReserveRingCall()
    {
        _lock.Enter();
        bool open = _disposed == 0;
        if (open)
        {
            _ringCalls++;
        }

        _lock.Exit();
        return open;
    }

    /// <summary>
    /// Loop thread, in <see cref="OnEvents"/>: the read the event woke is queued on the ring instead of made now; it
    /// completes when the loop flushes the ring after the round's events (<see cref="OnQueuedReceive"/>). The
    /// operation was taken (not pending): a cancellation or a dispose meanwhile leaves it to its result, as it would a
    /// read running on the loop thread. False when the ring is full or the stream is disposed.
    /// </summary>
    private unsafe bool TryQueueReceive(SocketRing ring)
    {
        Memory<byte> buffer = _readBuffer;
        if (buffer.IsEmpty)
        {
            return false; // a zero-byte read: PerformRead answers it without a call
        }

        if (!TryReserveRingCall())
        {
            return false; // disposed: the read made at once fails as a read of a closed socket
        }

        System.Buffers.MemoryHandle pin = buffer.Pin();
        if (!ring.TryQueueReceive(this, (int)_socket.SafeHandle.DangerousGetHandle(), (byte*)pin.Pointer, buffer.Length))
        {
            pin.Dispose();
            RingCallDone();
            return false;
        }

        _receivePin = pin;
        return true;
    }

    /// <summary>
    /// Loop thread, from <see cref="SocketRing.Flush"/>: the queued write's result (bytes sent, or -errno). All sent
    /// completes the write; a part, or EAGAIN, leaves the rest to the usual path (send, then wait for EPOLLOUT).
    /// </summary>
    internal void OnQueuedSend(int result)
    {
        _sendPin.Dispose();
        _sendPin = default;
        RingCallDone();
        ReadOnlyMemory<byte> buffer = _writeBuffer;
        if (result == buffer.Length)
        {
            _writeBuffer = default;
            _write!.Complete(0);
        }
        else if (result >= 0 || result == -Syscalls.EAGAIN)
        {
            _writeBuffer = buffer[Math.Max(result, 0)..];
            PerformWrite();
        }
        else
        {
            _writeBuffer = default;
            _write!.Fail(Error("write to", Syscalls.ToSocketError(-result)));
        }
    }

    /// <summary>
    /// Loop thread, from <see cref="SocketRing.Flush"/>: the queued read's result (bytes read, 0 at the end, or
    /// -errno). EAGAIN (an event with nothing to read after all) parks the read again, as <see cref="PerformRead"/> does.
    /// </summary>
    internal void OnQueuedReceive(int result)
    {
        _receivePin.Dispose();
        _receivePin = default;
        RingCallDone();
        int seq = _readSeq; // no event for this socket ran since the read was queued: its round's events came first
        if (result >= 0)
        {
            if (result > 0 && result < _readBuffer.Length)
            {
                MarkDrained(seq);
            }

            _readBuffer = default;
            _read.Complete(result);
        }
        else if (result == -Syscalls.EAGAIN)
        {
            if (!Park(_read, ref _readSeq, ref _readReady, seq))
            {
                PerformRead();
            }
        }
        else
        {
            _readBuffer = default;
            _read.Fail(Error("read from", Syscalls.ToSocketError(-result)));
        }
    }

    /// <summary>A queued call's result came: the last one does what another thread asked for meanwhile.</summary>
    private void RingCallDone()
    {
        bool close, shutdown;
        _lock.Enter();
        bool last = --_ringCalls == 0;
        close = last && _closeAfterRing;
        shutdown = last && _shutdownAfterRing && !close;
        _shutdownAfterRing &= !shutdown;
        _lock.Exit();
        if (shutdown)
        {
            ShutdownSend(); // the FIN follows the bytes
        }

        if (close)
        {
            _socket.Dispose(); // disposed by another thread while the ring still named the descriptor: closed now
        }
    }

    /// <summary>
    /// shutdown(SHUT_WR) after the writes made so far: a write still queued on the loop's ring leaves first (from another
    /// thread, the ring's result sends the FIN). Errors of a socket already gone are ignored.
    /// </summary>
    public void ShutdownSend()
    {
        if (EventLoop.Current != _loop)
        {
            _lock.Enter();
            bool later = _ringCalls > 0;
            _shutdownAfterRing |= later;
            _lock.Exit();
            if (later)
            {
                return;
            }
        }

        SubmitQueued();
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Loop thread: calls still queued on the ring are made now, ahead of whatever the caller sends or closes.</summary>
    private void SubmitQueued()
    {
        if (_ringCalls > 0 && EventLoop.Current == _loop)
        {
            _loop.Ring!.Submit();
        }
    }

    /// <summary>
    /// Whether a write made now would wait for the end of the loop's round (io_uring sends, on the loop's thread): then
    /// sending at once (<see cref="TrySendNow"/>) costs a system call the round would have shared.
    /// </summary>
    public bool WritesWaitForRound => _loop.Ring is not null && EventLoop.Current == _loop;

    /// <summary>
    /// Sends what the socket takes at once, without waiting: the bytes sent, all of them unless the socket buffer
    /// filled (then the rest is the caller's to write with <see cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/>).
    /// Only for a caller with no write in flight, so the bytes cannot overtake earlier ones. Throws as a write does.
    /// </summary>
    public int TrySendNow(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        SubmitQueued();
        int sent = 0;
        while (sent < buffer.Length && (Volatile.Read(ref _writeReady) || _writeEnded))
        {
            int n = Send(buffer[sent..], out SocketError error);
            if (n >= 0)
            {
                sent += n;
            }
            else if (error == SocketError.WouldBlock)
            {
                break; // the next write finds the socket full again and waits for its edge
            }
            else
            {
                throw Error("write to", error);
            }
        }

        return sent;
    }

    /// <summary>Waits for a non-blocking connect to finish, then throws if it failed.</summary>
    internal async ValueTask WaitConnectedAsync(CancellationToken cancellationToken)
    {
        ValueTask wait;
        _lock.Enter();
        try
        {
            if (_writeReady || _writeEnded)
            {
                wait = default;
            }
            else
            {
                _writeBuffer = default;
                Operation write = WriteOperation;
                write.Start(cancellationToken);
                wait = new ValueTask(write, write.Version);
            }
        }
        finally
        {
            _lock.Exit();
        }

        if (!wait.IsCompleted && cancellationToken.CanBeCanceled)
        {
            RegisterCancellation(_write!, _write!.Id, cancellationToken, s_cancelWrite);
        }

        await wait.ConfigureAwait(false);
        int error = (int)_socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
        if (error != 0)
        {
            throw new SocketException(error);
        }

        _ = _socket.Connected; // lets Socket record the connect it did not see finish (RemoteEndPoint, Connected)
    }

    /// <summary>Readiness from the loop thread: run whatever operation was waiting for it.</summary>
    internal void OnEvents(uint events)
    {
        bool readable = (events & (Epoll.In | Epoll.RdHup | Epoll.Hup | Epoll.Err)) != 0;
        bool writable = (events & (Epoll.Out | Epoll.Hup | Epoll.Err)) != 0;
        if ((events & (Epoll.RdHup | Epoll.Hup | Epoll.Err)) != 0)
        {
            _readEnded = true;
        }

        if ((events & (Epoll.Hup | Epoll.Err)) != 0)
        {
            _writeEnded = true;
        }

        bool runRead = false, runWrite = false;
        _lock.Enter();
        try
        {
            // Ready first, then the sequence number with release semantics: a reader off the lock that sees the new
            // number (read with acquire) also sees ready (arm64 may otherwise reorder the two stores).
            if (readable)
            {
                _readReady = true;
                Volatile.Write(ref _readSeq, _readSeq + 1);
                runRead = _read.Take();
            }

            if (writable)
            {
                _writeReady = true;
                Volatile.Write(ref _writeSeq, _writeSeq + 1);
                runWrite = _write?.Take() ?? false;
            }
        }
        finally
        {
            _lock.Exit();
        }

        try
        {
            if (runWrite)
            {
                PerformWrite(); // first: a reader's continuation may write, and would find the write still pending
            }
        }
        finally
        {
            if (runRead && !(_loop.Ring is { } ring && TryQueueReceive(ring)))
            {
                PerformRead(); // taken above: it must run even if the write's continuation threw
            }
        }
    }

    private void PerformRead()
    {
        Memory<byte> buffer = _readBuffer;
        while (true)
        {
            int seq = Volatile.Read(ref _readSeq);
            if (buffer.IsEmpty)
            {
                _read.Complete(0);
                return;
            }

            int n = Receive(buffer.Span, out SocketError error);
            if (n >= 0)
            {
                if (n > 0 && n < buffer.Length)
                {
                    MarkDrained(seq);
                }

                _readBuffer = default;
                _read.Complete(n);
                return;
            }

            if (error != SocketError.WouldBlock)
            {
                _readBuffer = default;
                _read.Fail(Error("read from", error));
                return;
            }

            if (Park(_read, ref _readSeq, ref _readReady, seq))
            {
                return;
            }
        }
    }

    private void PerformWrite()
    {
        ReadOnlyMemory<byte> buffer = _writeBuffer;
        while (true)
        {
            int seq = Volatile.Read(ref _writeSeq);
            if (buffer.IsEmpty)
            {
                _writeBuffer = default;
                _write!.Complete(0);
                return;
            }

            int n = Send(buffer.Span, out SocketError error);
            if (n >= 0)
            {
                buffer = buffer[n..];
                continue;
            }

            if (error != SocketError.WouldBlock)
            {
                _writeBuffer = default;
                _write!.Fail(Error("write to", error));
                return;
            }

            _writeBuffer = buffer;
            if (Park(_write!, ref _writeSeq, ref _writeReady, seq))
            {
                return;
            }
        }
    }

    /// <summary>
    /// A woken operation found nothing to do after all (EAGAIN): it waits again, unless an event came meanwhile
    /// (false: try again), the stream was disposed or its cancellation fired while it ran (it ends here).
    /// </summary>
    private bool Park(Operation op, ref int seq, ref bool ready, int observed)
    {
        Exception? end = null;
        _lock.Enter();
        try
        {
            if (seq != observed)
            {
                return false;
            }

            if (_disposed != 0)
            {
                end = Error(op == _read ? "read from" : "write to", SocketError.OperationAborted);
            }
            else if (op.Token.IsCancellationRequested)
            {
                end = new OperationCanceledException(op.Token); // its callback found it running, not pending
            }
            else
            {
                ready = false;
                op.Pending = true;
                return true;
            }
        }
        finally
        {
            _lock.Exit();
        }

        op.Fail(end);
        return true;
    }

    private void MarkDrained(int observed)
    {
        if (EventLoop.Current == _loop)
        {
            // On the socket's own loop thread no event can come in between: OnEvents, the only writer of "ready" and
            // of the sequence number, runs here. Other threads only ever clear "ready", and re-check under the lock
            // before they park, so clearing it here without the lock loses no event.
            if (_readSeq == observed)
            {
                _readReady = false;
            }

            return;
        }

        _lock.Enter();
        try
        {
            if (_readSeq == observed)
            {
                _readReady = false;
            }
        }
        finally
        {
            _lock.Exit();
        }
    }

    private void RegisterCancellation(Operation op, int id, CancellationToken token, Action<object?, CancellationToken> callback)
    {
        CancellationTokenRegistration registration = token.UnsafeRegister(callback, this);
        _lock.Enter();
        try
        {
            // Active, not Pending: between an event taking the operation and parking it again (EAGAIN after all)
            // it is not pending, and a registration dropped there would leave it uncancellable.
            if (op.Active && op.Id == id)
            {
                op.Registration = registration;
                return;
            }
        }
        finally
        {
            _lock.Exit();
        }

        registration.Dispose(); // the operation finished before we could register: nothing to cancel
    }

    private void Cancel(bool read, CancellationToken token)
    {
        Operation? op;
        _lock.Enter();
        try
        {
            op = read ? _read : _write;
            // A late callback of an earlier operation finds a later one with another token (or none): not its own.
            if (op is null || !op.Pending || op.Token != token)
            {
                return;
            }

            op.Pending = false;
        }
        finally
        {
            _lock.Exit();
        }

        op.FailLater(new OperationCanceledException(token));
    }

    /// <summary>recv(2): bytes read (0 at the end), or -1 with the error (WouldBlock when the socket is empty).</summary>
    private unsafe int Receive(Span<byte> buffer, out SocketError error)
    {
        fixed (byte* p = buffer)
        {
            return Transfer(send: false, p, buffer.Length, out error);
        }
    }

    /// <summary>send(2) without SIGPIPE: bytes sent, or -1 with the error (WouldBlock when the socket is full).</summary>
    private unsafe int Send(ReadOnlySpan<byte> buffer, out SocketError error)
    {
        fixed (byte* p = buffer)
        {
            return Transfer(send: true, p, buffer.Length, out error);
        }
    }

    /// <summary>One recv or send, retried on EINTR, under a reference that keeps the descriptor from being closed
    /// (and reused) during the call.</summary>
    private unsafe int Transfer(bool send, byte* p, int length, out SocketError error)
    {
        SafeHandle handle = _socket.SafeHandle;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            while (true)
            {
                nint n = send ? Syscalls.Send(fd, p, length, Syscalls.MSG_NOSIGNAL) : Syscalls.Recv(fd, p, length, 0);
                if (n >= 0)
                {
                    error = SocketError.Success;
                    return (int)n;
                }

                int errno = Marshal.GetLastPInvokeError();
                if (errno != Syscalls.EINTR)
                {
                    error = Syscalls.ToSocketError(errno);
                    return -1;
                }
            }
        }
        catch (ObjectDisposedException)
        {
            error = SocketError.OperationAborted;
            return -1;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    private static IOException Error(string direction, SocketError error)
    {
        var inner = new SocketException((int)error);
        return new IOException($"Unable to {direction} the transport connection: {inner.Message}.", inner);
    }

    public override int Read(Span<byte> buffer)
    {
        while (true)
        {
            int n = Receive(buffer, out SocketError error);
            if (n >= 0)
            {
                return n;
            }

            if (error != SocketError.WouldBlock || EventLoop.OnLoopThread)
            {
                throw Error("read from", error); // never wait on a loop thread: every socket on it would stall
            }

            _socket.Poll(-1, SelectMode.SelectRead);
        }
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        SubmitQueued();
        SendObserver?.Invoke(buffer);
        while (!buffer.IsEmpty)
        {
            int n = Send(buffer, out SocketError error);
            if (n >= 0)
            {
                buffer = buffer[n..];
            }
            else if (error == SocketError.WouldBlock && !EventLoop.OnLoopThread)
            {
                _socket.Poll(-1, SelectMode.SelectWrite); // (a pipe writer completed with unflushed bytes, off the loop)
            }
            else
            {
                throw Error("write to", error);
            }
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _loop.Unregister(this);
        bool read, write, closeLater = false;
        _lock.Enter();
        try
        {
            if (_ringCalls > 0 && EventLoop.Current != _loop)
            {
                _closeAfterRing = closeLater = true; // the loop's ring still names the descriptor: its result closes it
            }

            read = _read.Pending;
            write = _write?.Pending ?? false;
            _read.Pending = false;
            if (write)
            {
                _write!.Pending = false;
            }
        }
        finally
        {
            _lock.Exit();
        }

        if (read)
        {
            _read.FailLater(Error("read from", SocketError.OperationAborted));
        }

        if (write)
        {
            _write!.FailLater(Error("write to", SocketError.OperationAborted));
        }

        if (!closeLater)
        {
            SubmitQueued(); // the bytes queued this round leave before the close, as a send made at once would have
            _socket.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>One direction's pending operation: a reusable ValueTask source (no allocation per wait).</summary>
    private sealed class Operation(SocketStream owner) : IValueTaskSource<int>, IValueTaskSource
    {
        private ManualResetValueTaskSourceCore<int> _core; // continuations run inline, on the completing thread

        /// <summary>Waiting for an event (under the stream's lock).</summary>
        public bool Pending;

        /// <summary>Which wait this is, so a late cancellation registration is not attached to the next one.</summary>
        public int Id;

        /// <summary>Started and not yet completed (under the stream's lock).</summary>
        public bool Active;

        public CancellationToken Token;

        public CancellationTokenRegistration Registration;

        public short Version => _core.Version;

        public void Start(CancellationToken token)
        {
            _core.Reset();
            Id++;
            Pending = true;
            Active = true;
            Token = token;
        }

        /// <summary>Under the lock: claims a pending operation for the caller to run.</summary>
        public bool Take()
        {
            if (!Pending)
            {
                return false;
            }

            Pending = false;
            return true;
        }

        public void Complete(int result)
        {
            EndRegistration();
            _core.SetResult(result);
        }

        public void Fail(Exception error)
        {
            EndRegistration();
            _core.SetException(error);
        }

        /// <summary>Completes on the thread pool: the caller (a canceller, a disposer) must not run the continuation.</summary>
        public void FailLater(Exception error)
        {
            EndRegistration();
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.Op._core.SetException(s.Error), (Op: this, Error: error), preferLocal: false);
        }

        private void EndRegistration()
        {
            CancellationTokenRegistration registration;
            if (Token.CanBeCanceled)
            {
                owner.Enter(); // against RegisterCancellation attaching at this moment
                try
                {
                    Active = false;
                    registration = Registration;
                    Registration = default;
                    Token = default;
                }
                finally
                {
                    owner.Exit();
                }
            }
            else
            {
                Active = false; // no registration can come: nobody else looks at it
                registration = default;
            }

            registration.Unregister();
        }

        int IValueTaskSource<int>.GetResult(short token) => _core.GetResult(token);

        void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}

using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace Appliance.Transport;

/// <summary>Settings a TCP listener needs from the config, independent of what runs on its connections.</summary>
public sealed record SocketListenerOptions(string Name, EndPoint EndPoint, int Backlog, bool ReusePort, int MaxConnections);

/// <summary>
/// One bound TCP socket and its accept loop. Accepted sockets get TCP_NODELAY (from the listening socket) and are handed to the
/// connection callback; past MaxConnections a new socket is closed at once (and counted), like
/// nginx's worker_connections. The callback owns the socket it is given: it closes it and calls
/// <see cref="Release"/> when the connection ends, however it ends, and its task is not awaited (an awaiting
/// frame per connection would be held for the connection's life).
/// </summary>
public sealed class SocketListener : IAsyncDisposable
{
    private const int SolSocket = 1;    // SOL_SOCKET on Linux
    private const int SoReusePort = 15; // SO_REUSEPORT on Linux

    private readonly Socket _socket;
    private readonly Func<Socket, SocketListener, Task> _onAccepted;
    private readonly ILogger _logger;
    private const int RetryDelay = 50; // ms before accepting again after a failure
    private Task? _acceptLoop;
    private EventLoop? _loop;     // the loop that accepts for this listener (our socket engine, TCP)
    private readonly Lock _gate = new(); // the loop changes the socket's place in its epoll set, and Dispose closes it, under this
    private int _accepting;       // AcceptReady calls running (on the loop thread)
    private long _acceptErrors;
    private long _acceptErrorLogged = long.MinValue / 2; // when the last accept failure was logged (TickCount64)
    private volatile string? _stopped; // why the loop stopped accepting for good (the socket no longer listens)
    private int _disposing;
    private long _rejectLogged = long.MinValue / 2; // when the last max_connections warning was logged (TickCount64)
    private int _active;
    private long _rejected;
    private volatile bool _disposed;
    private bool _acceptsDirectly; // accept4 of our own (AcceptDirectly), set at Start
    private readonly bool _noDelayInherited; // TCP_NODELAY set on the listening socket, which accepted ones inherit
    private static volatile bool s_acceptsDirectly = true; // false once a runtime lacked what AcceptDirectly reaches

    private SocketListener(SocketListenerOptions options, Socket socket, Func<Socket, SocketListener, Task> onAccepted, ILogger logger)
    {
        Options = options;
        _socket = socket;
        _onAccepted = onAccepted;
        _logger = logger;
        LocalEndPoint = options.EndPoint is UnixDomainSocketEndPoint ? options.EndPoint : socket.LocalEndPoint!;
        if (socket.ProtocolType == ProtocolType.Tcp)
        {
            try
            {
                // Linux copies TCP_NODELAY from the listening socket to each one accepted from it: set once here, it
                // saves every connection its own setsockopt(2).
                socket.NoDelay = true;
                _noDelayInherited = true;
            }
            catch (SocketException)
            {
                // Each accepted socket sets it, then.
            }
        }
    }

    public SocketListenerOptions Options { get; }

    /// <summary>The bound address (port 0 in the config becomes the real port here).</summary>
    public EndPoint LocalEndPoint { get; }

    /// <summary>The bound TCP port (0 for Unix sockets).</summary>
    public int Port => (LocalEndPoint as IPEndPoint)?.Port ?? 0;

    public bool IsUnix => LocalEndPoint is UnixDomainSocketEndPoint;

    public int ActiveConnections => Volatile.Read(ref _active);

    /// <summary>Connections closed at accept because the listener was at MaxConnections.</summary>
    public long RejectedConnections => Interlocked.Read(ref _rejected);

    public static SocketListener Bind(SocketListenerOptions options, Func<Socket, SocketListener, Task> onAccepted, ILogger logger)
    {
        bool unix = options.EndPoint is UnixDomainSocketEndPoint;
        var socket = new Socket(options.EndPoint.AddressFamily, SocketType.Stream, unix ? ProtocolType.Unspecified : ProtocolType.Tcp);
        try
        {
            if (options.EndPoint is IPEndPoint { AddressFamily: AddressFamily.InterNetworkV6 } ip6 && ip6.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true; // "*:port" and "[::]:port" take IPv4 too
            }

            if (!unix)
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            }

            if (options.ReusePort && !unix)
            {
                socket.SetRawSocketOption(SolSocket, SoReusePort, BitConverter.GetBytes(1));
            }

            socket.Bind(options.EndPoint);
            socket.Listen(options.Backlog);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new SocketListener(options, socket, onAccepted, logger);
    }

    /// <summary>
    /// Takes over a socket that is already bound and listening (passed by systemd socket activation). The socket's
    /// own address wins over the one in <paramref name="options"/>; the unit file decides where it listens.
    /// </summary>
    public static SocketListener Adopt(SocketListenerOptions options, Socket socket, Func<Socket, SocketListener, Task> onAccepted, ILogger logger)
    {
        EndPoint bound = socket.LocalEndPoint ?? options.EndPoint;
        return new SocketListener(options with { EndPoint = bound }, socket, onAccepted, logger) { Inherited = true };
    }

    /// <summary>True when systemd passed this socket in (it is not ours to unlink or rebind).</summary>
    public bool Inherited { get; private init; }

    /// <summary>
    /// Starts accepting. A TCP listener on our socket engine accepts on an event loop (<see cref="AcceptReady"/>), as
    /// nginx's workers do: .NET's accept path costs each connection a failed accept4, a wake-up of .NET's own socket
    /// thread and a hop to it (10 % of the CPU of resumed TLS handshakes, perf/RESULTS.md). A Unix socket, or .NET's
    /// engine, keeps .NET's accept loop.
    /// </summary>
    public void Start()
    {
        if (_acceptLoop is not null || _loop is not null)
        {
            return;
        }

        if (SocketEngine.UsesEpoll && !IsUnix)
        {
            if (s_acceptsDirectly)
            {
                Syscalls.SetNonBlocking(Descriptor); // accept4 then says EAGAIN when nothing waits (.NET keeps its blocking mode: see Accept)
                _acceptsDirectly = true;
            }
            else
            {
                _socket.Blocking = false; // .NET's Accept then says WouldBlock when nothing waits
            }

            EventLoop loop = SocketEngine.NextLoop();
            _loop = loop; // before the loop can report the socket (AcceptReady uses it)
            try
            {
                loop.RegisterListener(this, Descriptor); // connections that came before are reported at once
            }
            catch
            {
                _loop = null; // Start may be tried again
                throw;
            }

            return;
        }

        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    private int Descriptor => (int)_socket.SafeHandle.DangerousGetHandle();

    /// <summary>The listening socket itself (tests).</summary>
    internal System.Net.Sockets.Socket ListeningSocket => _socket;

    /// <summary>
    /// Accepts one waiting connection, on the listener's loop thread at its (level-triggered) readiness
    /// (<paramref name="events"/>, epoll's mask): the loop calls again next round while more wait.
    /// <list type="bullet">
    /// <item>A connection its client gave up (ECONNABORTED and the like, gone from the queue): nothing to do.</item>
    /// <item>A failure that leaves the connection queued (EMFILE, ENFILE, ENOBUFS, ENOMEM): the loop stops watching
    /// the socket for <see cref="RetryDelay"/> ms (nginx's accept backoff), or level-triggered readiness would spin
    /// it; counted in <see cref="AcceptErrors"/>.</item>
    /// <item>A socket that no longer listens (EINVAL; epoll's HUP or ERR, as after <c>ss -K</c> or another holder's
    /// shutdown): the loop stops watching it for good, and <see cref="AcceptLoopProblem"/> says so (the watchdog
    /// then lets systemd restart the service, which binds it anew).</item>
    /// </list>
    /// </summary>
    internal void AcceptReady(uint events)
    {
        Interlocked.Increment(ref _accepting); // DisposeAsync waits for this to end: nothing is handed on after it
        try
        {
            if (_disposed)
            {
                return;
            }

            if ((events & (Epoll.Err | Epoll.Hup)) != 0)
            {
                Stop("the socket no longer listens (epoll reported " + ((events & Epoll.Err) != 0 ? "an error)" : "a hang-up)"));
                return;
            }

            Socket? accepted;
            SocketError error;
            try
            {
                accepted = Accept(out error);
            }
            catch (ObjectDisposedException)
            {
                return; // stopped meanwhile
            }

            if (accepted is null)
            {
                if (_disposed || error is SocketError.WouldBlock || IsGone(error))
                {
                    return; // stopped meanwhile; gone from the queue (its client gave up, accept(2)'s errors to retry); a spurious readiness
                }

                if (error is SocketError.InvalidArgument or SocketError.NotSocket or SocketError.OperationAborted)
                {
                    Stop($"the socket no longer listens (accept: {error})");
                    return;
                }

                CountAcceptError(error);
                lock (_gate) // as in Resume: the descriptor is still this socket's while _disposed is not set
                {
                    if (!_disposed)
                    {
                        _loop!.PauseListener(this, Descriptor, Environment.TickCount64 + RetryDelay);
                    }
                }

                return;
            }

            if (_disposed)
            {
                accepted.Dispose(); // stopped meanwhile
                return;
            }

            Hand(accepted);
        }
        finally
        {
            t_acceptedNonBlocking = null;
            Interlocked.Decrement(ref _accepting);
        }
    }

    /// <summary>
    /// Loop thread: one waiting connection, or null with why not. Directly (<see cref="AcceptDirectly"/>) while the
    /// runtime lets us; else .NET's <see cref="Socket.Accept"/>, on a listener .NET knows to be non-blocking.
    /// </summary>
    private Socket? Accept(out SocketError error)
    {
        if (_acceptsDirectly)
        {
            return AcceptDirectly(out error);
        }

        error = SocketError.Success;
        try
        {
            return _socket.Accept();
        }
        catch (SocketException e)
        {
            error = e.SocketErrorCode;
            return null;
        }
    }

    /// <summary>
    /// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC, and the Socket made as .NET's Accept makes it (its
    /// CreateAcceptSocket, on the listener), reached through <see cref="UnsafeAccessorAttribute"/> (AOT-safe).
    /// .NET's own Accept on a non-blocking listener costs each connection two fcntl(2) calls (F_GETFL, F_SETFL) and
    /// 152 B of .NET's per-socket async state, none of which our engine uses: it reads and writes with its own system
    /// calls. The listener stays blocking in .NET's eyes (its descriptor is O_NONBLOCK, set by us), so the accepted
    /// Socket is not made non-blocking again (<see cref="IsAcceptedNonBlocking"/> tells SocketStream it is). If a
    /// runtime lacks those members, this listener, and every one started after, goes back to .NET's Accept.
    /// </summary>
    private unsafe Socket? AcceptDirectly(out SocketError error)
    {
        const int AddressRoom = 128; // sockaddr_storage
        byte* address = stackalloc byte[AddressRoom];
        int length = AddressRoom;
        int fd, errno = 0;
        SafeSocketHandle listening = _socket.SafeHandle;
        bool referenced = false;
        try
        {
            // Referenced, as .NET's Accept does: a dispose meanwhile closes the descriptor only after this call, so
            // its number cannot be another socket's by then (ObjectDisposedException once closed: "stopped").
            listening.DangerousAddRef(ref referenced);
            fd = Syscalls.Accept4((int)listening.DangerousGetHandle(), address, &length, Syscalls.SOCK_NONBLOCK | Syscalls.SOCK_CLOEXEC);
            if (fd < 0)
            {
                errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            }
        }
        finally
        {
            if (referenced)
            {
                listening.DangerousRelease();
            }
        }

        if (fd < 0)
        {
            error = Syscalls.ToSocketError(errno);
            return null;
        }

        error = SocketError.Success;
        var handle = new SafeSocketHandle(fd, ownsHandle: true);
        try
        {
            Socket accepted = CreateAcceptSocket(_socket, handle, PeerAddress(address, length));
            t_acceptedNonBlocking = accepted; // for the SocketStream its connection makes next, on this thread
            return accepted;
        }
        catch (Exception e) when (e is MissingMemberException or TypeLoadException)
        {
            s_acceptsDirectly = false;
            _acceptsDirectly = false;
            _logger.LogWarning("listener {Listener}: accepting through .NET's Socket.Accept: {Reason}", Options.Name, e.Message);
            try
            {
                _socket.Blocking = false; // .NET's Accept from now on
                return new Socket(handle); // this one: its properties read from the descriptor
            }
            catch (Exception failed) when (failed is SocketException or ObjectDisposedException)
            {
                handle.Dispose(); // the connection is closed; the listener was stopped, or the socket is gone already
                error = failed is ObjectDisposedException ? SocketError.OperationAborted : SocketError.ConnectionAborted; // stopped; or this one connection is lost
                return null;
            }
        }
    }

    /// <summary>The peer's address from accept(2)'s sockaddr_in or sockaddr_in6 (an IPv4 client of a dual-mode listener comes as ::ffff:a.b.c.d, as .NET gives it).</summary>
    internal static unsafe IPEndPoint PeerAddress(byte* address, int length)
    {
        const int AfInet = 2, AfInet6 = 10;
        ushort family = *(ushort*)address;
        int port = (address[2] << 8) | address[3];
        if (family == AfInet && length >= 8)
        {
            return new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(address + 4, 4)), port);
        }

        if (family == AfInet6 && length >= 28)
        {
            return new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(address + 8, 16), *(uint*)(address + 24)), port);
        }

        return new IPEndPoint(IPAddress.IPv6None, 0); // not a TCP/IP peer: not reached for the listeners that accept this way
    }

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "CreateAcceptSocket")]
    private static extern Socket CreateAcceptSocket(Socket listener, SafeSocketHandle handle, EndPoint remoteEndPoint);

    /// <summary>The socket <see cref="AcceptDirectly"/> made last on this thread, until its connection has started.</summary>
    [ThreadStatic]
    private static Socket? t_acceptedNonBlocking;

    /// <summary>
    /// Whether <paramref name="socket"/> is the one just accepted on this thread with SOCK_NONBLOCK. .NET is not told
    /// (its Blocking stays true): a Socket whose Blocking is false sets O_NONBLOCK again at its Dispose, making its
    /// async state to do it (two fcntl calls and an allocation then, instead of at accept).
    /// </summary>
    internal static bool IsAcceptedNonBlocking(Socket socket) => ReferenceEquals(t_acceptedNonBlocking, socket);

    /// <summary>accept(2)'s errors to retry: a connection its client gave up, already off the queue.</summary>
    private static bool IsGone(SocketError error) => error is SocketError.Interrupted or SocketError.ConnectionAborted
        or SocketError.ConnectionReset or SocketError.NetworkDown or SocketError.NetworkUnreachable or SocketError.HostUnreachable
        or SocketError.HostDown or SocketError.ProtocolOption or SocketError.OperationNotSupported or SocketError.AccessDenied;

    /// <summary>A failed accept that left its connection queued: counted, and logged at most once a second.</summary>
    private void CountAcceptError(SocketError error)
    {
        long errors = Interlocked.Increment(ref _acceptErrors);
        long now = Environment.TickCount64;
        if (now - Interlocked.Read(ref _acceptErrorLogged) >= 1000)
        {
            Interlocked.Exchange(ref _acceptErrorLogged, now); // the count is in the status
            _logger.LogWarning("listener {Listener}: accept failed: {Error} ({Errors} failed so far); trying again every {Delay} ms",
                Options.Name, error, errors, RetryDelay);
        }
    }

    /// <summary>The loop thread, once a pause is over: watch the socket again (a connection still queued is reported at once).</summary>
    internal void Resume(EventLoop loop)
    {
        lock (_gate) // DisposeAsync closes the socket only after taking this lock with _disposed set
        {
            if (!_disposed && _stopped is null && !loop.AddListener(this, Descriptor))
            {
                Stop("its socket could not be watched again (epoll_ctl failed)");
            }
        }
    }

    /// <summary>Loop thread: no more accepting on this socket, and why (for the status and the watchdog).</summary>
    private void Stop(string reason)
    {
        _stopped = $"listener {Options.Name}: stopped accepting: {reason}";
        _logger.LogError("{Problem}", _stopped);
        lock (_gate)
        {
            if (!_disposed)
            {
                _loop!.UnregisterListener(this, Descriptor); // for good: it no longer listens
            }
        }
    }

    /// <summary>Accepts that failed and left their connection queued (EMFILE, ENFILE, ENOBUFS, ENOMEM and the like), each followed by a 50 ms pause (on the loop, or in .NET's accept loop for Unix sockets).</summary>
    public long AcceptErrors => Interlocked.Read(ref _acceptErrors);

    /// <summary>Null while the accept loop runs (or before it starts); otherwise why it ended.</summary>
    public string? AcceptLoopProblem => _loop is not null ? _stopped : _acceptLoop switch
    {
        { IsFaulted: true } t => $"listener {Options.Name}: accept loop failed: {t.Exception?.GetBaseException().Message}",
        { IsCompleted: true } when !_disposed => $"listener {Options.Name}: accept loop ended",
        _ => null,
    };

    /// <summary>Called by the connection when it closes.</summary>
    public void Release() => Interlocked.Decrement(ref _active);

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket accepted;
            try
            {
                accepted = await _socket.AcceptAsync(CancellationToken.None).ConfigureAwait(false); // the ValueTask overload: no Task per connection
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.OperationAborted or SocketError.InvalidArgument)
            {
                return;
            }
            catch (SocketException e) when (IsGone(e.SocketErrorCode))
            {
                continue;
            }
            catch (SocketException e)
            {
                // EMFILE and friends: the connection stays queued and would fail again at once; pause as the loops do.
                CountAcceptError(e.SocketErrorCode);
                await Task.Delay(RetryDelay).ConfigureAwait(false);
                continue;
            }

            Hand(accepted);
        }
    }

    /// <summary>An accepted socket to its connection, or closed at once past MaxConnections.</summary>
    private void Hand(Socket accepted)
    {
        if (Interlocked.Increment(ref _active) > Options.MaxConnections)
        {
            Interlocked.Decrement(ref _active);
            long rejected = Interlocked.Increment(ref _rejected);
            long now = Environment.TickCount64;
            if (now - Interlocked.Read(ref _rejectLogged) >= 1000)
            {
                // At most once a second (an accept loop on an event loop thread must not wait on a full log queue
                // during the very flood that fills it); the count is the listener's metric.
                Interlocked.Exchange(ref _rejectLogged, now);
                _logger.LogWarning("listener {Listener}: connection refused, limit {Max} reached (reason=max_connections; {Rejected} refused so far)",
                    Options.Name, Options.MaxConnections, rejected);
            }

            accepted.Dispose();
            return;
        }

        try
        {
            if (!_noDelayInherited && accepted.ProtocolType == ProtocolType.Tcp)
            {
                accepted.NoDelay = true;
            }

            _ = _onAccepted(accepted, this);
        }
        catch (Exception e)
        {
            // Only a callback that throws before its connection starts (an async one reports its own end).
            _logger.LogError(e, "listener {Listener}: connection failed", Options.Name);
            accepted.Dispose();
            Release();
        }
    }

    /// <summary>Stops accepting; live connections are not touched.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposing, 1) != 0)
        {
            return; // once: a second epoll_ctl with this number could take another socket's registration
        }

        _disposed = true;
        lock (_gate)
        {
            _loop?.UnregisterListener(this, Descriptor);
        }

        _socket.Dispose();
        while (Volatile.Read(ref _accepting) > 0)
        {
            await Task.Delay(1).ConfigureAwait(false); // an accept under way ends at _disposed or the closed socket
        }

        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(false);
        }
    }
}

using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Appliance.Transport;

/// <summary>
/// One epoll instance and the thread that waits on it: the reactor under <see cref="SocketStream"/>. Sockets are
/// registered once, edge-triggered for reading and writing; an event runs the socket's pending read or write on
/// this thread, and with it whatever the reader does next (our handlers never block), as nginx and HAProxy run a
/// connection's work on their event loop.
/// </summary>
/// <remarks>
/// An event names its socket by slot and generation, not by pointer: an event still queued for a socket that was
/// closed meanwhile finds the slot empty or reused under another generation, and is dropped.
/// </remarks>
internal sealed unsafe class EventLoop
{
    private const int MaxEvents = 256;

    [ThreadStatic]
    private static EventLoop? t_current;

    private readonly int _epfd;
    private readonly Lock _lock = new();
    private readonly Stack<int> _free = new();
    private SocketStream?[] _slots = new SocketStream?[256];
    private int _used;
    private uint _generation;
    // Work deferred to the end of the current round of events (loop thread only): the next round's list and the one
    // being run.
    private List<IThreadPoolWorkItem> _deferred = [];
    private List<IThreadPoolWorkItem> _running = [];
    // Listening sockets accepted on this loop (SocketListener.AcceptReady), by index; an event's data has the top bit
    // set for them (a socket's generation never does).
    private SocketListener?[] _listeners = [];
    private const ulong ListenerFlag = 1UL << 63;
    // The eventfd's event data: in the listeners' range, at an index no listener has.
    private const ulong WakeData = ListenerFlag | uint.MaxValue;
    private readonly int _wakeFd;
    private readonly ConcurrentQueue<Action> _posted = new();
    private int _probePending;
    private long _probesPosted;
    // Listeners paused after a failed accept, and when each is watched again (loop thread only).
    private readonly List<(SocketListener Listener, long ResumeAt)> _paused = [];
    // This round's time (LoopClock), 0 until asked in the round (loop thread only), and read again every
    // RoundClockEvents events, so that a round of slow events (full RSA handshakes) does not age it much.
    private long _roundTimestamp, _roundMilliseconds;
    private const int RoundClockEvents = 16;
    // The round's socket reads and writes, made together after its events (null: each call is made at once). Made on
    // the loop thread.
    private SocketRing? _ring;

    public EventLoop(int index)
    {
        Index = index;
        _epfd = Epoll.Create(Epoll.CloseOnExec);
        if (_epfd < 0)
        {
            throw new System.Net.Sockets.SocketException(Marshal.GetLastPInvokeError());
        }

        _wakeFd = Epoll.EventFd(0, Epoll.EventFdNonBlocking | Epoll.EventFdCloseOnExec);
        if (_wakeFd < 0 || Epoll.Add(_epfd, _wakeFd, Epoll.In, WakeData) != 0)
        {
            throw new System.Net.Sockets.SocketException(Marshal.GetLastPInvokeError());
        }

        var thread = new Thread(Run) { IsBackground = true, Name = $"appliance-epoll-{index}" };
        thread.Start();
    }

    /// <summary>Adds a non-blocking socket; from then on its readiness arrives as <see cref="SocketStream.OnEvents"/>.</summary>
    public void Register(SocketStream stream, int fd)
    {
        int slot;
        uint generation;
        lock (_lock)
        {
            slot = _free.Count > 0 ? _free.Pop() : _used++;
            if (slot == _slots.Length)
            {
                Array.Resize(ref _slots, _slots.Length * 2); // the loop reads the array anew for each event
            }

            generation = ++_generation & int.MaxValue; // the top bit of the event data is the listeners'
            stream.Slot = slot;
            stream.Generation = generation;
            Volatile.Write(ref _slots[slot], stream);
        }

        ulong data = ((ulong)generation << 32) | (uint)slot;
        if (Epoll.Add(_epfd, fd, Epoll.In | Epoll.Out | Epoll.RdHup | Epoll.EdgeTriggered, data) != 0)
        {
            int error = Marshal.GetLastPInvokeError();
            Unregister(stream);
            throw new System.Net.Sockets.SocketException(error);
        }
    }

    /// <summary>
    /// Adds a listening socket (non-blocking), level-triggered: while connections wait on it, each round of events
    /// calls <see cref="SocketListener.AcceptReady"/>, which accepts one, as nginx's workers do (multi_accept off).
    /// Accepting until EAGAIN, as an edge would need, ends every burst in a failed accept4, which .NET turns into a
    /// thrown SocketException (some 16,000 instructions a resumed handshake, perf/RESULTS.md).
    /// </summary>
    public void RegisterListener(SocketListener listener, int fd)
    {
        lock (_lock)
        {
            int index = Array.IndexOf(_listeners, null);
            if (index < 0)
            {
                index = _listeners.Length;
                Array.Resize(ref _listeners, index + 1);
            }

            Volatile.Write(ref _listeners[index], listener);
        }

        if (!AddListener(listener, fd))
        {
            int error = Marshal.GetLastPInvokeError();
            UnregisterListener(listener, fd);
            throw new System.Net.Sockets.SocketException(error);
        }
    }

    /// <summary>Puts a registered listener's socket in the epoll set (again); false if epoll_ctl failed.</summary>
    internal bool AddListener(SocketListener listener, int fd)
    {
        int index;
        lock (_lock)
        {
            index = Array.IndexOf(_listeners, listener);
        }

        return index >= 0 && Epoll.Add(_epfd, fd, Epoll.In, ListenerFlag | (uint)index) == 0;
    }

    /// <summary>
    /// Loop thread: takes a listener's socket out of the epoll set until <paramref name="resumeAt"/>
    /// (Environment.TickCount64), when the loop calls <see cref="SocketListener.Resume"/>. Out of the set rather than
    /// watched for nothing: epoll reports HUP and ERR whatever the mask.
    /// </summary>
    internal void PauseListener(SocketListener listener, int fd, long resumeAt)
    {
        Epoll.Remove(_epfd, fd);
        _paused.Add((listener, resumeAt));
    }

    /// <summary>
    /// Forgets a listener and takes its socket out of the epoll set before it is closed: closing alone would not when
    /// systemd still holds the same open file (socket activation).
    /// </summary>
    public void UnregisterListener(SocketListener listener, int fd)
    {
        Epoll.Remove(_epfd, fd);
        lock (_lock)
        {
            int index = Array.IndexOf(_listeners, listener);
            if (index >= 0)
            {
                _listeners[index] = null;
            }
        }
    }

    public int Index { get; }

    /// <summary>
    /// Runs <paramref name="action"/> on this loop's thread at its next round (from any thread: the loop is woken
    /// through its eventfd). For rare work only, such as the watchdog's probe: each post allocates.
    /// </summary>
    public void Post(Action action)
    {
        _posted.Enqueue(action);
        ulong one = 1;
        Epoll.Write(_wakeFd, (byte*)&one, sizeof(ulong)); // EAGAIN only with 2^64-2 wake-ups pending: it is awake anyway
    }

    /// <summary>
    /// Posts the watchdog's probe, unless the previous one is still waiting (<see cref="ProbeAnswered"/> then stays
    /// false until it runs).
    /// </summary>
    public void Probe()
    {
        if (Interlocked.CompareExchange(ref _probePending, 1, 0) == 0)
        {
            Interlocked.Increment(ref _probesPosted);
            Post(() => Volatile.Write(ref _probePending, 0));
        }
    }

    /// <summary>Whether the loop thread has run the probe posted last: false while it is stuck in one piece of work.</summary>
    public bool ProbeAnswered => Volatile.Read(ref _probePending) == 0;

    /// <summary>Probes posted so far (tests: at most one waits at a time).</summary>
    internal long ProbesPosted => Interlocked.Read(ref _probesPosted);

    /// <summary>True on an event loop's thread, which must never block.</summary>
    public static bool OnLoopThread => Current is not null;

    /// <summary>Where this loop's thread queues socket reads and writes for the end of the round; null when each is made at once.</summary>
    internal SocketRing? Ring => _ring;

    /// <summary>The loop whose thread this is, or null.</summary>
    internal static EventLoop? Current => t_current;

    /// <summary>
    /// On a loop thread, runs <paramref name="item"/> once this round's events are handled, and returns true; elsewhere
    /// returns false. An HTTP/2 connection's flush waits here while other answers for it may still come in the same
    /// round, so they leave in one TLS record and one send, as an event loop flushes each connection once per round.
    /// </summary>
    public static bool TryDefer(IThreadPoolWorkItem item)
    {
        if (t_current is not { } loop)
        {
            return false;
        }

        loop._deferred.Add(item);
        return true;
    }

    /// <summary>Loop thread: this round's <see cref="LoopClock.Timestamp"/>.</summary>
    internal long RoundTimestamp()
    {
        long t = _roundTimestamp;
        return t != 0 ? t : _roundTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();
    }

    /// <summary>Loop thread: this round's <see cref="LoopClock.Milliseconds"/>.</summary>
    internal long RoundMilliseconds()
    {
        long t = _roundMilliseconds;
        return t != 0 ? t : _roundMilliseconds = Environment.TickCount64;
    }

    /// <summary>Frees the socket's slot; closing the descriptor takes it out of the epoll set.</summary>
    public void Unregister(SocketStream stream)
    {
        lock (_lock)
        {
            if (_slots[stream.Slot] == stream)
            {
                _slots[stream.Slot] = null;
                _free.Push(stream.Slot);
            }
        }
    }

    private void Run()
    {
        int size = Epoll.EventSize;
        int offset = Epoll.DataOffset;
        byte* events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * size));
        t_current = this;
        Runtime.PooledBoxes.MarkLoopThread();
        if (SocketEngine.SocketRingEnabled)
        {
            _ring = SocketRing.TryCreate(out string? why);
            SocketEngine.ReportSocketRing(Index, why);
        }

        while (true)
        {
            int n = Epoll.Wait(_epfd, events, MaxEvents, _paused.Count == 0 ? -1 : UntilResume());
            _roundTimestamp = _roundMilliseconds = 0; // a new round: LoopClock reads the clock again when asked
            if (n < 0)
            {
                if (Marshal.GetLastPInvokeError() == Epoll.Interrupted)
                {
                    continue;
                }

                Console.Error.WriteLine($"appliance: epoll_wait failed: errno {Marshal.GetLastPInvokeError()}");
                Environment.FailFast("epoll_wait failed"); // no socket on this loop would ever progress again
            }

            for (int i = 0; i < n; i++)
            {
                if ((i & (RoundClockEvents - 1)) == RoundClockEvents - 1)
                {
                    _roundTimestamp = _roundMilliseconds = 0; // a long round reads the clock again every few events
                }

                byte* e = events + (i * size);
                uint mask = *(uint*)e;
                ulong data = System.Runtime.CompilerServices.Unsafe.ReadUnaligned<ulong>(e + offset);
                if ((data & ListenerFlag) != 0)
                {
                    if (data == WakeData)
                    {
                        RunPosted();
                        continue;
                    }

                    SocketListener?[] listeners = Volatile.Read(ref _listeners);
                    if ((uint)(int)(uint)data < (uint)listeners.Length && Volatile.Read(ref listeners[(int)(uint)data]) is { } listener)
                    {
                        try
                        {
                            listener.AcceptReady(mask);
                        }
                        catch (Exception ex)
                        {
                            Console.Error.WriteLine($"appliance: accepting failed: {ex}"); // AcceptReady catches its own: the loop goes on
                        }
                    }

                    continue;
                }

                int slot = (int)(uint)data;
                SocketStream?[] slots = Volatile.Read(ref _slots);
                if ((uint)slot < (uint)slots.Length && Volatile.Read(ref slots[slot]) is { } stream && stream.Generation == (uint)(data >> 32))
                {
                    try
                    {
                        stream.OnEvents(mask);
                    }
                    catch (Exception ex)
                    {
                        // A continuation that threw (ours do not: async methods keep their exceptions): the loop goes on.
                        Console.Error.WriteLine($"appliance: socket event handler failed: {ex}");
                    }
                }
            }

            if (_paused.Count > 0)
            {
                ResumeListeners(); // before the flush below: what a resumed accept starts reading is made with the round's calls
            }

            _roundTimestamp = _roundMilliseconds = 0; // the deferred flushes time their writes afresh
            do
            {
                // The reads the round's events woke, in one io_uring_enter; their continuations write, and what they
                // write goes in the next one (with the deferred flushes'), until nothing is left.
                // A stream closed meanwhile submitted its queued write early: its result is read here too, since no
                // event may wake the loop for it.
                _ring?.Flush();
                RunDeferred();
            }
            while (_ring is { Unfinished: > 0 });
        }
    }

    /// <summary>Milliseconds until the first paused listener is due (epoll_wait's timeout).</summary>
    private int UntilResume()
    {
        long first = long.MaxValue;
        foreach ((_, long resumeAt) in _paused)
        {
            first = Math.Min(first, resumeAt);
        }

        return (int)Math.Clamp(first - Environment.TickCount64, 0, int.MaxValue);
    }

    private void ResumeListeners()
    {
        long now = Environment.TickCount64;
        for (int i = _paused.Count - 1; i >= 0; i--)
        {
            (SocketListener listener, long resumeAt) = _paused[i];
            if (resumeAt <= now)
            {
                _paused.RemoveAt(i);
                try
                {
                    listener.Resume(this);
                }
                catch (Exception ex)
                {
                    Console.Error.WriteLine($"appliance: resuming a listener failed: {ex}");
                }
            }
        }
    }

    private void RunPosted()
    {
        ulong count;
        Epoll.Read(_wakeFd, (byte*)&count, sizeof(ulong)); // back to zero (level-triggered: it would report again)
        for (int left = _posted.Count; left > 0 && _posted.TryDequeue(out Action? action); left--) // what they post waits for the next wake-up
        {
            try
            {
                action();
            }
            catch (Exception ex)
            {
                Console.Error.WriteLine($"appliance: posted work failed: {ex}");
            }
        }
    }

    private void RunDeferred()
    {
        while (_deferred.Count > 0)
        {
            (_deferred, _running) = (_running, _deferred); // what these items defer runs in the next pass
            foreach (IThreadPoolWorkItem item in _running)
            {
                try
                {
                    item.Execute();
                }
                catch (Exception ex)
                {
                    Console.Error.WriteLine($"appliance: deferred work failed: {ex}");
                }
            }

            _running.Clear();
        }
    }
}

/// <summary>
/// Which socket engine carries the connections: ours (<see cref="SocketStream"/> over <see cref="EventLoop"/>s,
/// Linux) or .NET's (NetworkStream). Set once at start from server.socketEngine and server.socketThreads.
/// </summary>
public static class SocketEngine
{
    private static EventLoop[]? s_loops;
    private static int s_next;
    private static int s_threads = Math.Max(1, Environment.ProcessorCount / 2);

    /// <summary>True when connections run on our epoll loops (the default on Linux).</summary>
    public static bool UsesEpoll { get; private set; } = OperatingSystem.IsLinux();

    /// <summary>Before the first connection: the engine, its thread count, and whether its loops batch their sends.</summary>
    public static void Configure(bool epoll, int threads, bool sendRing = true)
    {
        UsesEpoll = epoll && OperatingSystem.IsLinux();
        s_threads = Math.Max(1, threads);
        SocketRingEnabled = sendRing;
    }

    /// <summary>server.ioUring: each loop sends a round's writes with one io_uring_enter where the kernel allows it.</summary>
    internal static bool SocketRingEnabled { get; private set; } = true;

    private static int s_sendRingReported;

    /// <summary>
    /// How the loops send: "io_uring" when they batch through a <see cref="SocketRing"/>, "send" when each write is
    /// sent at once (off by config, or io_uring refused: <see cref="SocketRingUnavailable"/> says why).
    /// </summary>
    public static string SendMode => Volatile.Read(ref s_loops) is { Length: > 0 } loops && loops[0].Ring is not null ? "io_uring" : "send";

    /// <summary>Why io_uring could not be used, when a loop found it refused; null otherwise.</summary>
    public static string? SocketRingUnavailable { get; private set; }

    /// <summary>A loop's thread, once at its start: a refused io_uring is said once, on standard error.</summary>
    internal static void ReportSocketRing(int loop, string? why)
    {
        if (why is not null && Interlocked.Exchange(ref s_sendRingReported, 1) == 0)
        {
            SocketRingUnavailable = why;
            Console.Error.WriteLine($"appliance: event loop {loop}: {why}; sockets are written with send(2), one call per write");
        }
    }

    /// <summary>
    /// The watchdog's check of the event loops: null when each ran the probe the previous check posted to it, else
    /// which did not (a loop stuck in one connection's work holds every connection on it, and no request shows it).
    /// Then posts the next probes.
    /// </summary>
    public static string? CheckLoops() => CheckLoops(Volatile.Read(ref s_loops) ?? []);

    internal static string? CheckLoops(EventLoop[] loops)
    {
        string? problem = null;
        foreach (EventLoop loop in loops)
        {
            if (!loop.ProbeAnswered)
            {
                problem ??= $"event loop {loop.Index} did not run its probe since the last check (its thread is stuck)";
            }

            loop.Probe();
        }

        return problem;
    }

    internal static EventLoop NextLoop()
    {
        EventLoop[] loops = s_loops ?? CreateLoops();
        return loops.Length == 1 ? loops[0] : loops[(int)((uint)Interlocked.Increment(ref s_next) % (uint)loops.Length)];
    }

    private static EventLoop[] CreateLoops()
    {
        lock (typeof(SocketEngine))
        {
            if (s_loops is null)
            {
                Appliance.Tls.RecordBuffers.Pool = LoopArrayPool.Instance; // sealed records stay on their loop's thread
                var loops = new EventLoop[s_threads];
                for (int i = 0; i < loops.Length; i++)
                {
                    loops[i] = new EventLoop(i);
                }

                s_loops = loops;
            }

            return s_loops;
        }
    }

    /// <summary>
    /// The stream for an accepted socket, on the configured engine; it owns the socket. Its first read waits for the
    /// loop's first event (epoll reports data that came before the registration at once), so the connection's work,
    /// a TLS handshake first, runs whole on its loop thread rather than starting on the thread that accepted it:
    /// resumed handshakes cost 13 % less CPU that way (perf/RESULTS.md), and the accept loop goes straight back to
    /// accepting. Accepted on its own loop's thread (one loop, or the listener's turn) with the ring, the first read
    /// goes in that round's io_uring_enter instead of waiting a round for the event.
    /// </summary>
    public static Stream Open(System.Net.Sockets.Socket socket) =>
        UsesEpoll ? new SocketStream(socket, connecting: false, readOnLoop: true) : new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);

    /// <summary>
    /// Connects <paramref name="socket"/> and returns its stream, which owns it from then on. Called on a loop thread
    /// (a request that needs an upstream connection), the socket joins that loop: the request's client connection and
    /// its upstream exchange then run on one thread, as an nginx worker keeps both ends of a request, and the
    /// upstream pool's preference for idle connections of the renting thread finds them there later.
    /// </summary>
    public static async Task<Stream> ConnectAsync(System.Net.Sockets.Socket socket, System.Net.EndPoint endPoint, CancellationToken cancellationToken)
    {
        if (!UsesEpoll)
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
        }

        EventLoop? loop = EventLoop.Current;
        socket.Blocking = false;
        try
        {
            socket.Connect(endPoint);
            return new SocketStream(socket, connecting: false, readOnLoop: false, loop);
        }
        catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode is System.Net.Sockets.SocketError.WouldBlock or System.Net.Sockets.SocketError.InProgress)
        {
        }

        var stream = new SocketStream(socket, connecting: true, readOnLoop: false, loop);
        try
        {
            await stream.WaitConnectedAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            stream.Dispose(); // closes the socket; the caller's Dispose of it is then a no-op
            throw;
        }

        return stream;
    }
}

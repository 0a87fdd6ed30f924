using System.IO.Pipelines;
using System.Net.Sockets;
using Appliance.Protocol.Http1;

namespace Appliance.Proxy;

/// <summary>One keep-alive TCP connection to a destination, with its reader and writer; rented from and returned to a pool.</summary>
internal sealed class UpstreamConnection : IDisposable
{
    // A read takes up to 64 KiB at once, so a response of 32 KiB (the client writer's segment) is relayed in one flush
    // (a TLS record and a send) rather than one per read. The buffer is rented when bytes come and returned once they
    // are relayed: an idle pooled connection holds none. Not 32 KiB: the shared array pool keeps one array of each
    // size per thread, and the client's 32 KiB output segment, rented while this buffer is out and returned after it
    // came back, then went to the pool's locked per-core stacks both ways (about 330 instructions per request).
    private const int ReadBufferSize = 64 * 1024;
    private const int MinimumReadSize = 4096;

    private static readonly ObjectDisposedException s_discarded = new(nameof(UpstreamConnection));

    private readonly Socket _socket;
    private readonly Stream _stream;

    public UpstreamConnection(Socket socket, Stream stream)
    {
        _socket = socket;
        _stream = stream;
        // The relay reads the connection itself (its continuation runs on the socket's event thread, inline), so the
        // upstream's bytes are read only as fast as the client takes them: backpressure without a buffer between.
        Input = new Transport.ConnectionReader(stream, ReadBufferSize, MinimumReadSize);
        Output = new Transport.ConnectionWriter(stream, segmentSize: 4096);
    }

    public Transport.ConnectionReader Input { get; }

    /// <summary>The thread this connection's reads last completed on when they waited: its socket's event thread.</summary>
    public int EventThread { get; set; }

    public PipeWriter Output { get; }

    /// <summary>
    /// The response-headers timeout of the request in progress: cancelled by <see cref="ArmTimeout"/>'s timer once its
    /// deadline passes. Replaced (not reused) after it fired.
    /// </summary>
    public CancellationTokenSource Timeout { get; private set; } = new();

    public long LastUsed { get; set; } = Transport.LoopClock.Milliseconds;

    public int Requests { get; set; }

    /// <summary>Stopwatch ticks from the request sent to its response head; 0 when no head came.</summary>
    public long ResponseLatency { get; set; }

    /// <summary>The upstream said "Connection: close" (or spoke HTTP/1.0 without keep-alive).</summary>
    public bool CloseRequested { get; set; }

    /// <summary>An HTTP/1.0 upstream asked to keep the connection (Connection: keep-alive).</summary>
    public bool KeepAlive10 { get; set; }

    /// <summary>The response's Connection named a field (not only close or keep-alive): that field is hop-by-hop too.</summary>
    public bool ConnectionNamesFields { get; set; }

    /// <summary>An idle keep-alive connection that became readable was closed by the upstream (or sent junk).</summary>
    public bool LooksClosed
    {
        get
        {
            // Bytes read past the last response count as much as bytes still in the socket.
            if (Input.TryRead(out ReadResult pending))
            {
                bool any = !pending.Buffer.IsEmpty || pending.IsCompleted;
                Input.AdvanceTo(pending.Buffer.Start);
                if (any)
                {
                    return true;
                }
            }

            try
            {
                return _socket.Poll(0, SelectMode.SelectRead) || !_socket.Connected;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return true;
            }
        }
    }

    /// <summary>
    /// Sends a request head: straight to a plain socket when nothing is buffered ahead of it (a request head is
    /// written after the previous exchange's last flush), which spares the pipe writer's copy and its flush, unless the
    /// socket's loop sends a round's writes together (io_uring): then the head joins them through the pipe; what the
    /// socket does not take at once, or every byte on TLS, goes into <see cref="Output"/>. True when all of it left;
    /// false when the caller must flush <see cref="Output"/>.
    /// </summary>
    public bool SendHead(HeadBuffer head)
    {
        int sent = 0;
        if (_stream is Transport.SocketStream socket && Output.UnflushedBytes == 0 && !socket.WritesWaitForRound)
        {
            sent = socket.TrySendNow(head.Written);
        }

        bool whole = sent == head.Written.Length;
        head.CopyTo(Output, sent);
        return whole;
    }

    /// <summary>Ends our sending half (a tunnel whose client finished): TLS close_notify, then TCP FIN.</summary>
    public async ValueTask ShutdownSendAsync()
    {
        await Output.FlushAsync().ConfigureAwait(false);
        if (_stream is Tls.TlsRecordStream records)
        {
            await records.ShutdownAsync().ConfigureAwait(false);
        }
        else if (_stream is System.Net.Security.SslStream tls)
        {
            await tls.ShutdownAsync().ConfigureAwait(false);
        }

        _socket.Shutdown(SocketShutdown.Send);
    }

    /// <summary>The request's total timeout ran out: the socket is closed under whatever is reading or writing it.</summary>
    public bool Aborted { get; private set; }

    public void Abort()
    {
        Aborted = true;
        CloseRequested = true;
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        _stream.Dispose();
    }

    // The timeout's deadline (Environment.TickCount64; 0 = none, Fired = the timer took it) and the one timer that
    // enforces it. Arming a request's timeout writes the deadline and changes the timer only when it is not running or
    // is due later than the new deadline (the 100-continue wait is shorter than the response-headers timeout);
    // finishing the head clears the deadline. A timer that fires early (the deadline moved on) waits for the rest; one
    // that finds no deadline stops. So a connection serving request after request changes its timer about once per
    // timeout, not twice per request (a Change takes the timer queue's lock and costs more than the rest of the
    // bookkeeping of a proxied request).
    private const long Fired = -1;
    private long _deadline;
    private long _timerDue; // the deadline the running timer was last set for
    private int _timerRunning;
    private volatile bool _disposed;
    private Timer? _timer;
    private static readonly TimerCallback s_onTimer = static state => ((UpstreamConnection)state!).OnTimer();

    /// <summary>Starts the response-headers timeout. A source the timer cancelled (the 100-continue wait) is replaced first.</summary>
    public void ArmTimeout(TimeSpan after)
    {
        // Fired is taken back before the new deadline is published, so the timer cannot fire again on a source whose
        // cancellation is still in flight from its previous run.
        if (Interlocked.CompareExchange(ref _deadline, 0, Fired) == Fired || Timeout.IsCancellationRequested)
        {
            Timeout = new CancellationTokenSource(); // the old one is the timer's (it may be cancelling it right now)
        }

        long ms = Math.Max(1, (long)Math.Ceiling(after.TotalMilliseconds));
        long deadline = Environment.TickCount64 + ms;
        Interlocked.Exchange(ref _deadline, deadline);
        if (Interlocked.Exchange(ref _timerRunning, 1) == 0 || deadline < Interlocked.Read(ref _timerDue))
        {
            Schedule(deadline, ms);
        }
    }

    /// <summary>The response head came: no timeout until the next <see cref="ArmTimeout"/>.</summary>
    public void ResetTimeout()
    {
        if (Interlocked.Exchange(ref _deadline, 0) == Fired || Timeout.IsCancellationRequested)
        {
            // The timer took this deadline as the head arrived: its source is cancelled (or about to be) and is left to
            // it; the next request gets a fresh one.
            Timeout = new CancellationTokenSource();
        }
    }

    private void Schedule(long deadline, long ms)
    {
        if (_timer is null)
        {
            using (ExecutionContext.SuppressFlow()) // the first request's context must not live as long as the connection
            {
                _timer = new Timer(s_onTimer, this, System.Threading.Timeout.Infinite, System.Threading.Timeout.Infinite);
            }
        }

        Interlocked.Exchange(ref _timerDue, deadline);
        try
        {
            _timer.Change(ms, System.Threading.Timeout.Infinite);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void OnTimer()
    {
        while (!_disposed)
        {
            long deadline = Interlocked.Read(ref _deadline);
            CancellationTokenSource source = Timeout; // a source replaced after this read comes with a deadline write, so the CAS below fails
            if (deadline > 0)
            {
                long left = deadline - Environment.TickCount64;
                if (left > 0)
                {
                    Schedule(deadline, left);
                    if (Interlocked.Read(ref _deadline) == deadline)
                    {
                        return;
                    }

                    continue; // re-armed meanwhile, perhaps sooner than what was just scheduled
                }

                if (Interlocked.CompareExchange(ref _deadline, Fired, deadline) == deadline)
                {
                    try
                    {
                        source.Cancel();
                    }
                    catch (ObjectDisposedException)
                    {
                    }
                }
            }

            // Stopped; but a deadline armed meanwhile saw the timer running and did not start it: take it on. (The
            // exchange is a full fence, so the re-read below cannot come before it.)
            Interlocked.Exchange(ref _timerRunning, 0);
            if (Interlocked.Read(ref _deadline) <= 0 || Interlocked.Exchange(ref _timerRunning, 1) != 0)
            {
                return;
            }
        }
    }

    public void Dispose()
    {
        Input.Complete();
        Output.Complete(s_discarded); // what was not flushed goes with the connection, without a blocking write
        _stream.Dispose();
        _disposed = true;
        _timer?.Dispose();
        Timeout.Dispose();
    }
}

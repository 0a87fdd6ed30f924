using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Appliance.Transport;

namespace Appliance.Tests.Transport;

/// <summary>
/// Our socket engine (<see cref="SocketStream"/> on the epoll loops) against real loopback and Unix sockets: reads
/// that wait for data, writes that wait for room, ends, resets, cancellation and disposal while an operation
/// waits, and a long ping-pong that would hang on a lost wakeup.
/// </summary>
public sealed class SocketStreamTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>A connected pair: ours (on the engine) and a plain blocking socket as the peer.</summary>
    private static async Task<(SocketStream Ours, Socket Peer)> PairAsync()
    {
        (_, Stream stream, Socket peer) = await Appliance.Tests.Support.LoopbackPair.ConnectAsync(Timeout);
        return ((SocketStream)stream, peer);
    }

    [Fact]
    public async Task A_read_waits_for_data_and_a_short_read_does_not_lose_what_comes_next()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        await using (ours)
        {
            var buffer = new byte[64];
            ValueTask<int> pending = ours.ReadAsync(buffer);
            Assert.False(pending.IsCompleted);
            peer.Send("hello"u8);
            Assert.Equal(5, await pending.AsTask().WaitAsync(Timeout));
            Assert.Equal("hello"u8.ToArray(), buffer[..5]);

            // The short read above drained the socket: the next read parks without trying, and must still wake.
            for (int i = 0; i < 3; i++)
            {
                pending = ours.ReadAsync(buffer);
                peer.Send([(byte)i]);
                Assert.Equal(1, await pending.AsTask().WaitAsync(Timeout));
                Assert.Equal(i, buffer[0]);
            }
        }
    }

    [Fact]
    public async Task An_accepted_socket_reads_what_arrived_before_it_joined_the_loop()
    {
        // The first read of an accepted socket waits for the loop's first event instead of trying the socket: data
        // already there when the socket is registered must still produce that event.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!).WaitAsync(Timeout);
        client.Send("early"u8);
        Socket accepted = await listener.AcceptAsync().WaitAsync(Timeout);
        Assert.True(SpinWait.SpinUntil(() => accepted.Available == 5, Timeout)); // queued before registration

        await using var ours = (SocketStream)SocketEngine.Open(accepted);
        var buffer = new byte[16];
        Assert.Equal(5, await ours.ReadAsync(buffer).AsTask().WaitAsync(Timeout));
        Assert.Equal("early"u8.ToArray(), buffer[..5]);
    }

    [Fact]
    public async Task A_connection_made_on_a_loop_thread_joins_that_loop_and_one_made_elsewhere_does_not()
    {
        // A loop of the test's own, which the engine never hands out in turn: a connection made on its thread (as a
        // proxied request makes its upstream connection) is on it only by that rule.
        var loop = new EventLoop(99);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4);
        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await peer.ConnectAsync(listener.LocalEndPoint!).WaitAsync(Timeout);
        Socket accepted = await listener.AcceptAsync().WaitAsync(Timeout);
        await using var ours = new SocketStream(accepted, connecting: false, readOnLoop: false, loop);
        Assert.Same(loop, ours.Loop);

        ValueTask<int> read = ours.ReadAsync(new byte[1]);
        Task<(bool OnLoop, SocketStream Upstream)> connected = ConnectWhenReadAsync(read, listener.LocalEndPoint!);
        peer.Send("x"u8);
        (bool onLoop, SocketStream upstream) = await connected.WaitAsync(Timeout);
        await using (upstream)
        {
            Assert.True(onLoop, "the read's completion ran on the loop thread");
            Assert.Same(loop, upstream.Loop);
        }

        // From a thread that is no loop's (the test may have resumed on the loop's): the engine's loops in turn.
        using var elsewhere = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await using var other = await Task.Run(async () =>
        {
            Assert.False(EventLoop.OnLoopThread);
            return (SocketStream)await SocketEngine.ConnectAsync(elsewhere, listener.LocalEndPoint!, CancellationToken.None);
        }).WaitAsync(Timeout);
        Assert.NotSame(loop, other.Loop);

        static async Task<(bool, SocketStream)> ConnectWhenReadAsync(ValueTask<int> read, EndPoint target)
        {
            await read.ConfigureAwait(false); // resumes where the read completed: on the loop's thread, whatever the test runner's context
            bool onLoop = EventLoop.OnLoopThread;
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            return (onLoop, (SocketStream)await SocketEngine.ConnectAsync(socket, target, CancellationToken.None));
        }
    }

    [Fact]
    public async Task A_zero_byte_read_completes_when_data_arrives_and_consumes_nothing()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        await using (ours)
        {
            // The first byte is sent only once the read waits, so the event that wakes it is the one the read drains.
            // Sent before, its edge could still be on its way to the loop after the read took the byte, and that stale
            // edge would rightly make the zero-byte read below answer "maybe" at once.
            var buffer = new byte[16];
            ValueTask<int> first = ours.ReadAsync(buffer);
            Assert.False(first.IsCompleted);
            peer.Send("x"u8);
            Assert.Equal(1, await first.AsTask().WaitAsync(Timeout));

            ValueTask<int> ready = ours.ReadAsync(Memory<byte>.Empty);
            Assert.False(ready.IsCompleted);
            peer.Send("abc"u8);
            Assert.Equal(0, await ready.AsTask().WaitAsync(Timeout));
            Assert.Equal(3, await ours.ReadAsync(buffer).AsTask().WaitAsync(Timeout));
            Assert.Equal("abc"u8.ToArray(), buffer[..3]);
        }
    }

    [Fact]
    public async Task A_write_larger_than_the_socket_buffers_waits_for_the_reader_and_arrives_whole()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        await using (ours)
        {
            byte[] data = RandomNumberGenerator.GetBytes(16 * 1024 * 1024);
            ValueTask write = ours.WriteAsync(data);
            Assert.False(write.IsCompleted); // 16 MiB does not fit in loopback socket buffers: it waits for room

            var received = new MemoryStream();
            var chunk = new byte[256 * 1024];
            Task reader = Task.Run(() =>
            {
                while (received.Length < data.Length)
                {
                    int n = peer.Receive(chunk);
                    Assert.True(n > 0);
                    received.Write(chunk, 0, n);
                }
            });
            await write.AsTask().WaitAsync(Timeout);
            await reader.WaitAsync(Timeout);
            Assert.Equal(SHA256.HashData(data), SHA256.HashData(received.ToArray()));
        }
    }

    [Fact]
    public async Task Sending_at_once_takes_what_fits_and_a_write_after_it_delivers_the_rest_in_order()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        await using (ours)
        {
            Assert.Equal(5, ours.TrySendNow("head:"u8));
            Assert.Equal(0, ours.TrySendNow(ReadOnlySpan<byte>.Empty));

            // More than the loopback buffers hold: part goes at once, never all, and nothing waits.
            byte[] data = RandomNumberGenerator.GetBytes(16 * 1024 * 1024);
            int sent = ours.TrySendNow(data);
            Assert.InRange(sent, 1, data.Length - 1);
            Assert.Equal(0, ours.TrySendNow(data.AsSpan(sent))); // still full: nothing more, no error

            ValueTask rest = ours.WriteAsync(data.AsMemory(sent));
            var received = new MemoryStream();
            var chunk = new byte[256 * 1024];
            Task reader = Task.Run(() =>
            {
                while (received.Length < 5 + data.Length)
                {
                    int n = peer.Receive(chunk);
                    Assert.True(n > 0);
                    received.Write(chunk, 0, n);
                }
            });
            await rest.AsTask().WaitAsync(Timeout);
            await reader.WaitAsync(Timeout);
            byte[] all = received.ToArray();
            Assert.Equal("head:"u8.ToArray(), all[..5]);
            Assert.Equal(SHA256.HashData(data), SHA256.HashData(all[5..]));
        }

        // A peer that reset the connection: the error a write gives, not a count.
        (ours, peer) = await PairAsync();
        await using (ours)
        {
            peer.LingerState = new LingerOption(true, 0);
            peer.Dispose();
            Assert.Equal(0, await ours.ReadAsync(new byte[1]).AsTask().ContinueWith(t => t.IsFaulted ? 0 : t.Result).WaitAsync(Timeout)); // the RST has arrived
            Assert.Throws<IOException>(() => ours.TrySendNow("late"u8));
        }
    }

    [Fact]
    public async Task The_peer_closing_ends_a_waiting_read_with_zero_and_a_reset_with_an_error()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        await using (ours)
        {
            ValueTask<int> pending = ours.ReadAsync(new byte[8]);
            peer.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, await pending.AsTask().WaitAsync(Timeout));
            Assert.Equal(0, await ours.ReadAsync(new byte[8]).AsTask().WaitAsync(Timeout)); // and stays ended
            peer.Dispose();
        }

        (ours, peer) = await PairAsync();
        await using (ours)
        {
            ValueTask<int> pending = ours.ReadAsync(new byte[8]);
            peer.LingerState = new LingerOption(true, 0);
            peer.Dispose(); // RST
            var error = await Assert.ThrowsAsync<IOException>(() => pending.AsTask().WaitAsync(Timeout));
            Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(error.InnerException).SocketErrorCode);
        }
    }

    [Fact]
    public async Task A_cancelled_read_ends_with_OperationCanceled_and_the_next_read_still_gets_the_data()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        await using (ours)
        {
            using var cts = new CancellationTokenSource();
            ValueTask<int> pending = ours.ReadAsync(new byte[8], cts.Token);
            Assert.False(pending.IsCompleted);
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.AsTask().WaitAsync(Timeout));

            var buffer = new byte[8];
            peer.Send("later"u8);
            Assert.Equal(5, await ours.ReadAsync(buffer).AsTask().WaitAsync(Timeout));
            Assert.Equal("later"u8.ToArray(), buffer[..5]);

            // An already cancelled token never starts the read.
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ours.ReadAsync(buffer, cts.Token).AsTask());
        }
    }

    [Fact]
    public async Task A_waiting_write_ends_with_OperationCanceled_when_cancelled_and_with_an_abort_when_the_stream_is_disposed()
    {
        // The write operation is made at the first write that has to wait: the first wait here is a cancelled one,
        // and the next write on the same stream waits again, until the stream is disposed under it.
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        {
            byte[] data = new byte[16 * 1024 * 1024]; // more than loopback socket buffers hold: the peer never reads
            using var cts = new CancellationTokenSource();
            ValueTask cancelled = ours.WriteAsync(data, cts.Token);
            Assert.False(cancelled.IsCompleted);
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.AsTask().WaitAsync(Timeout));

            ValueTask aborted = ours.WriteAsync(data);
            Assert.False(aborted.IsCompleted);
            ours.Dispose();
            var error = await Assert.ThrowsAsync<IOException>(() => aborted.AsTask().WaitAsync(Timeout));
            Assert.Equal(SocketError.OperationAborted, Assert.IsType<SocketException>(error.InnerException).SocketErrorCode);
        }
    }

    [Fact]
    public async Task Disposing_the_stream_fails_a_waiting_read_and_closes_the_socket()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        {
            ValueTask<int> pending = ours.ReadAsync(new byte[8]);
            ours.Dispose();
            var error = await Assert.ThrowsAsync<IOException>(() => pending.AsTask().WaitAsync(Timeout));
            Assert.Equal(SocketError.OperationAborted, Assert.IsType<SocketException>(error.InnerException).SocketErrorCode);
            Assert.Equal(0, peer.Receive(new byte[8])); // the peer sees the close
            await Assert.ThrowsAsync<ObjectDisposedException>(() => ours.ReadAsync(new byte[8]).AsTask()); // as NetworkStream
            await Assert.ThrowsAsync<ObjectDisposedException>(() => ours.WriteAsync(new byte[8]).AsTask());
        }
    }

    [Fact]
    public async Task Connect_records_the_connection_and_a_refused_connect_throws()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        await using (ours)
        {
            Assert.True(ours.Socket.Connected);
            Assert.Equal(peer.LocalEndPoint, ours.Socket.RemoteEndPoint);
        }

        int closedPort;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            closedPort = ((IPEndPoint)probe.LocalEndPoint!).Port; // bound, never listening: connects are refused
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var refused = await Assert.ThrowsAsync<SocketException>(() =>
                SocketEngine.ConnectAsync(socket, new IPEndPoint(IPAddress.Loopback, closedPort), CancellationToken.None).WaitAsync(Timeout));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
            socket.Dispose();
        }
    }

    [Fact]
    public async Task A_Unix_socket_pair_works_too()
    {
        string path = Path.Combine(Path.GetTempPath(), "appliance-ss-" + Guid.NewGuid().ToString("N")[..12] + ".sock");
        try
        {
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(1);
            var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            Task<Socket> accept = listener.AcceptAsync();
            await using Stream ours = await SocketEngine.ConnectAsync(client, new UnixDomainSocketEndPoint(path), CancellationToken.None).WaitAsync(Timeout);
            using Socket peer = await accept.WaitAsync(Timeout);
            await ours.WriteAsync("ping"u8.ToArray());
            var buffer = new byte[8];
            Assert.Equal(4, peer.Receive(buffer));
            ValueTask<int> pending = ours.ReadAsync(buffer);
            peer.Send("pong"u8);
            Assert.Equal(4, await pending.AsTask().WaitAsync(Timeout));
            Assert.Equal("pong"u8.ToArray(), buffer[..4]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// Two streams on the engine answer each other 20,000 times, reads issued before and after the bytes arrive: a
    /// wakeup lost between "the socket is empty" and "park" would stall it.
    /// </summary>
    [Fact]
    public async Task A_long_ping_pong_between_two_engine_streams_never_stalls()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Task<Socket> accept = listener.AcceptAsync();
        await using Stream a = await SocketEngine.ConnectAsync(client, listener.LocalEndPoint!, CancellationToken.None).WaitAsync(Timeout);
        Socket accepted = await accept.WaitAsync(Timeout);
        accepted.NoDelay = true;
        await using Stream b = SocketEngine.Open(accepted);

        const int Rounds = 20_000;
        async Task Echo()
        {
            var buffer = new byte[4];
            for (int i = 0; i < Rounds; i++)
            {
                await b.ReadExactlyAsync(buffer);
                await b.WriteAsync(buffer);
            }
        }

        async Task Ping()
        {
            var message = new byte[4];
            var reply = new byte[4];
            for (int i = 0; i < Rounds; i++)
            {
                BitConverter.TryWriteBytes(message, i);
                await a.WriteAsync(message);
                await a.ReadExactlyAsync(reply);
                Assert.Equal(i, BitConverter.ToInt32(reply));
            }
        }

        await Task.WhenAll(Task.Run(Echo), Task.Run(Ping)).WaitAsync(TimeSpan.FromSeconds(60));
    }

    private sealed class WorkItem(Action action) : IThreadPoolWorkItem
    {
        public void Execute() => action();
    }

    /// <summary>
    /// What an HTTP/2 connection's deferred flush relies on: work deferred from a loop thread runs on that thread once
    /// the current event's handling has returned, and nowhere else is a loop thread.
    /// </summary>
    [Fact]
    public async Task Work_deferred_on_a_loop_thread_runs_after_the_event_on_that_thread()
    {
        Assert.False(EventLoop.TryDefer(new WorkItem(() => { })));
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        await using (ours)
        {
            var order = new ConcurrentQueue<string>();
            var deferredOn = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            int continuationOn = 0;
            bool deferred = false;
            ValueTask<int> pending = ours.ReadAsync(new byte[8]);
            Assert.False(pending.IsCompleted);
            // ExecuteSynchronously: the continuation runs inline on the thread that completes the read (the loop's).
            Task continued = pending.AsTask().ContinueWith(
                _ =>
                {
                    continuationOn = Environment.CurrentManagedThreadId;
                    order.Enqueue("read completed");
                    deferred = EventLoop.TryDefer(new WorkItem(() =>
                    {
                        order.Enqueue("deferred work");
                        deferredOn.SetResult(Environment.CurrentManagedThreadId);
                    }));
                    order.Enqueue("continuation returns");
                },
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            peer.Send("x"u8);
            int thread = await deferredOn.Task.WaitAsync(Timeout);
            await continued;
            Assert.True(deferred);
            Assert.Equal(continuationOn, thread);
            Assert.Equal(["read completed", "continuation returns", "deferred work"], order.ToArray());
        }
    }

    /// <summary>
    /// The synchronous Write (a pipe writer completed with bytes it never flushed) waits for room in the socket, but
    /// never on a loop thread, where it would stall every socket of the loop: there it fails at once.
    /// </summary>
    [Fact]
    public async Task A_synchronous_write_that_would_block_fails_on_a_loop_thread_instead_of_waiting()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        await using (ours)
        {
            ValueTask<int> pending = ours.ReadAsync(new byte[8]);
            Assert.False(pending.IsCompleted);
            Task onLoop = pending.AsTask().ContinueWith(
                _ =>
                {
                    Assert.True(EventLoop.OnLoopThread);
                    ours.Write(new byte[64 * 1024 * 1024]); // the peer reads nothing: the socket buffers fill
                },
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            peer.Send("x"u8);
            await Assert.ThrowsAsync<IOException>(() => onLoop.WaitAsync(Timeout));
        }
    }
}

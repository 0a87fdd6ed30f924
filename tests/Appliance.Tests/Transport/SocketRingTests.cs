using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Appliance.Transport;

namespace Appliance.Tests.Transport;

/// <summary>
/// Reads woken by a round's events, and writes made on an event loop's thread, are made together through the loop's
/// <see cref="SocketRing"/> (io_uring): against real loopback sockets, what arrives, in what order, when the socket
/// buffers fill, when the ring is full, and when the stream is disposed with a call still queued.
/// </summary>
public sealed class SocketRingTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private static async Task<(SocketStream Ours, Socket Peer)> PairAsync()
    {
        (_, Stream stream, Socket peer) = await Appliance.Tests.Support.LoopbackPair.ConnectAsync(Timeout);
        return ((SocketStream)stream, peer);
    }

    /// <summary>Runs <paramref name="work"/> on <paramref name="ours"/>'s loop thread (in a read's continuation) and waits for it.</summary>
    private static async Task OnLoopAsync(SocketStream ours, Socket peer, Action work)
    {
        ValueTask<int> pending = ours.ReadAsync(new byte[1]);
        Assert.False(pending.IsCompleted);
        Task done = pending.AsTask().ContinueWith(
            _ =>
            {
                Assert.True(EventLoop.OnLoopThread);
                work();
            },
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        peer.Send("x"u8);
        await done.WaitAsync(Timeout);
    }

    private static byte[] ReceiveAll(Socket peer, int length)
    {
        var received = new byte[length];
        int at = 0;
        while (at < length)
        {
            int n = peer.Receive(received.AsSpan(at));
            Assert.True(n > 0, $"the connection ended after {at} of {length} bytes");
            at += n;
        }

        return received;
    }

    [Fact]
    public void A_ring_is_made_or_the_reason_it_cannot_be_is_given()
    {
        using SocketRing? ring = SocketRing.TryCreate(out string? why);
        Assert.Equal(ring is null, why is not null);
        if (ring is not null)
        {
            Assert.Equal(0, ring.Queued);
            Assert.Equal(0, ring.Flush()); // nothing queued: nothing completes
        }
    }

    [Fact]
    public async Task A_write_on_the_loop_thread_completes_at_the_end_of_the_round_and_arrives()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        await using (ours)
        {
            bool batched = false;
            ValueTask write = default;
            await OnLoopAsync(ours, peer, () =>
            {
                batched = ours.WritesWaitForRound;
                write = ours.WriteAsync("hello, round"u8.ToArray());
                // Queued on the ring: not sent until the round ends, after this continuation returns.
                Assert.Equal(batched, !write.IsCompleted);
            });
            Assert.Equal(SocketEngine.SendMode == "io_uring", batched);
            await write.AsTask().WaitAsync(Timeout);
            Assert.Equal("hello, round"u8.ToArray(), ReceiveAll(peer, 12));
        }
    }

    [Fact]
    public async Task A_write_larger_than_the_socket_buffers_is_finished_by_the_usual_path_and_arrives_whole_in_order()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        await using (ours)
        {
            byte[] data = RandomNumberGenerator.GetBytes(16 * 1024 * 1024); // far beyond what loopback buffers hold
            byte[] tail = RandomNumberGenerator.GetBytes(1000);
            Task<byte[]> reader = Task.Run(() => ReceiveAll(peer, data.Length + tail.Length));
            Task? writes = null;
            await OnLoopAsync(ours, peer, () => writes = WriteBothAsync());
            await writes!.WaitAsync(Timeout);
            byte[] received = await reader.WaitAsync(Timeout);
            Assert.True(received.AsSpan(0, data.Length).SequenceEqual(data));
            Assert.True(received.AsSpan(data.Length).SequenceEqual(tail));

            async Task WriteBothAsync()
            {
                await ours.WriteAsync(data); // the ring sends part (MSG_DONTWAIT), the rest waits for EPOLLOUT
                await ours.WriteAsync(tail);
            }
        }
    }

    [Fact]
    public async Task More_writes_in_one_round_than_the_ring_holds_each_arrive_on_their_own_connection()
    {
        const int Count = SocketRing.Entries + 44; // the ring's last free entry is taken, then writes are sent at once
        (List<SocketStream> ours, List<Socket> peers) = await ManyPairsAsync(Count);
        try
        {
            // Every stream on the first one's loop: with one loop (this box's default) that is all of them.
            var writes = new List<ValueTask>();
            await OnLoopAsync(ours[0], peers[0], () =>
            {
                for (int i = 0; i < Count; i++)
                {
                    writes.Add(ours[i].WriteAsync(System.Text.Encoding.ASCII.GetBytes($"connection {i:D4};")));
                }
            });
            foreach (ValueTask write in writes)
            {
                await write.AsTask().WaitAsync(Timeout);
            }

            for (int i = 0; i < Count; i++)
            {
                Assert.Equal($"connection {i:D4};", System.Text.Encoding.ASCII.GetString(ReceiveAll(peers[i], 16)));
            }
        }
        finally
        {
            await DisposeAllAsync(ours, peers);
        }
    }

    [Fact]
    public async Task Reads_woken_together_each_get_their_own_connections_bytes_and_a_second_read_waits_again()
    {
        const int Count = SocketRing.Entries + 44; // more reads than the ring holds can be woken in one round
        (List<SocketStream> ours, List<Socket> peers) = await ManyPairsAsync(Count);
        try
        {
            var buffers = new byte[Count][];
            var reads = new Task<int>[Count];
            for (int i = 0; i < Count; i++)
            {
                buffers[i] = new byte[64];
                reads[i] = ours[i].ReadAsync(buffers[i]).AsTask();
                Assert.False(reads[i].IsCompleted);
            }

            for (int i = 0; i < Count; i++)
            {
                peers[i].Send(System.Text.Encoding.ASCII.GetBytes($"to {i:D4}"));
            }

            for (int i = 0; i < Count; i++)
            {
                Assert.Equal(7, await reads[i].WaitAsync(Timeout));
                Assert.Equal($"to {i:D4}", System.Text.Encoding.ASCII.GetString(buffers[i], 0, 7));
            }

            // Each short read drained its socket: the next one waits for new bytes, and gets them.
            Task<int> again = ours[7].ReadAsync(buffers[7]).AsTask();
            Assert.False(again.IsCompleted);
            peers[7].Send("more"u8);
            Assert.Equal(4, await again.WaitAsync(Timeout));
            Assert.Equal("more"u8.ToArray(), buffers[7][..4]);

            // The end of a connection reaches a waiting read as 0.
            Task<int> end = ours[9].ReadAsync(buffers[9]).AsTask();
            peers[9].Shutdown(SocketShutdown.Send);
            Assert.Equal(0, await end.WaitAsync(Timeout));
        }
        finally
        {
            await DisposeAllAsync(ours, peers);
        }
    }

    private static async Task<(List<SocketStream> Ours, List<Socket> Peers)> ManyPairsAsync(int count)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(count);
        var ours = new List<SocketStream>();
        var peers = new List<Socket>();
        for (int i = 0; i < count; i++)
        {
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            Task<Socket> accept = listener.AcceptAsync();
            ours.Add((SocketStream)await SocketEngine.ConnectAsync(client, listener.LocalEndPoint!, CancellationToken.None).WaitAsync(Timeout));
            peers.Add(await accept.WaitAsync(Timeout));
        }

        return (ours, peers);
    }

    private static async Task DisposeAllAsync(List<SocketStream> ours, List<Socket> peers)
    {
        foreach (SocketStream s in ours)
        {
            await s.DisposeAsync();
        }

        foreach (Socket p in peers)
        {
            p.Dispose();
        }
    }

    [Fact]
    public async Task Disposing_on_the_loop_thread_with_a_write_queued_sends_it_before_the_close()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        {
            ValueTask write = default;
            await OnLoopAsync(ours, peer, () =>
            {
                write = ours.WriteAsync("last words"u8.ToArray());
                ours.Dispose(); // as a connection closed right after its last response, without awaiting the write
            });
            await write.AsTask().WaitAsync(Timeout);
            Assert.Equal("last words"u8.ToArray(), ReceiveAll(peer, 10));
            Assert.Equal(0, peer.Receive(new byte[1])); // then the FIN: the socket was closed
        }
    }

    [Fact]
    public async Task Disposing_from_another_thread_with_a_write_queued_leaves_the_close_to_the_round_end()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        {
            ValueTask write = default;
            bool queued = false;
            await OnLoopAsync(ours, peer, () =>
            {
                write = ours.WriteAsync("queued then disposed"u8.ToArray());
                queued = !write.IsCompleted;
                // Another thread disposes while the loop still holds the write: the descriptor must stay open (it
                // could otherwise be reused by the next socket) until the ring has sent it.
                Task.Run(ours.Dispose).Wait(Timeout);
            });
            Assert.Equal(SocketEngine.SendMode == "io_uring", queued);
            await write.AsTask().WaitAsync(Timeout);
            Assert.Equal("queued then disposed"u8.ToArray(), ReceiveAll(peer, 20));
            Assert.Equal(0, peer.Receive(new byte[1]));
        }
    }

    [Fact]
    public async Task A_queued_write_to_a_connection_the_peer_reset_fails_with_the_error()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        await using (ours)
        {
            Task? write = null;
            await OnLoopAsync(ours, peer, () =>
            {
                // The reset reaches our socket now (loopback), but the loop sees its event only next round: the write
                // is queued as usual, and the ring's send meets the reset.
                peer.LingerState = new LingerOption(true, 0);
                peer.Dispose();
                write = ours.WriteAsync(new byte[100]).AsTask();
            });
            IOException e = await Assert.ThrowsAsync<IOException>(() => write!.WaitAsync(Timeout));
            Assert.IsType<SocketException>(e.InnerException);
        }
    }

    [Fact]
    public async Task A_queued_write_left_waiting_by_a_full_socket_buffer_ends_when_its_token_is_cancelled()
    {
        (SocketStream ours, Socket peer) = await PairAsync();
        using (peer)
        await using (ours)
        {
            using var cancel = new CancellationTokenSource();
            Task? write = null;
            await OnLoopAsync(ours, peer, () =>
            {
                // The peer never reads: the ring sends what the buffers take and the rest waits for EPOLLOUT, which
                // never comes. A proxy's idle timeout ends such a write through its token.
                write = ours.WriteAsync(new byte[16 * 1024 * 1024], cancel.Token).AsTask();
            });
            Assert.False(write!.IsCompleted);
            cancel.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => write.WaitAsync(Timeout));
        }
    }
}

using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Security.Cryptography;
using Appliance.Tests.Support;
using Appliance.Transport;

namespace Appliance.Tests.Transport;

/// <summary>
/// <see cref="ConnectionWriter"/> over real loopback sockets on our engine: bytes leave in order whether they fit one
/// segment or many, a flush that waits for the peer to read completes when it does, an idle writer holds no segment,
/// and the PipeWriter contract's edges (completion, cancellation, misuse) behave.
/// </summary>
public sealed class ConnectionWriterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private static async Task<(ConnectionWriter Writer, Stream Stream, Socket Peer)> PairAsync(int segmentSize = 32 * 1024)
    {
        (_, Stream stream, Socket peer) = await LoopbackPair.ConnectAsync(Timeout);
        return (new ConnectionWriter(stream, segmentSize), stream, peer);
    }

    private static byte[] Receive(Socket peer, int count)
    {
        var data = new byte[count];
        int at = 0;
        peer.ReceiveTimeout = (int)Timeout.TotalMilliseconds;
        while (at < count)
        {
            int n = peer.Receive(data, at, count - at, SocketFlags.None);
            Assert.True(n > 0, "the connection ended early");
            at += n;
        }

        return data;
    }

    [Fact]
    public async Task A_flush_sends_what_was_written_and_leaves_no_segment_behind()
    {
        (ConnectionWriter writer, Stream stream, Socket peer) = await PairAsync();
        using (peer)
        await using (stream)
        {
            for (int i = 0; i < 3; i++)
            {
                writer.Write("HTTP/1.1 200 OK\r\n\r\n"u8);
                Assert.Equal(19, writer.UnflushedBytes);
                Assert.True(writer.HoldsBuffer);
                FlushResult result = await writer.FlushAsync().AsTask().WaitAsync(Timeout);
                Assert.False(result.IsCanceled || result.IsCompleted);
                Assert.Equal(0, writer.UnflushedBytes);
                Assert.False(writer.HoldsBuffer);
                Assert.Equal("HTTP/1.1 200 OK\r\n\r\n"u8.ToArray(), Receive(peer, 19));
            }

            // A flush with nothing written writes nothing.
            Assert.False((await writer.FlushAsync()).IsCanceled);
            await writer.CompleteAsync();
        }
    }

    [Fact]
    public async Task Many_segments_written_before_a_flush_leave_in_order()
    {
        (ConnectionWriter writer, Stream stream, Socket peer) = await PairAsync(segmentSize: 4096);
        using (peer)
        await using (stream)
        {
            byte[] data = RandomNumberGenerator.GetBytes(50_000);
            // Uneven pieces, some asking for more than a segment holds.
            int at = 0;
            var random = new Random(3);
            while (at < data.Length)
            {
                int want = Math.Min(random.Next(1, 9000), data.Length - at);
                Span<byte> span = writer.GetSpan(want);
                Assert.True(span.Length >= want);
                data.AsSpan(at, want).CopyTo(span);
                writer.Advance(want);
                at += want;
            }

            Assert.Equal(data.Length, writer.UnflushedBytes);
            Task<byte[]> receive = Task.Run(() => Receive(peer, data.Length));
            await writer.FlushAsync().AsTask().WaitAsync(Timeout);
            Assert.Equal(data, await receive.WaitAsync(Timeout));
            Assert.False(writer.HoldsBuffer);
            await writer.CompleteAsync();
        }
    }

    [Fact]
    public async Task A_flush_into_a_full_socket_completes_when_the_peer_reads()
    {
        (ConnectionWriter writer, Stream stream, Socket peer) = await PairAsync();
        using (peer)
        await using (stream)
        {
            // More than the loopback socket buffers hold, so the stream's write must wait for the peer.
            byte[] data = RandomNumberGenerator.GetBytes(16 * 1024 * 1024);
            writer.Write(data);
            ValueTask<FlushResult> flush = writer.FlushAsync();
            Assert.False(flush.IsCompleted);
            Assert.Throws<InvalidOperationException>(() => writer.FlushAsync());
            byte[] received = Receive(peer, data.Length);
            FlushResult result = await flush.AsTask().WaitAsync(Timeout);
            Assert.False(result.IsCanceled);
            Assert.Equal(data, received);
            Assert.False(writer.HoldsBuffer);
            await writer.CompleteAsync();
        }
    }

    [Fact]
    public async Task Completing_sends_what_is_unflushed_unless_completed_with_an_error()
    {
        (ConnectionWriter writer, Stream stream, Socket peer) = await PairAsync();
        using (peer)
        await using (stream)
        {
            writer.Write("last words"u8);
            await writer.CompleteAsync().AsTask().WaitAsync(Timeout);
            Assert.Equal("last words"u8.ToArray(), Receive(peer, 10));
            Assert.False(writer.HoldsBuffer);
            Assert.Throws<InvalidOperationException>(() => writer.GetSpan());
            Assert.Throws<InvalidOperationException>(() => writer.FlushAsync());
        }

        (writer, stream, peer) = await PairAsync();
        using (peer)
        await using (stream)
        {
            writer.Write("never sent"u8);
            await writer.CompleteAsync(new IOException("aborted"));
            Assert.False(writer.HoldsBuffer);
            peer.ReceiveTimeout = 200;
            await stream.DisposeAsync();
            Assert.Equal(0, peer.Receive(new byte[16])); // the end, and nothing before it
        }
    }

    [Fact]
    public async Task A_cancelled_flush_still_sends_its_data_and_says_it_was_cancelled()
    {
        (ConnectionWriter writer, Stream stream, Socket peer) = await PairAsync();
        using (peer)
        await using (stream)
        {
            writer.CancelPendingFlush();
            writer.Write("abc"u8);
            FlushResult result = await writer.FlushAsync().AsTask().WaitAsync(Timeout);
            Assert.True(result.IsCanceled);
            Assert.Equal("abc"u8.ToArray(), Receive(peer, 3));
            writer.Write("def"u8);
            Assert.False((await writer.FlushAsync().AsTask().WaitAsync(Timeout)).IsCanceled);
            Assert.Equal("def"u8.ToArray(), Receive(peer, 3));

            using var cts = new CancellationTokenSource();
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => writer.FlushAsync(cts.Token).AsTask());
            await writer.CompleteAsync();
        }
    }

    [Fact]
    public async Task Advancing_past_the_span_or_writing_to_a_reset_peer_fails_clearly()
    {
        (ConnectionWriter writer, Stream stream, Socket peer) = await PairAsync(segmentSize: 4096);
        await using (stream)
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => writer.Advance(1)); // no span asked for
            Span<byte> span = writer.GetSpan(10);
            int length = span.Length;
            Assert.Throws<ArgumentOutOfRangeException>(() => writer.Advance(length + 1));
            Assert.Throws<ArgumentOutOfRangeException>(() => writer.Advance(-1));

            peer.LingerState = new LingerOption(true, 0);
            peer.Dispose(); // RST
            await Assert.ThrowsAnyAsync<IOException>(async () =>
            {
                // The first write after a reset may still be taken by the kernel; one of these fails.
                for (int i = 0; i < 50; i++)
                {
                    writer.Write(new byte[4096]);
                    await writer.FlushAsync().AsTask().WaitAsync(Timeout);
                }
            });
            Assert.False(writer.HoldsBuffer);
            await writer.CompleteAsync(new IOException("reset"));
        }
    }
}

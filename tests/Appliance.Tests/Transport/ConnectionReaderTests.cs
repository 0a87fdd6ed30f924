using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Appliance.Tests.Support;
using Appliance.Transport;

namespace Appliance.Tests.Transport;

/// <summary>
/// <see cref="ConnectionReader"/> over real loopback sockets on our engine, plain and under SslStream: the PipeReader
/// contract the HTTP/1.1 and HTTP/2 loops rely on (examined data waits for more, cancellation, ends, errors), no
/// buffer held while idle, and no byte lost or reordered when a cancelled read leaves the stream's read in flight.
/// </summary>
public sealed class ConnectionReaderTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private static async Task<(ConnectionReader Reader, Stream Stream, Socket Peer)> PairAsync()
    {
        (_, Stream stream, Socket peer) = await LoopbackPair.ConnectAsync(Timeout);
        return (new ConnectionReader(stream), stream, peer);
    }

    private static async Task<ReadResult> ReadAsync(PipeReader reader, CancellationToken token = default) =>
        await reader.ReadAsync(token).AsTask().WaitAsync(Timeout);

    [Fact]
    public async Task Examined_data_waits_for_more_and_unexamined_data_comes_back_at_once()
    {
        (ConnectionReader reader, Stream stream, Socket peer) = await PairAsync();
        using (peer)
        await using (stream)
        {
            peer.Send("GET / HT"u8);
            ReadResult first = await ReadAsync(reader);
            Assert.Equal("GET / HT"u8.ToArray(), first.Buffer.ToArray());

            // Nothing consumed, part examined: the same bytes again, without waiting.
            reader.AdvanceTo(first.Buffer.Start, first.Buffer.GetPosition(3));
            Assert.True(reader.TryRead(out ReadResult again));
            Assert.Equal(8, again.Buffer.Length);

            // Everything examined: the next read waits for more, and returns old and new together.
            reader.AdvanceTo(again.Buffer.Start, again.Buffer.End);
            Assert.False(reader.TryRead(out _));
            ValueTask<ReadResult> pending = reader.ReadAsync();
            Assert.False(pending.IsCompleted);
            peer.Send("TP/1.1\r\n"u8);
            ReadResult joined = await pending.AsTask().WaitAsync(Timeout);
            Assert.Equal("GET / HTTP/1.1\r\n"u8.ToArray(), joined.Buffer.ToArray());
            reader.AdvanceTo(joined.Buffer.GetPosition(4));
            Assert.True(reader.TryRead(out ReadResult rest));
            Assert.Equal("/ HTTP/1.1\r\n"u8.ToArray(), rest.Buffer.ToArray());
            reader.AdvanceTo(rest.Buffer.End);
            reader.Complete();
        }
    }

    [Fact]
    public async Task An_idle_reader_holds_no_buffer()
    {
        (ConnectionReader reader, Stream stream, Socket peer) = await PairAsync();
        using (peer)
        await using (stream)
        {
            // A new socket may have data, so its first read tries with a buffer; once a read drained the socket,
            // the reader waits with a zero-byte read and gives its buffer back. The first read waits before the bytes
            // are sent, so their readiness event wakes it rather than arriving later and telling the next wait "maybe"
            // (which would make it read, and wait, with a buffer).
            ValueTask<ReadResult> firstRead = reader.ReadAsync();
            peer.Send("first"u8);
            ReadResult first = await firstRead.AsTask().WaitAsync(Timeout);
            reader.AdvanceTo(first.Buffer.End);
            for (int i = 0; i < 3; i++)
            {
                ValueTask<ReadResult> pending = reader.ReadAsync();
                Assert.False(pending.IsCompleted);
                Assert.False(reader.HoldsBuffer);
                peer.Send("ping"u8);
                ReadResult result = await pending.AsTask().WaitAsync(Timeout);
                Assert.True(reader.HoldsBuffer);
                reader.AdvanceTo(result.Buffer.Start, result.Buffer.GetPosition(2));
                Assert.True(reader.HoldsBuffer); // bytes left: the buffer stays
                reader.AdvanceTo(result.Buffer.End);
                // All consumed, no read started: the buffer goes back at once (a pooled upstream connection idles
                // after its response without reading, and must not sit on a buffer meanwhile).
                Assert.False(reader.HoldsBuffer);
            }

            reader.Complete();
            Assert.False(reader.HoldsBuffer);
        }
    }

    [Fact]
    public async Task A_message_larger_than_the_buffer_arrives_whole_and_in_order()
    {
        (ConnectionReader reader, Stream stream, Socket peer) = await PairAsync();
        using (peer)
        await using (stream)
        {
            byte[] message = RandomNumberGenerator.GetBytes(300_000);
            Task send = Task.Run(() => peer.Send(message));
            ReadResult result;
            while (true)
            {
                // Examine everything and consume nothing, as a parser waiting for the end of a header block does.
                result = await ReadAsync(reader);
                if (result.Buffer.Length == message.Length)
                {
                    break;
                }

                reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            }

            Assert.Equal(message, result.Buffer.ToArray());
            reader.AdvanceTo(result.Buffer.End);
            await send.WaitAsync(Timeout);
            reader.Complete();
        }
    }

    [Fact]
    public async Task A_cancelled_read_returns_at_once_and_loses_nothing_that_comes_after()
    {
        (ConnectionReader reader, Stream stream, Socket peer) = await PairAsync();
        using (peer)
        await using (stream)
        {
            // Waiting with nothing buffered (the stream's zero-byte read in flight).
            ValueTask<ReadResult> pending = reader.ReadAsync();
            reader.CancelPendingRead();
            ReadResult cancelled = await pending.AsTask().WaitAsync(Timeout);
            Assert.True(cancelled.IsCanceled);
            Assert.True(cancelled.Buffer.IsEmpty);
            reader.AdvanceTo(cancelled.Buffer.Start);

            peer.Send("one"u8);
            ReadResult one = await ReadAsync(reader);
            Assert.False(one.IsCanceled);
            Assert.Equal("one"u8.ToArray(), one.Buffer.ToArray());

            // Waiting with data buffered and examined (the stream's read into the buffer in flight).
            reader.AdvanceTo(one.Buffer.Start, one.Buffer.End);
            pending = reader.ReadAsync();
            reader.CancelPendingRead();
            cancelled = await pending.AsTask().WaitAsync(Timeout);
            Assert.True(cancelled.IsCanceled);
            Assert.Equal("one"u8.ToArray(), cancelled.Buffer.ToArray());
            reader.AdvanceTo(cancelled.Buffer.Start, cancelled.Buffer.End);

            peer.Send("two"u8);
            ReadResult both = await ReadAsync(reader);
            Assert.Equal("onetwo"u8.ToArray(), both.Buffer.ToArray());
            reader.AdvanceTo(both.Buffer.End);

            // A cancel with nothing waiting is kept for the next read.
            reader.CancelPendingRead();
            Assert.True((await ReadAsync(reader)).IsCanceled);
            peer.Send("three"u8);
            ReadResult three = await ReadAsync(reader);
            Assert.Equal("three"u8.ToArray(), three.Buffer.ToArray());
            reader.AdvanceTo(three.Buffer.End);
            reader.Complete();
        }
    }

    [Fact]
    public async Task A_cancelled_token_throws_and_the_next_read_gets_the_data()
    {
        (ConnectionReader reader, Stream stream, Socket peer) = await PairAsync();
        using (peer)
        await using (stream)
        {
            using var cts = new CancellationTokenSource();
            ValueTask<ReadResult> pending = reader.ReadAsync(cts.Token);
            Assert.False(pending.IsCompleted);
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.AsTask().WaitAsync(Timeout));

            // An already cancelled token does not start anything.
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reader.ReadAsync(cts.Token).AsTask());

            // The stale registration of the first token must not touch a later read.
            using var other = new CancellationTokenSource();
            pending = reader.ReadAsync(other.Token);
            peer.Send("data"u8);
            ReadResult result = await pending.AsTask().WaitAsync(Timeout);
            Assert.False(result.IsCanceled);
            Assert.Equal("data"u8.ToArray(), result.Buffer.ToArray());
            reader.AdvanceTo(result.Buffer.End);
            reader.Complete();
        }
    }

    [Fact]
    public async Task One_token_over_many_reads_cancels_the_one_waiting_and_never_a_read_without_it()
    {
        (ConnectionReader reader, Stream stream, Socket peer) = await PairAsync();
        using (peer)
        await using (stream)
        {
            using var cts = new CancellationTokenSource();
            for (int i = 0; i < 3; i++)
            {
                // Reads that wait with the same token, as an upstream connection's response heads do.
                ValueTask<ReadResult> waiting = reader.ReadAsync(cts.Token);
                Assert.False(waiting.IsCompleted);
                peer.Send([(byte)('a' + i)]);
                ReadResult got = await waiting.AsTask().WaitAsync(Timeout);
                Assert.Equal([(byte)('a' + i)], got.Buffer.ToArray());
                reader.AdvanceTo(got.Buffer.End);
            }

            // A read without the token (a body) is not touched when the token is cancelled meanwhile.
            ValueTask<ReadResult> body = reader.ReadAsync();
            cts.Cancel();
            Assert.False(body.IsCompleted);
            peer.Send("body"u8);
            ReadResult bodyResult = await body.AsTask().WaitAsync(Timeout);
            Assert.False(bodyResult.IsCanceled);
            Assert.Equal("body"u8.ToArray(), bodyResult.Buffer.ToArray());
            reader.AdvanceTo(bodyResult.Buffer.End);

            // A fresh token, registered on a read that had waited with the first, still cancels its waiting read.
            using var second = new CancellationTokenSource();
            ValueTask<ReadResult> first = reader.ReadAsync(second.Token);
            peer.Send("x"u8);
            ReadResult x = await first.AsTask().WaitAsync(Timeout);
            reader.AdvanceTo(x.Buffer.End);
            ValueTask<ReadResult> again = reader.ReadAsync(second.Token);
            Assert.False(again.IsCompleted);
            second.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => again.AsTask().WaitAsync(Timeout));

            // What comes after is read whole by the next read.
            peer.Send("after"u8);
            ReadResult after = await ReadAsync(reader);
            Assert.Equal("after"u8.ToArray(), after.Buffer.ToArray());
            reader.AdvanceTo(after.Buffer.End);
            reader.Complete();
        }
    }

    [Fact]
    public async Task The_end_of_the_stream_comes_with_the_last_bytes_and_stays()
    {
        (ConnectionReader reader, Stream stream, Socket peer) = await PairAsync();
        await using (stream)
        {
            peer.Send("last"u8);
            peer.Shutdown(SocketShutdown.Send);
            ReadResult result = await ReadAsync(reader);
            while (!result.IsCompleted)
            {
                reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                result = await ReadAsync(reader);
            }

            Assert.Equal("last"u8.ToArray(), result.Buffer.ToArray());
            reader.AdvanceTo(result.Buffer.End);
            ReadResult after = await ReadAsync(reader);
            Assert.True(after.IsCompleted);
            Assert.True(after.Buffer.IsEmpty);
            reader.Complete();
            peer.Dispose();
        }
    }

    [Fact]
    public async Task A_reset_peer_faults_the_waiting_read()
    {
        (ConnectionReader reader, Stream stream, Socket peer) = await PairAsync();
        await using (stream)
        {
            ValueTask<ReadResult> pending = reader.ReadAsync();
            peer.LingerState = new LingerOption(true, 0);
            peer.Dispose(); // RST
            var error = await Assert.ThrowsAsync<IOException>(() => pending.AsTask().WaitAsync(Timeout));
            Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(error.InnerException).SocketErrorCode);
            reader.Complete();
        }
    }

    [Fact]
    public async Task Positions_from_elsewhere_and_examined_before_consumed_are_refused()
    {
        (ConnectionReader reader, Stream stream, Socket peer) = await PairAsync();
        using (peer)
        await using (stream)
        {
            peer.Send("abcdef"u8);
            ReadResult result = await ReadAsync(reader);
            var foreign = new ReadOnlySequence<byte>(new byte[10]);
            Assert.Throws<InvalidOperationException>(() => reader.AdvanceTo(foreign.GetPosition(2)));
            Assert.Throws<InvalidOperationException>(() => reader.AdvanceTo(result.Buffer.GetPosition(4), result.Buffer.GetPosition(2)));
            reader.AdvanceTo(result.Buffer.End);
            reader.Complete();
            Assert.Throws<InvalidOperationException>(() => reader.ReadAsync());
            Assert.Throws<InvalidOperationException>(() => reader.TryRead(out _));
        }
    }

    [Fact]
    public async Task Completing_with_a_cancelled_read_in_flight_is_clean()
    {
        (ConnectionReader reader, Stream stream, Socket peer) = await PairAsync();
        using (peer)
        {
            peer.Send("half a head"u8);
            ReadResult result = await ReadAsync(reader);
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            ValueTask<ReadResult> pending = reader.ReadAsync(); // a read into the buffer is in flight
            reader.CancelPendingRead();
            Assert.True((await pending.AsTask().WaitAsync(Timeout)).IsCanceled);
            reader.Complete(); // the buffer stays with the read in flight, not back in the pool
            Assert.True(reader.HoldsBuffer);
            await stream.DisposeAsync(); // the read in flight ends with an error nobody waits for
        }
    }

    [Fact]
    public async Task TryReadMore_takes_what_is_at_hand_and_leaves_a_read_that_would_wait_in_flight()
    {
        (ConnectionReader reader, Stream stream, Socket peer) = await PairAsync();
        using (peer)
        await using (stream)
        {
            peer.Send("abc"u8);
            ReadResult first = await ReadAsync(reader);
            Assert.Equal("abc"u8.ToArray(), first.Buffer.ToArray());
            reader.AdvanceTo(first.Buffer.Start, first.Buffer.End);

            // The socket is drained: nothing at hand. The read it started stays in flight (a second call starts none).
            Assert.False(reader.TryReadMore(out _));
            Assert.False(reader.TryReadMore(out _));
            peer.Send("def"u8);
            ReadResult joined = await ReadAsync(reader); // waits on the read in flight
            Assert.Equal("abcdef"u8.ToArray(), joined.Buffer.ToArray());
            reader.AdvanceTo(joined.Buffer.End);

            // Bytes that came while nobody read are taken without an await once the read in flight has them.
            Assert.False(reader.TryReadMore(out _));
            peer.Send("ghi"u8);
            var deadline = DateTime.UtcNow + Timeout;
            ReadResult more;
            while (!reader.TryReadMore(out more))
            {
                Assert.True(DateTime.UtcNow < deadline, "the bytes never arrived");
                await Task.Yield();
            }

            Assert.Equal("ghi"u8.ToArray(), more.Buffer.ToArray());
            reader.AdvanceTo(more.Buffer.End);

            // Unexamined bytes come back first, without a read.
            peer.Send("jkl"u8);
            ReadResult jkl = await ReadAsync(reader);
            reader.AdvanceTo(jkl.Buffer.GetPosition(1));
            Assert.True(reader.TryReadMore(out ReadResult kl));
            Assert.Equal("kl"u8.ToArray(), kl.Buffer.ToArray());
            reader.AdvanceTo(kl.Buffer.Start, kl.Buffer.End);

            // A read left in flight by TryReadMore does not get in the way of completing.
            Assert.False(reader.TryReadMore(out _));
            reader.Complete();
        }
    }

    [Fact]
    public async Task Under_TLS_many_messages_of_random_sizes_arrive_intact_with_cancels_between()
    {
        (_, Stream stream, Socket peerSocket) = await LoopbackPair.ConnectAsync(Timeout);
        using X509Certificate2 certificate = X509Certificate2.CreateFromPemFile(TestCertificates.Cert("localhost"), TestCertificates.Key("localhost"));
        using var peer = new SslStream(new NetworkStream(peerSocket, ownsSocket: true));
        var ours = new SslStream(stream);
        Task server = peer.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate });
        await ours.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        }).WaitAsync(Timeout);
        await server.WaitAsync(Timeout);
        await using (ours)
        {
            var reader = new ConnectionReader(ours);
            var random = new Random(7);
            var sent = new MemoryStream();
            Task writer = Task.Run(async () =>
            {
                for (int i = 0; i < 200; i++)
                {
                    byte[] chunk = new byte[random.Next(1, 40_000)];
                    random.NextBytes(chunk);
                    sent.Write(chunk);
                    await peer.WriteAsync(chunk);
                }

                peer.Close();
            });

            var received = new MemoryStream();
            int reads = 0;
            while (true)
            {
                ValueTask<ReadResult> pending = reader.ReadAsync();
                if (++reads % 7 == 0)
                {
                    reader.CancelPendingRead();
                }

                ReadResult result;
                try
                {
                    result = await pending.AsTask().WaitAsync(Timeout);
                }
                catch (IOException)
                {
                    break; // the peer closed without close_notify after the last byte
                }

                foreach (ReadOnlyMemory<byte> segment in result.Buffer)
                {
                    received.Write(segment.Span);
                }

                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }

            await writer.WaitAsync(Timeout);
            Assert.Equal(sent.ToArray(), received.ToArray());
            reader.Complete();
        }
    }
}

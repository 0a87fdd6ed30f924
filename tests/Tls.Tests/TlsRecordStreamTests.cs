using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Reflection;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

using Appliance.Tls.Tests.Support;

namespace Appliance.Tls.Tests;

/// <summary>
/// <see cref="RecordBoundedStream"/> on scripted input, and <see cref="TlsRecordStream"/> taking over a real server
/// SslStream after its handshake, with a .NET SslStream client on the other end of a loopback TCP connection.
/// </summary>
public sealed class TlsRecordStreamTests
{
    private static readonly X509Certificate2 Certificate = SelfSignedCertificate.Create(["localhost"], TimeSpan.FromDays(1));

    /// <summary>
    /// The server context of the "evp" cases: its own certificate, so that its context (pinned, as the certificate
    /// store pins every certificate's, which installs the traffic-secret callbacks) is not the one the other cases share.
    /// </summary>
    private static readonly SslStreamCertificateContext ProtectedContext =
        SslStreamCertificateContext.Create(SelfSignedCertificate.Create(["localhost"], TimeSpan.FromDays(1)), null);

    private static readonly Dictionary<SslProtocols, ContextPin?> Pins = [];

    // ---------------- RecordBoundedStream ----------------

    private static byte[] Record(byte type, int length, byte fill) =>
        [type, 3, 3, (byte)(length >> 8), (byte)length, .. Enumerable.Repeat(fill, length)];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(7)]
    [InlineData(64)]
    [InlineData(4096)]
    public async Task Reads_stop_at_each_record_end_however_the_bytes_arrive(int chunk)
    {
        byte[] a = Record(22, 40, 1), b = Record(20, 1, 2), c = Record(23, 0, 0), d = Record(23, 300, 3);
        byte[] all = [.. a, .. b, .. c, .. d];
        await using var bounded = new RecordBoundedStream(new TrickleStream(all, chunk));
        var delivered = new List<byte[]>();
        var current = new List<byte>();
        byte[] buffer = new byte[1024];
        int n;
        while ((n = await bounded.ReadAsync(buffer)) > 0)
        {
            current.AddRange(buffer.AsSpan(0, n).ToArray());
            if (bounded.AtRecordBoundary)
            {
                delivered.Add([.. current]);
                current.Clear();
            }
        }

        Assert.Empty(current);
        Assert.Equal([a, b, c, d], delivered);
    }

    [Fact]
    public async Task What_came_after_the_records_read_is_the_remainder()
    {
        byte[] handshake = Record(22, 100, 7), after = [.. Record(23, 50, 8), .. Record(23, 10, 9)];
        await using var bounded = new RecordBoundedStream(new TrickleStream([.. handshake, .. after], int.MaxValue));
        byte[] buffer = new byte[4096];
        Assert.Equal(handshake.Length, await bounded.ReadAsync(buffer));
        Assert.True(bounded.AtRecordBoundary);
        Assert.Equal(0, await bounded.ReadAsync(Memory<byte>.Empty)); // held bytes: a zero-byte read does not wait

        bounded.TakeRemainder(out byte[]? held, out int start, out int length);
        Assert.NotNull(held);
        Assert.Equal(after, held.AsSpan(start, length).ToArray());
        bounded.TakeRemainder(out byte[]? again, out _, out int none);
        Assert.Null(again);
        Assert.Equal(0, none);
    }

    [Fact]
    public async Task A_half_read_header_is_not_a_boundary()
    {
        await using var bounded = new RecordBoundedStream(new TrickleStream([22, 3, 3], int.MaxValue));
        Assert.Equal(3, await bounded.ReadAsync(new byte[16]));
        Assert.False(bounded.AtRecordBoundary);
        Assert.Equal(0, await bounded.ReadAsync(new byte[16])); // end of input
    }

    [Fact]
    public async Task An_sslv2_format_hello_is_passed_whole_and_never_a_boundary()
    {
        byte[] hello = [0x80, 0x2e, 0x01, 0x03, 0x03, .. Enumerable.Repeat((byte)1, 43), .. Record(23, 10, 5)];
        await using var bounded = new RecordBoundedStream(new TrickleStream(hello, int.MaxValue));
        byte[] buffer = new byte[4096];
        Assert.Equal(hello.Length, await bounded.ReadAsync(buffer));
        Assert.False(bounded.AtRecordBoundary); // so the connection stays on SslStream
    }

    [Fact]
    public async Task Held_writes_leave_before_the_next_read_that_needs_the_socket_in_one_write()
    {
        // A flight SslStream writes in pieces leaves as one write, when SslStream starts waiting for the answer.
        byte[] answer = Record(22, 30, 4);
        var inner = new ScriptedStream([.. answer, .. Record(23, 5, 6)]);
        await using var bounded = new RecordBoundedStream(inner, holdWrites: true);
        await bounded.WriteAsync(new byte[] { 1, 2, 3 });
        bounded.Write([4, 5]);
        Assert.Empty(inner.Events); // kept

        Assert.Equal(answer.Length, await bounded.ReadAsync(new byte[4096]));
        Assert.Equal(["write 5", "read " + (answer.Length + 10)], inner.Events);
        Assert.Equal([1, 2, 3, 4, 5], inner.Written);

        // Written after the last read, with the next record already held: kept for whoever takes over.
        await bounded.WriteAsync(new byte[] { 9, 9 });
        Assert.Equal(10, await bounded.ReadAsync(new byte[4096])); // from what was held: the socket is not read, nothing sent
        Assert.Equal(2, inner.Events.Count);
        bounded.TakeOutput(out byte[]? kept, out int length);
        Assert.NotNull(kept);
        Assert.Equal([9, 9], kept.AsSpan(0, length).ToArray());
        bounded.TakeOutput(out byte[]? none, out int zero);
        Assert.Null(none);
        Assert.Equal(0, zero);
    }

    [Fact]
    public async Task Once_holding_stops_writes_pass_straight_through_after_what_was_kept()
    {
        // The handshake is over and no record layer took over: SslStream goes on over this stream.
        var inner = new ScriptedStream([]);
        await using var bounded = new RecordBoundedStream(inner, holdWrites: true);
        await bounded.WriteAsync(new byte[] { 7 });
        bounded.StopHolding();
        await bounded.FlushOutputAsync();
        await bounded.WriteAsync(new byte[] { 8, 8 });
        Assert.Equal(["write 1", "write 2"], inner.Events);
        Assert.Equal([7, 8, 8], inner.Written);
        await bounded.FlushOutputAsync(); // nothing kept: nothing sent
        Assert.Equal(2, inner.Events.Count);
    }

    [Fact]
    public async Task Without_holding_every_write_goes_at_once()
    {
        var inner = new ScriptedStream([]);
        await using var bounded = new RecordBoundedStream(inner);
        await bounded.WriteAsync(new byte[] { 1 });
        Assert.Equal(["write 1"], inner.Events);
    }

    // ---------------- TlsRecordStream over a real handshake ----------------

    private sealed class Pair : IAsyncDisposable
    {
        public required TlsRecordStream Server { get; init; }
        public required SslStream ServerSsl { get; init; }
        public required SslStream Client { get; init; }
        public required Socket ClientSocket { get; init; }

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            await Server.DisposeAsync();
        }
    }

    private static string Describe(Exception e) => e.InnerException is { } inner ? e.Message + " <- " + Describe(inner) : e.Message;

    /// <summary>A loopback TCP connection: the accepted end and the connecting one.</summary>
    internal static async Task<(Socket Server, Socket Client)> SocketPairAsync()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Task connect = client.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        Socket server = await listener.AcceptSocketAsync();
        await connect;
        return (server, client);
    }

    /// <summary>
    /// A handshake over loopback TCP, then the server's records taken over: by OpenSSL's record layer, or with
    /// <paramref name="protect"/> by the appliance's own (TLS 1.3; a TLS 1.2 connection stays on OpenSSL's).
    /// </summary>
    private static async Task<Pair> ConnectAsync(SslProtocols protocol = SslProtocols.Tls13, bool protect = false, bool hold = false)
    {
        (Socket serverSocket, Socket clientSocket) = await SocketPairAsync();

        var bounded = new RecordBoundedStream(new NetworkStream(serverSocket, ownsSocket: true), holdWrites: hold);
        var server = new SslStream(bounded);
        var client = new SslStream(new NetworkStream(clientSocket, ownsSocket: true));
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = protect ? ProtectedContext : SslStreamCertificateContext.Create(Certificate, null),
            EnabledSslProtocols = protocol,
        };
        if (protect)
        {
            Assert.Null(TlsRecordStream.PrepareProtection()); // learns where OpenSSL keeps the secrets, once
            lock (Pins)
            {
                if (!Pins.ContainsKey(protocol))
                {
                    Pins[protocol] = SessionResumption.Pin(options); // kept for the test process's life
                }
            }
        }

        Task serverHandshake = server.AuthenticateAsServerAsync(options);
        Task clientHandshake = client.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = protocol,
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        });
        await serverHandshake.WaitAsync(TimeSpan.FromSeconds(30));
        TlsRecordStream? records = TlsRecordStream.TryCreate(server, bounded);
        Assert.True(records is not null, TlsRecordStream.Unavailable ?? "not at a record boundary");
        if (hold && protocol == SslProtocols.Tls12)
        {
            Assert.True(records.HoldsPreface); // the server's last flight, which the client waits for
            Assert.False(clientHandshake.IsCompleted);
            records.FlushPreface();
        }

        await clientHandshake.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(protect && protocol == SslProtocols.Tls13, records.IsProtected);
        return new Pair { Server = records, ServerSsl = server, Client = client, ClientSocket = clientSocket };
    }

    private static async Task<byte[]> ReadExactlyAsync(Stream stream, int length, int bufferSize)
    {
        byte[] all = new byte[length];
        int got = 0;
        byte[] buffer = new byte[bufferSize];
        while (got < length)
        {
            int n = await stream.ReadAsync(buffer.AsMemory(0, Math.Min(bufferSize, length - got)));
            Assert.True(n > 0, $"end of stream after {got} of {length} bytes");
            buffer.AsSpan(0, n).CopyTo(all.AsSpan(got));
            got += n;
        }

        return all;
    }

    private static Task<int> ReadSomeAsync(Stream stream) => stream.ReadAsync(new byte[64]).AsTask();

    private static byte[] Pattern(int length, int seed) => [.. Enumerable.Range(0, length).Select(i => (byte)((i * 31) + seed))];

    [Theory]
    [InlineData(SslProtocols.Tls13, false)]
    [InlineData(SslProtocols.Tls12, false)]
    [InlineData(SslProtocols.Tls13, true)]
    [InlineData(SslProtocols.Tls12, true)]
    public async Task A_megabyte_each_way_at_once_arrives_whole(SslProtocols protocol, bool protect)
    {
        await using Pair pair = await ConnectAsync(protocol, protect);
        byte[] up = Pattern(1 << 20, 1), down = Pattern(1 << 20, 2);
        Task send = Task.Run(async () =>
        {
            for (int i = 0; i < up.Length; i += 40_000)
            {
                await pair.Client.WriteAsync(up.AsMemory(i, Math.Min(40_000, up.Length - i)));
            }
        });
        Task receive = Task.Run(async () =>
        {
            for (int i = 0; i < down.Length; i += 32 * 1024)
            {
                await pair.Server.WriteAsync(down.AsMemory(i, Math.Min(32 * 1024, down.Length - i)));
            }
        });
        Task<byte[]> atServer = ReadExactlyAsync(pair.Server, up.Length, 4096);
        Task<byte[]> atClient = ReadExactlyAsync(pair.Client, down.Length, 16 * 1024);
        await Task.WhenAll(send, receive, atServer, atClient).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(up, await atServer);
        Assert.Equal(down, await atClient);
    }

    [Fact]
    public async Task The_secrets_read_from_the_ssl_object_key_both_ways_connection_after_connection()
    {
        // Learned once from handshakes of its own (TrafficSecrets.Learn), then read from each connection's SSL object.
        Assert.Null(TlsRecordStream.PrepareProtection());
        Assert.StartsWith("read from the SSL object", TlsRecordStream.DescribeProtection());
        for (int i = 0; i < 4; i++)
        {
            await using Pair pair = await ConnectAsync(protect: true);
            await pair.Client.WriteAsync(Pattern(1000, i));
            Assert.Equal(Pattern(1000, i), await ReadExactlyAsync(pair.Server, 1000, 4096));
            await pair.Server.WriteAsync(Pattern(2000, i));
            Assert.Equal(Pattern(2000, i), await ReadExactlyAsync(pair.Client, 2000, 4096));
        }

    }

    [Fact]
    public async Task After_the_takeover_SslStream_holds_no_read_buffer()
    {
        // Its handshake buffer would otherwise stay with every idle connection (S6). Read through reflection here.
        await using Pair pair = await ConnectAsync();
        object sslBuffer = typeof(SslStream).GetField("_buffer", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(pair.ServerSsl)!;
        object arrayBuffer = sslBuffer.GetType().GetField("_buffer", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(sslBuffer)!;
        Assert.Empty((byte[])arrayBuffer.GetType().GetField("_bytes", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(arrayBuffer)!);
    }

    [Theory]
    [InlineData(SslProtocols.Tls13)]
    [InlineData(SslProtocols.Tls12)]
    public async Task Neither_the_handshake_nor_a_record_each_way_leaves_a_buffer_held(SslProtocols protocol)
    {
        // The ClientHello and the server's flight grew .NET's memory BIOs to over a kilobyte each, and a memory BIO
        // keeps its largest buffer: an idle connection would hold that for its life (S6).
        await using Pair pair = await ConnectAsync(protocol);
        Assert.Equal((0, 0), pair.Server.BioCapacity());

        await pair.Client.WriteAsync("ping"u8.ToArray());
        Assert.Equal("ping", System.Text.Encoding.ASCII.GetString(await ReadExactlyAsync(pair.Server, 4, 64)));
        await pair.Server.WriteAsync("pong"u8.ToArray());
        Assert.Equal("pong", System.Text.Encoding.ASCII.GetString(await ReadExactlyAsync(pair.Client, 4, 64)));
        Assert.True(pair.Server.UsesSink, "this libcrypto has the BIO_meth functions: records go through the sink");
        Assert.Equal((0, 0), pair.Server.BioCapacity()); // the sink keeps nothing once a record is read and one sent
    }

    [Theory]
    [InlineData(SslProtocols.Tls13, false)]
    [InlineData(SslProtocols.Tls12, false)]
    [InlineData(SslProtocols.Tls13, true)] // here the SSL object goes with it: the records no longer need it
    public async Task Released_from_its_SslStream_the_record_layer_still_runs_both_ways_and_closes_the_socket(SslProtocols protocol, bool protect)
    {
        // An idle connection need not keep the handshake's SslStream (S6): disposing it must neither free the SSL
        // object under OpenSSL's record layer nor close the socket.
        await using Pair pair = await ConnectAsync(protocol, protect);
        pair.Server.ReleaseHandshake();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pair.ServerSsl.ReadAsync(new byte[1]).AsTask());

        await pair.Client.WriteAsync("ping"u8.ToArray());
        Assert.Equal("ping", System.Text.Encoding.ASCII.GetString(await ReadExactlyAsync(pair.Server, 4, 64)));
        await pair.Server.WriteAsync("pong"u8.ToArray());
        Assert.Equal("pong", System.Text.Encoding.ASCII.GetString(await ReadExactlyAsync(pair.Client, 4, 64)));

        await pair.Server.DisposeAsync();
        Assert.Equal(0, await ReadSomeAsync(pair.Client).WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_record_read_with_a_small_buffer_comes_out_in_pieces_and_a_zero_byte_read_does_not_wait(bool protect)
    {
        await using Pair pair = await ConnectAsync(protect: protect);
        byte[] data = Pattern(10_000, 3);
        await pair.Client.WriteAsync(data);
        byte[] first = new byte[100];
        Assert.Equal(100, await pair.Server.ReadAsync(first));

        // The rest of the record is decrypted inside OpenSSL: "is there something" must say yes at once.
        ValueTask<int> probe = pair.Server.ReadAsync(Memory<byte>.Empty);
        Assert.True(probe.IsCompleted);
        Assert.Equal(0, await probe);

        byte[] rest = await ReadExactlyAsync(pair.Server, data.Length - 100, 100);
        Assert.Equal(data, first.Concat(rest).ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_zero_byte_read_waits_for_the_next_record(bool protect)
    {
        await using Pair pair = await ConnectAsync(protect: protect);
        ValueTask<int> probe = pair.Server.ReadAsync(Memory<byte>.Empty);
        Assert.False(probe.IsCompleted);
        await pair.Client.WriteAsync("ping"u8.ToArray());
        Assert.Equal(0, await probe.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("ping"u8.ToArray(), await ReadExactlyAsync(pair.Server, 4, 64));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Close_notify_ends_the_stream_and_the_server_can_still_answer(bool protect)
    {
        await using Pair pair = await ConnectAsync(protect: protect);
        await pair.Client.WriteAsync("last"u8.ToArray());
        await pair.Client.ShutdownAsync(); // close_notify, then the client still reads (TLS 1.3 half-close)
        Assert.Equal("last"u8.ToArray(), await ReadExactlyAsync(pair.Server, 4, 64));
        Assert.Equal(0, await pair.Server.ReadAsync(new byte[64]));
        await pair.Server.WriteAsync("answer"u8.ToArray());
        Assert.Equal("answer"u8.ToArray(), await ReadExactlyAsync(pair.Client, 6, 64));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_connection_cut_inside_a_record_is_an_error_and_between_records_an_end(bool protect)
    {
        await using (Pair pair = await ConnectAsync(protect: protect))
        {
            // Half a record's bytes straight on the socket, then FIN.
            byte[] half = [23, 3, 3, 0, 40, 1, 2, 3];
            await pair.ClientSocket.SendAsync(half);
            pair.ClientSocket.Shutdown(SocketShutdown.Send);
            await Assert.ThrowsAsync<IOException>(() => ReadSomeAsync(pair.Server));
        }

        await using (Pair pair = await ConnectAsync(protect: protect))
        {
            // A header alone: OpenSSL holds nothing of the record yet, but the record was cut all the same.
            await pair.ClientSocket.SendAsync(new byte[] { 23, 3, 3, 0, 40 });
            pair.ClientSocket.Shutdown(SocketShutdown.Send);
            await Assert.ThrowsAsync<IOException>(() => ReadSomeAsync(pair.Server));
        }

        await using (Pair pair = await ConnectAsync(protect: protect))
        {
            pair.ClientSocket.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, await pair.Server.ReadAsync(new byte[64]));
        }
    }

    [Theory]
    [InlineData(false, SslProtocols.Tls13)]
    [InlineData(true, SslProtocols.Tls13)]
    [InlineData(false, SslProtocols.Tls12)]
    public async Task A_forged_record_is_an_error_with_its_alert_and_a_stream_disposed_under_a_read_fails_it(bool protect, SslProtocols protocol)
    {
        await using (Pair pair = await ConnectAsync(protocol, protect))
        {
            byte[] forged = [23, 3, 3, 0, 32, .. Pattern(32, 9)]; // application data no key made
            await pair.ClientSocket.SendAsync(forged);
            IOException e = await Assert.ThrowsAnyAsync<IOException>(() => ReadSomeAsync(pair.Server));
            Assert.Contains("TLS read failed", e.Message);

            // The client reads the server's fatal bad_record_mac alert (RFC 8446 §5.2), not a bare end of stream (or,
            // with no alert sent, nothing until the timeout).
            Exception alert = await Assert.ThrowsAnyAsync<Exception>(() => pair.Client.ReadAsync(new byte[64]).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Contains("bad record mac", Describe(alert));
        }

        Pair waiting = await ConnectAsync(protect: protect);
        ValueTask<int> read = waiting.Server.ReadAsync(new byte[64]);
        Assert.False(read.IsCompleted);
        await waiting.Server.DisposeAsync();
        await Assert.ThrowsAnyAsync<Exception>(async () => await read.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await waiting.Server.WriteAsync(new byte[1]));
        await waiting.Client.DisposeAsync();
    }

    [Fact]
    public async Task A_client_side_stream_is_taken_over_too_and_its_close_notify_ends_the_servers_reading()
    {
        // Both ends taken over, the client's as the upstream pool's connections are.
        (Socket accepted, Socket socket) = await SocketPairAsync();
        var serverBounded = new RecordBoundedStream(new NetworkStream(accepted, ownsSocket: true));
        var clientBounded = new RecordBoundedStream(new NetworkStream(socket, ownsSocket: true));
        var server = new SslStream(serverBounded);
        var client = new SslStream(clientBounded);
        Task serverHandshake = server.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(Certificate, null),
        });
        await client.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        });
        await serverHandshake;
        await using TlsRecordStream serverRecords = TlsRecordStream.TryCreate(server, serverBounded)!;
        await using TlsRecordStream clientRecords = TlsRecordStream.TryCreate(client, clientBounded)!;

        byte[] request = Pattern(70_000, 4);
        Task<byte[]> received = ReadExactlyAsync(serverRecords, request.Length, 8192);
        await clientRecords.WriteAsync(request).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        await clientRecords.ShutdownAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)); // close_notify: the end of the request, not a cut
        await clientRecords.ShutdownAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)); // sent once: a second call is nothing more
        Assert.Equal(request, await received.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, await serverRecords.ReadAsync(new byte[64]).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));

        byte[] answer = Pattern(50_000, 5); // the server still answers, and the client (after its session tickets) reads it
        await serverRecords.WriteAsync(answer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(answer, await ReadExactlyAsync(clientRecords, answer.Length, 8192).WaitAsync(TimeSpan.FromSeconds(10)));
    }

    /// <summary>TCP segments with data <paramref name="socket"/> received (Linux tcp_info.tcpi_data_segs_in, at byte 152).</summary>
    private static int DataSegmentsIn(Socket socket)
    {
        byte[] info = new byte[256];
        socket.GetRawSocketOption(6 /* IPPROTO_TCP */, 11 /* TCP_INFO */, info);
        return BitConverter.ToInt32(info, 152);
    }

    [Theory]
    [InlineData(SslProtocols.Tls13)]
    [InlineData(SslProtocols.Tls12)]
    public async Task The_handshakes_last_records_leave_with_the_first_write_in_one_segment(SslProtocols protocol)
    {
        // TLS 1.3: the session ticket; TLS 1.2 (flushed alone by ConnectAsync, which the client waits for): nothing left.
        await using Pair pair = await ConnectAsync(protocol, protect: true, hold: true);
        bool ticket = protocol == SslProtocols.Tls13;
        Assert.Equal(ticket, pair.Server.HoldsPreface);
        int before = DataSegmentsIn(pair.ClientSocket);
        await pair.Server.WriteAsync(Pattern(100, 1));
        Assert.False(pair.Server.HoldsPreface);
        Assert.Equal(Pattern(100, 1), await ReadExactlyAsync(pair.Client, 100, 4096));
        Assert.Equal(before + 1, DataSegmentsIn(pair.ClientSocket)); // ticket and data: one segment
        await pair.Client.WriteAsync(Pattern(10, 2));
        Assert.Equal(Pattern(10, 2), await ReadExactlyAsync(pair.Server, 10, 4096));
    }

    [Fact]
    public async Task The_handshakes_last_records_leave_alone_when_asked_and_the_next_write_follows_them()
    {
        await using Pair pair = await ConnectAsync(SslProtocols.Tls13, protect: true, hold: true);
        Assert.True(pair.Server.HoldsPreface);
        int before = DataSegmentsIn(pair.ClientSocket);
        pair.Server.FlushPreface();
        pair.Server.FlushPreface(); // once
        Assert.False(pair.Server.HoldsPreface);
        await pair.Server.WriteAsync(Pattern(50, 3));
        Assert.Equal(Pattern(50, 3), await ReadExactlyAsync(pair.Client, 50, 4096)); // the client opened the ticket first
        Assert.Equal(before + 2, DataSegmentsIn(pair.ClientSocket));
    }

    [Fact]
    public async Task A_close_notify_carries_the_handshakes_last_records_in_front()
    {
        await using Pair pair = await ConnectAsync(SslProtocols.Tls13, protect: true, hold: true);
        Assert.True(pair.Server.HoldsPreface);
        await pair.Server.ShutdownAsync();
        Assert.False(pair.Server.HoldsPreface);
        Assert.Equal(0, await pair.Client.ReadAsync(new byte[16])); // the ticket opened, then close_notify: the end
    }
}

using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Appliance.Tls.Tests;

/// <summary>
/// The server's own TLS 1.3 record layer (server.tlsRecordLayer "evp": <see cref="RecordProtection"/> under
/// <see cref="TlsRecordStream"/>) fed records crafted here over a loopback TCP connection: the test holds the peer's
/// keys (secrets of its own, no handshake), so it can send what no well-behaved client would, byte by byte.
/// RFC 8446 §4.6.3 (KeyUpdate), §5 (records), §6 (alerts). Real clients over real handshakes: TlsRecordLayerTests
/// and ProtectedHandshakeTests.
/// </summary>
public sealed class RecordProtectionTests
{
    private sealed class Link : IAsyncDisposable
    {
        public required TlsRecordStream Server { get; init; }
        public required RecordProtection Peer { get; init; }
        public required Socket Socket { get; init; }
        private byte[] _received = [];

        /// <summary>Sends one record sealed with the peer's keys: <paramref name="content"/>, then its type.</summary>
        public Task SendAsync(byte type, ReadOnlySpan<byte> content) => SendRawAsync(Seal(type, content));

        public byte[] Seal(byte type, ReadOnlySpan<byte> content)
        {
            byte[] record = new byte[content.Length + RecordProtection.Overhead];
            int n = Peer.Seal(type, content, record);
            return record[..n];
        }

        public async Task SendRawAsync(byte[] bytes) => await Socket.SendAsync(bytes);

        /// <summary>The next record the server sent, opened with the peer's keys.</summary>
        public async Task<(byte Type, byte[] Content)> ReceiveAsync()
        {
            while (true)
            {
                if (_received.Length >= 5)
                {
                    int length = 5 + ((_received[3] << 8) | _received[4]);
                    if (_received.Length >= length)
                    {
                        byte[] record = _received[..length];
                        _received = _received[length..];
                        int n = Peer.Open(record, out byte type);
                        return (type, record[5..(5 + n)]);
                    }
                }

                byte[] buffer = new byte[65536];
                int got = await Socket.ReceiveAsync(buffer).WaitAsync(TimeSpan.FromSeconds(10));
                Assert.True(got > 0, "the server closed the connection");
                _received = [.. _received, .. buffer.AsSpan(0, got)];
            }
        }

        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();
            Peer.Dispose();
            Socket.Dispose();
        }
    }

    private static async Task<Link> ConnectAsync(TlsCipherSuite suite = TlsCipherSuite.TLS_AES_128_GCM_SHA256)
    {
        int hashLength = suite == TlsCipherSuite.TLS_AES_256_GCM_SHA384 ? 48 : 32;
        byte[] client = RandomNumberGenerator.GetBytes(hashLength), server = RandomNumberGenerator.GetBytes(hashLength);
        (Socket accepted, Socket socket) = await TlsRecordStreamTests.SocketPairAsync();
        return new Link
        {
            Server = TlsRecordStream.Protected(new NetworkStream(accepted, ownsSocket: true), RecordProtection.ForSecrets(client, server, suite)),
            Peer = RecordProtection.ForSecrets(server, client, suite),
            Socket = socket,
        };
    }

    private static async Task<byte[]> ReadAsync(Stream stream, int length, int bufferSize = 4096)
    {
        byte[] all = new byte[length];
        int got = 0;
        byte[] buffer = new byte[bufferSize];
        while (got < length)
        {
            int n = await stream.ReadAsync(buffer.AsMemory(0, Math.Min(bufferSize, length - got))).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(n > 0, $"end of stream after {got} of {length} bytes");
            buffer.AsSpan(0, n).CopyTo(all.AsSpan(got));
            got += n;
        }

        return all;
    }

    /// <summary>
    /// The read fails with the alert to send, the alert reaches the peer as a fatal one (§6.2), and the connection
    /// reads and writes nothing more.
    /// </summary>
    private static async Task<byte> RefusedAsync(Link link)
    {
        TlsAlertException e = await Assert.ThrowsAsync<TlsAlertException>(() => link.Server.ReadAsync(new byte[32 * 1024]).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        AssertRecord(RecordProtection.Alert, [2, e.Alert], await link.ReceiveAsync());
        IOException again = await Assert.ThrowsAnyAsync<IOException>(() => link.Server.ReadAsync(new byte[100]).AsTask());
        Assert.Contains("failed earlier", again.Message);
        await Assert.ThrowsAnyAsync<IOException>(() => link.Server.WriteAsync(new byte[1]).AsTask());
        return e.Alert;
    }

    private static void AssertRecord(byte type, byte[] content, (byte Type, byte[] Content) record)
    {
        Assert.Equal(type, record.Type);
        Assert.Equal(content, record.Content);
    }

    private static byte[] Pattern(int length, int seed) => [.. Enumerable.Range(0, length).Select(i => (byte)((i * 7) + seed))];

    [Theory]
    [InlineData(TlsCipherSuite.TLS_AES_128_GCM_SHA256)]
    [InlineData(TlsCipherSuite.TLS_AES_256_GCM_SHA384)]
    [InlineData(TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256)]
    public async Task Records_both_ways_open_with_the_other_ends_keys(TlsCipherSuite suite)
    {
        await using Link link = await ConnectAsync(suite);
        await link.SendAsync(RecordProtection.ApplicationData, "ping"u8);
        Assert.Equal("ping"u8.ToArray(), await ReadAsync(link.Server, 4));
        await link.Server.WriteAsync("pong"u8.ToArray());
        AssertRecord(RecordProtection.ApplicationData, "pong"u8.ToArray(), await link.ReceiveAsync());
    }

    [Theory]
    [InlineData(TlsCipherSuite.TLS_AES_128_GCM_SHA256, true)]
    [InlineData(TlsCipherSuite.TLS_AES_256_GCM_SHA384, true)]
    [InlineData(TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256, true)]
    [InlineData(TlsCipherSuite.TLS_AES_128_GCM_SHA256, false)] // the EVP_CipherInit_ex way (OpenSSL 1.1, or a provider that fails the check)
    [InlineData(TlsCipherSuite.TLS_AES_256_GCM_SHA384, false)]
    [InlineData(TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256, false)]
    public void Records_are_those_an_independent_AEAD_makes_with_RFC_8446_keys_and_nonces(TlsCipherSuite suite, bool useParams)
    {
        // Keys by HKDF-Expand-Label (§7.1, §7.3), the nonce the IV XOR the sequence (§5.3), the header as the
        // additional data and the content type after the content (§5.2), computed with .NET's one-shot AEAD: a
        // check that does not share the record layer's calls to OpenSSL (which both ends of a Link do). Then the same
        // after both sides' keys are updated (§7.2), the sequences starting again at 0.
        Assert.True(RecordProtection.ParamsUsable(suite)); // OpenSSL's default provider passes the start-up check
        int hashLength = RecordProtection.SecretLength(suite);
        HashAlgorithmName hash = hashLength == 48 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256;
        byte[] readSecret = Pattern(hashLength, 11), writeSecret = Pattern(hashLength, 12);
        using RecordProtection protection = RecordProtection.ForSecrets(readSecret, writeSecret, suite, useParams);
        Assert.Equal(useParams, protection.UsesParams);
        for (int generation = 0; generation < 2; generation++)
        {
            if (generation == 1)
            {
                protection.UpdateReadKey();
                protection.UpdateWriteKey();
                readSecret = ExpandLabel(hash, readSecret, "traffic upd", hashLength);
                writeSecret = ExpandLabel(hash, writeSecret, "traffic upd", hashLength);
            }

            int keyLength = suite == TlsCipherSuite.TLS_AES_128_GCM_SHA256 ? 16 : 32;
            using IDisposable writer = Aead(suite, ExpandLabel(hash, writeSecret, "key", keyLength), out Action<byte[], byte[], byte[], byte[], byte[]> encrypt);
            using IDisposable reader = Aead(suite, ExpandLabel(hash, readSecret, "key", keyLength), out Action<byte[], byte[], byte[], byte[], byte[]> peerEncrypt);
            byte[] writeIv = ExpandLabel(hash, writeSecret, "iv", 12), readIv = ExpandLabel(hash, readSecret, "iv", 12);

            ulong sequence = 0;
            foreach (int length in new[] { 0, 1, 300, 4096, 4097, 16384 }) // both sides of the length where content is sealed in place
            {
                byte[] content = Pattern(length, length + generation);
                byte[] sealedRecord = new byte[length + RecordProtection.Overhead];
                int n = protection.Seal(RecordProtection.ApplicationData, content, sealedRecord);
                Assert.Equal(Expected(encrypt, writeIv, sequence, RecordProtection.ApplicationData, content), sealedRecord[..n]);

                byte[] incoming = Expected(peerEncrypt, readIv, sequence, RecordProtection.Handshake, content);
                int opened = protection.Open(incoming, out byte type);
                Assert.Equal(RecordProtection.Handshake, type);
                Assert.Equal(content, incoming.AsSpan(RecordProtection.HeaderLength, opened).ToArray());
                sequence++;
            }
        }

        static byte[] Expected(Action<byte[], byte[], byte[], byte[], byte[]> encrypt, byte[] iv, ulong sequence, byte type, byte[] content)
        {
            int length = content.Length + 1 + RecordProtection.TagLength;
            byte[] header = [RecordProtection.ApplicationData, 3, 3, (byte)(length >> 8), (byte)length];
            byte[] nonce = (byte[])iv.Clone();
            for (int i = 0; i < 8; i++)
            {
                nonce[11 - i] ^= (byte)(sequence >> (8 * i));
            }

            byte[] inner = [.. content, type], cipherText = new byte[inner.Length], tag = new byte[RecordProtection.TagLength];
            encrypt(nonce, inner, cipherText, tag, header);
            return [.. header, .. cipherText, .. tag];
        }
    }

    private static byte[] ExpandLabel(HashAlgorithmName hash, byte[] secret, string label, int length)
    {
        byte[] full = System.Text.Encoding.ASCII.GetBytes("tls13 " + label);
        byte[] info = [(byte)(length >> 8), (byte)length, (byte)full.Length, .. full, 0];
        byte[] output = new byte[length];
        HKDF.Expand(hash, secret, output, info);
        return output;
    }

    /// <summary>.NET's AEAD for a suite: encrypt(nonce, plaintext, ciphertext, tag, additional data).</summary>
    private static IDisposable Aead(TlsCipherSuite suite, byte[] key, out Action<byte[], byte[], byte[], byte[], byte[]> encrypt)
    {
        if (suite == TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256)
        {
            var chacha = new ChaCha20Poly1305(key);
            encrypt = chacha.Encrypt;
            return chacha;
        }

        var gcm = new AesGcm(key, RecordProtection.TagLength);
        encrypt = gcm.Encrypt;
        return gcm;
    }

    [Theory]
    [InlineData(1, 100)]
    [InlineData(5, 16 * 1024)]
    [InlineData(7, 4096)]
    [InlineData(1000, 1)]
    [InlineData(70_000, 100)]
    [InlineData(70_000, 64 * 1024)]
    public async Task Records_arriving_in_any_pieces_read_into_any_buffer_come_out_whole(int piece, int bufferSize)
    {
        await using Link link = await ConnectAsync();
        byte[][] contents = [Pattern(16384, 1), [], Pattern(1, 2), Pattern(300, 3), Pattern(16384, 4)];
        byte[] wire = [.. contents.SelectMany(c => link.Seal(RecordProtection.ApplicationData, c))];
        Task send = Task.Run(async () =>
        {
            for (int i = 0; i < wire.Length; i += piece)
            {
                await link.SendRawAsync(wire[i..Math.Min(wire.Length, i + piece)]);
            }
        });
        byte[] expected = [.. contents.SelectMany(c => c)];
        Assert.Equal(expected, await ReadAsync(link.Server, expected.Length, bufferSize));

        await send;
    }

    [Fact]
    public async Task A_large_write_leaves_in_records_of_at_most_2_14_bytes()
    {
        await using Link link = await ConnectAsync();
        byte[] data = Pattern(40_000, 5);
        await link.Server.WriteAsync(data);
        var got = new List<byte>();
        while (got.Count < data.Length)
        {
            (byte type, byte[] content) = await link.ReceiveAsync();
            Assert.Equal(RecordProtection.ApplicationData, type);
            Assert.InRange(content.Length, 1, 16384);
            got.AddRange(content);
        }

        Assert.Equal(data, got.ToArray());
    }

    [Fact]
    public async Task Padding_after_the_content_type_is_removed()
    {
        await using Link link = await ConnectAsync();
        // TLSInnerPlaintext: content, type, zeros. Sealed as content "data" + 23 + three zeros, whose last byte (the
        // type Seal appends) is one more zero.
        await link.SendAsync(0, [.. "data"u8, RecordProtection.ApplicationData, 0, 0, 0]);
        Assert.Equal("data"u8.ToArray(), await ReadAsync(link.Server, 4));
    }

    [Fact]
    public async Task A_record_of_only_zeros_has_no_content_type_and_is_refused()
    {
        await using Link link = await ConnectAsync();
        await link.SendAsync(0, [0, 0, 0]);
        Assert.Equal(TlsAlertException.UnexpectedMessage, await RefusedAsync(link));
    }

    [Theory]
    [InlineData(16385, 0)] // content over 2^14
    [InlineData(16384, 2)] // content within it, but the plaintext with its padding over 2^14 + 1 (§5.4)
    public async Task Content_or_plaintext_over_its_limit_is_a_record_overflow(int content, int padding)
    {
        await using Link link = await ConnectAsync();
        await link.SendAsync(0, [.. new byte[content], RecordProtection.ApplicationData, .. new byte[padding]]);
        Assert.Equal(TlsAlertException.RecordOverflow, await RefusedAsync(link));
    }

    [Fact]
    public async Task A_header_announcing_over_2_14_plus_256_bytes_is_refused_before_its_body()
    {
        await using Link link = await ConnectAsync();
        await link.SendRawAsync([23, 3, 3, 0x41, 0x01]); // 16,641 bytes: no body follows, and none is waited for
        Assert.Equal(TlsAlertException.RecordOverflow, await RefusedAsync(link));
    }

    [Theory]
    [InlineData(20)] // change_cipher_spec after the handshake (§5)
    [InlineData(21)] // an alert in the clear
    [InlineData(22)] // a handshake record in the clear
    [InlineData(99)]
    public async Task An_unprotected_record_after_the_handshake_is_an_unexpected_message(byte type)
    {
        await using Link link = await ConnectAsync();
        await link.SendRawAsync([type, 3, 3, 0, 1, 1]);
        Assert.Equal(TlsAlertException.UnexpectedMessage, await RefusedAsync(link));
    }

    [Theory]
    [InlineData(2)]   // the header's version: part of the additional data
    [InlineData(7)]   // the body
    [InlineData(-1)]  // the tag
    public async Task A_record_changed_anywhere_fails_authentication(int at)
    {
        await using Link link = await ConnectAsync();
        byte[] record = link.Seal(RecordProtection.ApplicationData, "hello"u8);
        record[at < 0 ? record.Length + at : at] ^= 1;
        await link.SendRawAsync(record);
        Assert.Equal(TlsAlertException.BadRecordMac, await RefusedAsync(link));
    }

    [Fact]
    public async Task A_record_shorter_than_its_tag_fails_authentication()
    {
        await using Link link = await ConnectAsync();
        await link.SendRawAsync([23, 3, 3, 0, 15, .. new byte[15]]);
        Assert.Equal(TlsAlertException.BadRecordMac, await RefusedAsync(link));
    }

    [Fact]
    public async Task A_replayed_record_fails_authentication()
    {
        await using Link link = await ConnectAsync();
        byte[] record = link.Seal(RecordProtection.ApplicationData, "once"u8);
        await link.SendRawAsync(record);
        Assert.Equal("once"u8.ToArray(), await ReadAsync(link.Server, 4));
        await link.SendRawAsync(record); // the sequence number moved on: its nonce no longer matches
        Assert.Equal(TlsAlertException.BadRecordMac, await RefusedAsync(link));
    }

    [Fact]
    public async Task Close_notify_ends_reading_and_nothing_after_it_is_read()
    {
        await using Link link = await ConnectAsync();
        await link.SendRawAsync([
            .. link.Seal(RecordProtection.ApplicationData, "last"u8),
            .. link.Seal(RecordProtection.Alert, [1, 0]),
            .. link.Seal(RecordProtection.ApplicationData, "ignored"u8),
        ]);
        Assert.Equal("last"u8.ToArray(), await ReadAsync(link.Server, 4));
        Assert.Equal(0, await link.Server.ReadAsync(new byte[100]));
        Assert.Equal(0, await link.Server.ReadAsync(new byte[100]));

        await link.Server.WriteAsync("still answering"u8.ToArray()); // a half close: our side still writes
        Assert.Equal("still answering"u8.ToArray(), (await link.ReceiveAsync()).Content);
        await link.Server.ShutdownAsync();
        AssertRecord(RecordProtection.Alert, [1, 0], await link.ReceiveAsync());
    }

    [Fact]
    public async Task More_than_32_records_in_a_row_without_data_are_refused()
    {
        await using Link link = await ConnectAsync();
        for (int i = 0; i < 32; i++)
        {
            await link.SendAsync(i % 2 == 0 ? RecordProtection.ApplicationData : RecordProtection.Alert, i % 2 == 0 ? [] : [1, 90]);
        }

        await link.SendAsync(RecordProtection.ApplicationData, "x"u8); // data: the count starts again
        Assert.Equal("x"u8.ToArray(), await ReadAsync(link.Server, 1));
        for (int i = 0; i < 33; i++)
        {
            await link.SendAsync(RecordProtection.ApplicationData, []);
        }

        Assert.Equal(TlsAlertException.UnexpectedMessage, await RefusedAsync(link));
    }

    [Fact]
    public async Task Nothing_is_written_after_close_notify()
    {
        await using Link link = await ConnectAsync();
        await link.Server.ShutdownAsync();
        AssertRecord(RecordProtection.Alert, [1, 0], await link.ReceiveAsync());
        await Assert.ThrowsAnyAsync<IOException>(() => link.Server.WriteAsync(new byte[1]).AsTask());
    }

    [Fact]
    public async Task User_canceled_is_a_warning_and_reading_goes_on()
    {
        await using Link link = await ConnectAsync();
        await link.SendAsync(RecordProtection.Alert, [1, 90]);
        await link.SendAsync(RecordProtection.ApplicationData, "more"u8);
        Assert.Equal("more"u8.ToArray(), await ReadAsync(link.Server, 4));
    }

    [Fact]
    public async Task A_fatal_alert_ends_the_connection_with_an_error_naming_it()
    {
        await using Link link = await ConnectAsync();
        await link.SendAsync(RecordProtection.Alert, [2, 40]); // handshake_failure
        IOException e = await Assert.ThrowsAnyAsync<IOException>(() => link.Server.ReadAsync(new byte[100]).AsTask());
        Assert.IsNotType<TlsAlertException>(e); // the peer's alert, not one to answer
        Assert.Contains("alert 40", e.Message);
    }

    [Theory]
    [InlineData(new byte[] { 1 })]
    [InlineData(new byte[] { 1, 0, 0 })]
    [InlineData(new byte[] { 1, 0, 1, 0 })] // two alerts coalesced
    public async Task An_alert_record_not_of_two_bytes_is_a_decode_error(byte[] content)
    {
        await using Link link = await ConnectAsync();
        await link.SendAsync(RecordProtection.Alert, content);
        Assert.Equal(TlsAlertException.DecodeError, await RefusedAsync(link));
    }

    [Theory]
    [InlineData(0)] // update_not_requested
    [InlineData(1)] // update_requested: our KeyUpdate goes ahead of our next record
    public async Task A_key_update_even_split_over_records_moves_the_read_keys_on_and_answers_when_asked(byte request)
    {
        await using Link link = await ConnectAsync();
        await link.SendAsync(RecordProtection.Handshake, [24, 0]);
        await link.SendAsync(RecordProtection.Handshake, [0, 1, request]);
        link.Peer.UpdateWriteKey();
        await link.SendAsync(RecordProtection.ApplicationData, "new keys"u8);
        Assert.Equal("new keys"u8.ToArray(), await ReadAsync(link.Server, 8));

        await link.Server.WriteAsync("answer"u8.ToArray());
        if (request == 1)
        {
            AssertRecord(RecordProtection.Handshake, [24, 0, 0, 1, 0], await link.ReceiveAsync()); // not asking back
            link.Peer.UpdateReadKey();
        }

        AssertRecord(RecordProtection.ApplicationData, "answer"u8.ToArray(), await link.ReceiveAsync());
        await link.Server.WriteAsync("again"u8.ToArray()); // answered once: no second KeyUpdate
        AssertRecord(RecordProtection.ApplicationData, "again"u8.ToArray(), await link.ReceiveAsync());
    }

    [Theory]
    [InlineData(new byte[] { 24, 0, 0, 1, 0, 24 }, TlsAlertException.UnexpectedMessage)] // more after the KeyUpdate in its record
    [InlineData(new byte[] { 24, 0, 0, 2, 0, 0 }, TlsAlertException.DecodeError)]        // a KeyUpdate of two bytes
    [InlineData(new byte[] { 24, 0, 0, 1, 2 }, TlsAlertException.IllegalParameter)]      // request_update 2
    [InlineData(new byte[] { 4, 0, 0, 1, 0 }, TlsAlertException.UnexpectedMessage)]      // a NewSessionTicket from a client
    [InlineData(new byte[] { 13, 0, 0, 0 }, TlsAlertException.UnexpectedMessage)]        // a CertificateRequest
    [InlineData(new byte[] { }, TlsAlertException.UnexpectedMessage)]                    // an empty handshake record
    public async Task A_handshake_message_other_than_a_well_formed_key_update_is_refused(byte[] content, byte alert)
    {
        await using Link link = await ConnectAsync();
        await link.SendAsync(RecordProtection.Handshake, content);
        Assert.Equal(alert, await RefusedAsync(link));
    }

    [Fact]
    public async Task Another_record_inside_a_split_handshake_message_is_refused()
    {
        await using Link link = await ConnectAsync();
        await link.SendAsync(RecordProtection.Handshake, [24, 0]);
        await link.SendAsync(RecordProtection.ApplicationData, "between"u8);
        Assert.Equal(TlsAlertException.UnexpectedMessage, await RefusedAsync(link));
    }

    [Fact]
    public async Task Our_keys_are_updated_before_they_wear_out()
    {
        ulong limit = RecordProtection.WriteKeyLimit;
        RecordProtection.WriteKeyLimit = 3;
        try
        {
            await using Link link = await ConnectAsync();
            for (int i = 0; i < 3; i++)
            {
                await link.Server.WriteAsync(new byte[] { (byte)i });
                Assert.Equal(new byte[] { (byte)i }, (await link.ReceiveAsync()).Content);
            }

            await link.Server.WriteAsync(new byte[] { 3 });
            AssertRecord(RecordProtection.Handshake, [24, 0, 0, 1, 0], await link.ReceiveAsync());
            link.Peer.UpdateReadKey();
            Assert.Equal(new byte[] { 3 }, (await link.ReceiveAsync()).Content);
        }
        finally
        {
            RecordProtection.WriteKeyLimit = limit;
        }
    }

    [Fact]
    public async Task The_connection_cut_inside_a_record_is_an_error_and_between_records_an_end()
    {
        await using (Link link = await ConnectAsync())
        {
            byte[] record = link.Seal(RecordProtection.ApplicationData, "cut"u8);
            await link.SendRawAsync(record[..10]);
            link.Socket.Shutdown(SocketShutdown.Send);
            IOException e = await Assert.ThrowsAnyAsync<IOException>(() => link.Server.ReadAsync(new byte[100]).AsTask());
            Assert.Contains("middle of a TLS record", e.Message);
        }

        await using (Link link = await ConnectAsync())
        {
            await link.SendAsync(RecordProtection.ApplicationData, "whole"u8);
            link.Socket.Shutdown(SocketShutdown.Send);
            Assert.Equal("whole"u8.ToArray(), await ReadAsync(link.Server, 5));
            Assert.Equal(0, await link.Server.ReadAsync(new byte[100]));
        }
    }

    [Fact]
    public async Task A_zero_byte_read_answers_at_once_when_a_record_or_content_waits()
    {
        await using Link link = await ConnectAsync();
        await link.SendAsync(RecordProtection.ApplicationData, Pattern(1000, 9));
        byte[] first = new byte[10];
        Assert.Equal(10, await link.Server.ReadAsync(first));
        ValueTask<int> probe = link.Server.ReadAsync(Memory<byte>.Empty);
        Assert.True(probe.IsCompleted); // the rest of the record's content waits here
        Assert.Equal(0, await probe);
        byte[] rest = await ReadAsync(link.Server, 990);
        Assert.Equal(Pattern(1000, 9), first.Concat(rest).ToArray());
    }
}

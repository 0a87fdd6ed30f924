using System.Buffers.Binary;
using Appliance.Tls.Tests.Support;
using System.Net.Security;
using System.Security.Authentication;
using static Appliance.Tls.ClientHelloReader;

namespace Appliance.Tls.Tests;

public sealed class ClientHelloReaderTests
{
    private static readonly SslApplicationProtocol AcmeTls1 = new("acme-tls/1");

    /// <summary>The bytes a real SslStream client sends first.</summary>
    private static async Task<byte[]> RealClientHelloAsync(string? serverName, params SslApplicationProtocol[] protocols)
    {
        var capture = new ScriptedStream([]); // its end of input ends the handshake after the ClientHello
        using var ssl = new SslStream(capture, leaveInnerStreamOpen: true, (_, _, _, _) => true);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = serverName ?? "",
            ApplicationProtocols = protocols.Length == 0 ? null : [.. protocols],
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        };
        await Assert.ThrowsAnyAsync<Exception>(() => ssl.AuthenticateAsClientAsync(options));
        return [.. capture.Written];
    }

    private static byte[] Record(byte type, byte[] payload) => [type, 3, 1, (byte)(payload.Length >> 8), (byte)payload.Length, .. payload];

    [Fact]
    public async Task Reads_sni_and_alpn_from_a_real_client_hello()
    {
        byte[] hello = await RealClientHelloAsync("a.example.test", AcmeTls1, SslApplicationProtocol.Http11);
        Assert.Equal(Result.Complete, Read(hello, out ClientHello h));
        Assert.Equal("a.example.test", h.ServerName);
        Assert.True(h.Offers(AcmeTls1));
        Assert.Equal([AcmeTls1, SslApplicationProtocol.Http11], h.ApplicationProtocols);
    }

    [Fact]
    public async Task A_client_hello_without_sni_or_alpn_is_complete_with_neither()
    {
        byte[] hello = await RealClientHelloAsync(null);
        Assert.Equal(Result.Complete, Read(hello, out ClientHello h));
        Assert.Null(h.ServerName);
        Assert.Empty(h.ApplicationProtocols);
    }

    [Fact]
    public async Task Every_truncation_needs_more()
    {
        byte[] hello = await RealClientHelloAsync("a.example.test", AcmeTls1);
        for (int n = 0; n < hello.Length; n++)
        {
            Assert.Equal(Result.NeedMore, Read(hello.AsSpan(0, n), out _));
        }
    }

    [Fact]
    public async Task A_client_hello_split_over_records_is_joined()
    {
        byte[] hello = await RealClientHelloAsync("a.example.test", AcmeTls1);
        byte[] message = hello[5..];
        byte[] split = [.. Record(22, message[..3]), .. Record(22, message[3..40]), .. Record(22, message[40..])];
        Assert.Equal(Result.Complete, Read(split, out ClientHello h));
        Assert.Equal("a.example.test", h.ServerName);
        Assert.Equal(Result.NeedMore, Read(split.AsSpan(0, 20), out _));
    }

    [Fact]
    public async Task Each_corrupted_byte_gives_an_answer_and_never_throws()
    {
        byte[] hello = await RealClientHelloAsync("a.example.test", AcmeTls1);
        var random = new Random(7);
        for (int i = 0; i < hello.Length; i++)
        {
            byte[] copy = [.. hello];
            copy[i] ^= (byte)(1 + random.Next(255));
            Read(copy, out _); // any result, no exception
        }
    }

    [Theory]
    [InlineData(new byte[] { 0x47, 0x45, 0x54, 0x20, 0x2F, 0x20, 0x48, 0x54 })] // "GET / HT": plain HTTP on the TLS port
    [InlineData(new byte[] { 23, 3, 3, 0, 5, 1, 2, 3, 4, 5 })] // application data first
    [InlineData(new byte[] { 22, 3, 1, 0, 0 })] // empty handshake record
    [InlineData(new byte[] { 22, 3, 1, 0x41, 0x00 })] // record over 2^14
    [InlineData(new byte[] { 22, 2, 0, 0, 4, 1, 0, 0, 0 })] // SSL 2 era version
    [InlineData(new byte[] { 22, 3, 1, 0, 4, 2, 0, 0, 0 })] // a ServerHello, not a ClientHello
    [InlineData(new byte[] { 22, 3, 1, 0, 4, 1, 0xFF, 0xFF, 0xFF })] // a 16 MiB ClientHello
    [InlineData(new byte[] { 22, 3, 1, 0, 4, 1, 0, 0, 0 })] // an empty ClientHello body
    public void Hostile_starts_are_malformed(byte[] bytes) => Assert.Equal(Result.Malformed, Read(bytes, out _));

    [Fact]
    public async Task Lengths_that_lie_are_malformed()
    {
        byte[] hello = await RealClientHelloAsync("a.example.test", AcmeTls1);
        // Make the extensions block claim one byte more than there is (inside a message whose own length is right).
        int body = 9;
        int sessionIdLength = hello[body + 34];
        int suitesAt = body + 35 + sessionIdLength;
        int suites = BinaryPrimitives.ReadUInt16BigEndian(hello.AsSpan(suitesAt));
        int compressionAt = suitesAt + 2 + suites;
        int extensionsAt = compressionAt + 1 + hello[compressionAt];
        byte[] lying = [.. hello];
        BinaryPrimitives.WriteUInt16BigEndian(lying.AsSpan(extensionsAt), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(hello.AsSpan(extensionsAt)) + 1));
        Assert.Equal(Result.Malformed, Read(lying, out _));
    }

    [Fact]
    public void Duplicate_extensions_bad_names_and_empty_protocols_are_malformed()
    {
        byte[] sni = Extension(0, [.. U16(9), 0, .. U16(6), .. "a.test"u8]);
        byte[] alpn = Extension(16, [.. U16(11), 10, .. "acme-tls/1"u8]);
        Assert.Equal(Result.Complete, Read(Hello(sni, alpn), out ClientHello ok));
        Assert.Equal("a.test", ok.ServerName);
        Assert.Equal(Result.Malformed, Read(Hello(sni, sni), out _));
        Assert.Equal(Result.Malformed, Read(Hello(Extension(0, [.. U16(9), 0, .. U16(6), .. "a/test"u8])), out _));
        Assert.Equal(Result.Malformed, Read(Hello(Extension(0, [.. U16(9), 0, .. U16(6), 0, .. "a.tes"u8])), out _));
        Assert.Equal(Result.Malformed, Read(Hello(Extension(16, [.. U16(1), 0])), out _));
        Assert.Equal(Result.Malformed, Read(Hello(Extension(16, [.. U16(3), 5, .. "h2"u8])), out _));
        Assert.Equal(Result.Malformed, Read(Hello(Extension(16, [.. U16(0)])), out _));
    }

    private static byte[] U16(int v) => [(byte)(v >> 8), (byte)v];

    private static byte[] Extension(ushort type, byte[] data) => [.. U16(type), .. U16(data.Length), .. data];

    private static byte[] Hello(params byte[][] extensions)
    {
        byte[] all = [.. extensions.SelectMany(e => e)];
        byte[] body = [3, 3, .. new byte[32], 0, .. U16(2), 0x13, 0x01, 1, 0, .. U16(all.Length), .. all];
        byte[] message = [1, 0, (byte)(body.Length >> 8), (byte)body.Length, .. body];
        return Record(22, message);
    }

    [Fact]
    public async Task Receive_reads_until_complete_and_replays_every_byte()
    {
        byte[] hello = await RealClientHelloAsync("a.example.test", AcmeTls1);
        byte[] sent = [.. hello, .. "after"u8];
        var slow = new TrickleStream(sent, chunk: 7);
        (byte[] buffer, int length, ClientHello? h) = await ReceiveAsync(slow, default);
        Assert.Equal("a.example.test", h?.ServerName);
        using var replay = new ReplayStream(buffer, length, slow);
        byte[] all = new byte[sent.Length];
        int read = 0;
        while (read < all.Length)
        {
            int n = await replay.ReadAsync(all.AsMemory(read));
            Assert.NotEqual(0, n);
            read += n;
        }

        Assert.Equal(sent, all);
    }
}

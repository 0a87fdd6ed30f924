using System.Buffers.Binary;
using Appliance.Tls;
using static Appliance.Tls.ServerFlightReader;

namespace Appliance.Tls.Tests;

public sealed class ServerFlightReaderTests
{
    private static readonly byte[] RetryRandom = Convert.FromHexString("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C");

    [Fact]
    public void Tls13_server_hello_with_pre_shared_key_is_resumed() =>
        Assert.Equal(Result.Resumed, Read(Record(22, Hello13(psk: true)), Record(20, [1]), Record(23, new byte[40])));

    [Fact]
    public void Tls13_server_hello_without_pre_shared_key_is_full() =>
        Assert.Equal(Result.Full, Read(Record(22, Hello13(psk: false)), Record(20, [1]), Record(23, new byte[40])));

    [Fact]
    public void Tls13_hello_retry_request_is_skipped_for_the_real_server_hello()
    {
        byte[] retry = Concat(Record(22, Hello13(psk: false, random: RetryRandom)), Record(20, [1]));
        Assert.Equal(Result.NeedMore, Read(retry));
        Assert.Equal(Result.Resumed, Read(retry, Record(22, Hello13(psk: true))));
        Assert.Equal(Result.Full, Read(retry, Record(22, Hello13(psk: false))));
    }

    [Fact]
    public void Tls12_server_hello_then_certificate_is_full() =>
        Assert.Equal(Result.Full, Read(Record(22, Concat(Hello12(), Message(11, new byte[300]), Message(14, [])))));

    [Fact]
    public void Tls12_server_hello_then_ticket_is_resumed() =>
        Assert.Equal(Result.Resumed, Read(Record(22, Concat(Hello12(), Message(4, new byte[100]))), Record(20, [1]), Record(22, new byte[40])));

    [Fact]
    public void Tls12_server_hello_then_change_cipher_spec_is_resumed() =>
        // Session-ID resumption: the encrypted Finished after ChangeCipherSpec is a handshake record of noise.
        Assert.Equal(Result.Resumed, Read(Record(22, Hello12()), Record(20, [1]), Record(22, [0x0B, 0x00, 0x01, 0x2C, 9, 9, 9])));

    [Fact]
    public void Messages_split_across_records_and_writes_are_joined()
    {
        byte[] flight = Record(22, Concat(Hello13(psk: true)));
        byte[] handshake = flight[5..];
        byte[] split = Concat(Record(22, handshake[..10]), Record(22, handshake[10..]));
        Assert.Equal(Result.Resumed, Read(split));
        Assert.Equal(Result.NeedMore, Read(split[..20]));
    }

    [Fact]
    public void Every_truncation_needs_more_or_gives_the_right_answer()
    {
        foreach ((byte[] flight, Result answer) in new[]
        {
            (Concat(Record(22, Hello13(psk: true)), Record(20, [1])), Result.Resumed),
            (Concat(Record(22, Hello13(psk: false)), Record(20, [1])), Result.Full),
            (Record(22, Concat(Hello12(), Message(11, new byte[64]))), Result.Full),
            (Concat(Record(22, Hello12()), Record(20, [1])), Result.Resumed),
        })
        {
            for (int n = 0; n < flight.Length; n++)
            {
                Result r = ServerFlightReader.Read(flight.AsSpan(0, n));
                Assert.True(r == Result.NeedMore || r == answer, $"prefix {n}: {r}");
            }

            Assert.Equal(answer, ServerFlightReader.Read(flight));
        }
    }

    [Theory]
    [InlineData("16030100")]                  // short header
    [InlineData("170303000501020304051603")] // application data first
    [InlineData("15030300020228")]           // alert
    [InlineData("16020000040200")]           // not TLS 1.x
    [InlineData("1603037FFF")]               // oversized record
    [InlineData("160303000401000000")]       // ClientHello, not ServerHello
    public void Hostile_or_foreign_bytes_are_unknown_or_need_more(string hex)
    {
        Result r = ServerFlightReader.Read(Convert.FromHexString(hex));
        Assert.True(r is Result.Unknown or Result.NeedMore, r.ToString());
    }

    [Fact]
    public void Malformed_server_hellos_are_unknown()
    {
        byte[] hello = Hello13(psk: true);
        hello[4 + 34] = 200; // session id longer than the message
        Assert.Equal(Result.Unknown, Read(Record(22, hello)));

        hello = Hello13(psk: true);
        hello[4 + 2 + 32 + 1 + 32 + 3 + 1] += 3; // the extensions block claims more than the message holds
        Assert.Equal(Result.Unknown, Read(Record(22, Concat(hello, Message(11, [])))));
    }

    [Fact]
    public void Random_bytes_never_throw()
    {
        var random = new Random(1234);
        var buffer = new byte[600];
        for (int i = 0; i < 20_000; i++)
        {
            random.NextBytes(buffer);
            int length = random.Next(buffer.Length);
            if (i % 2 == 0)
            {
                buffer[0] = 22; buffer[1] = 3; buffer[3] = 0; buffer[4] = (byte)random.Next(256); buffer[5] = 2;
            }

            _ = ServerFlightReader.Read(buffer.AsSpan(0, length));
        }
    }

    private static Result Read(params byte[][] writes) => ServerFlightReader.Read(Concat(writes));

    private static byte[] Hello13(bool psk, byte[]? random = null)
    {
        var ext = new List<byte[]> { Extension(43, [0x03, 0x04]), Extension(51, new byte[36]) };
        if (psk)
        {
            ext.Add(Extension(41, [0, 0]));
        }

        return ServerHelloMessage(random ?? new byte[32], sessionId: new byte[32], Concat([.. ext]));
    }

    private static byte[] Hello12() =>
        ServerHelloMessage(new byte[32], sessionId: new byte[32], Concat(Extension(0xFF01, [0]), Extension(11, [1, 0])));

    private static byte[] ServerHelloMessage(byte[] random, byte[] sessionId, byte[] extensions)
    {
        byte[] body = Concat([3, 3], random, [(byte)sessionId.Length], sessionId, [0x13, 0x01, 0], U16((ushort)extensions.Length), extensions);
        return Message(2, body);
    }

    private static byte[] Extension(ushort type, byte[] data) => Concat(U16(type), U16((ushort)data.Length), data);

    private static byte[] Message(byte type, byte[] body) =>
        Concat([type, (byte)(body.Length >> 16), (byte)(body.Length >> 8), (byte)body.Length], body);

    private static byte[] Record(byte type, byte[] payload) => Concat([type, 3, 3], U16((ushort)payload.Length), payload);

    private static byte[] U16(ushort v)
    {
        var b = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, v);
        return b;
    }

    private static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];
}

using System.Buffers.Binary;
using System.Net.Security;

namespace Appliance.Tls;

/// <summary>
/// Reads the server name (SNI, RFC 6066 §3) and the offered ALPN protocols (RFC 7301 §3.1) from a client's first
/// bytes, the two facts a TLS-ALPN-01 answer (RFC 8737) is chosen by and that <see cref="SslClientHelloInfo"/> does
/// not fully give (it has no ALPN list). The ClientHello may span records (RFC 8446 §5.1). Returns
/// <see cref="Result.NeedMore"/> until the message is complete; anything malformed, oversized or not a ClientHello is
/// <see cref="Result.Malformed"/>, never an exception, and the caller lets the normal handshake deal with it.
/// </summary>
public static class ClientHelloReader
{
    public enum Result
    {
        NeedMore,
        Complete,
        Malformed,
    }

    /// <summary>Real ClientHellos are under 2 KiB (a post-quantum key share adds about 1.2 KiB); more is refused.</summary>
    public const int MaxClientHelloBytes = 16 * 1024;

    /// <summary>What a caller may have to buffer: the message in full records (at most two headers for 16 KiB).</summary>
    public const int MaxReceiveBytes = MaxClientHelloBytes + 2 * RecordHeaderLength;

    private const int RecordHeaderLength = 5;
    private const byte Handshake = 22;
    private const byte ClientHelloType = 1;
    private const ushort ServerNameExtension = 0;
    private const ushort AlpnExtension = 16;
    private const int MaxRecordPayload = 1 << 14;

    /// <summary>What the reader found in a complete ClientHello.</summary>
    /// <param name="ServerName">The host_name from SNI, or null when the client sent none.</param>
    /// <param name="ApplicationProtocols">ALPN protocols in the client's order; empty without the extension.</param>
    public readonly record struct ClientHello(string? ServerName, IReadOnlyList<SslApplicationProtocol> ApplicationProtocols)
    {
        public bool Offers(SslApplicationProtocol protocol) => ApplicationProtocols.Contains(protocol);
    }

    /// <summary>Reads everything the client has sent so far, from its first byte.</summary>
    public static Result Read(ReadOnlySpan<byte> received, out ClientHello hello)
    {
        hello = default;
        byte[]? gathered = null;
        int length = 0;
        while (received.Length >= RecordHeaderLength)
        {
            int recordLength = BinaryPrimitives.ReadUInt16BigEndian(received[3..]);
            // RFC 8446 §5.1: handshake records only until the ClientHello is whole, never empty, at most 2^14 bytes.
            if (received[0] != Handshake || received[1] != 3 || recordLength == 0 || recordLength > MaxRecordPayload)
            {
                return Result.Malformed;
            }

            if (received.Length < RecordHeaderLength + recordLength)
            {
                return Result.NeedMore;
            }

            ReadOnlySpan<byte> payload = received.Slice(RecordHeaderLength, recordLength);
            gathered ??= new byte[MaxClientHelloBytes + 4];
            if (length + payload.Length > gathered.Length)
            {
                return Result.Malformed;
            }

            payload.CopyTo(gathered.AsSpan(length));
            length += payload.Length;
            received = received[(RecordHeaderLength + recordLength)..];
            if (length < 4)
            {
                continue;
            }

            int messageLength = (gathered[1] << 16) | (gathered[2] << 8) | gathered[3];
            if (gathered[0] != ClientHelloType || messageLength > MaxClientHelloBytes)
            {
                return Result.Malformed;
            }

            if (length >= 4 + messageLength)
            {
                return ReadBody(gathered.AsSpan(4, messageLength), out hello) ? Result.Complete : Result.Malformed;
            }
        }

        return Result.NeedMore;
    }

    /// <summary>
    /// Reads from <paramref name="stream"/> until the ClientHello is complete (or clearly not one, or the peer stops).
    /// Returns every byte consumed, for the handshake to read again, and the ClientHello when one was read.
    /// </summary>
    public static async Task<(byte[] Buffer, int Length, ClientHello? Hello)> ReceiveAsync(Stream stream, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[MaxReceiveBytes];
        int length = 0;
        while (length < buffer.Length)
        {
            int read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            length += read;
            switch (Read(buffer.AsSpan(0, length), out ClientHello hello))
            {
                case Result.Complete:
                    return (buffer, length, hello);
                case Result.Malformed:
                    return (buffer, length, null);
            }
        }

        return (buffer, length, null);
    }

    // RFC 8446 §4.1.2: legacy_version(2) random(32) legacy_session_id<0..32> cipher_suites<2..2^16-2>
    // legacy_compression_methods<1..2^8-1> extensions<8..2^16-1> (a TLS 1.2 client may send no extensions at all).
    private static bool ReadBody(ReadOnlySpan<byte> body, out ClientHello hello)
    {
        hello = default;
        if (body.Length < 35 || body[34] > 32)
        {
            return false;
        }

        ReadOnlySpan<byte> rest = body[(35 + body[34])..];
        if (rest.Length < 2)
        {
            return false;
        }

        int suites = BinaryPrimitives.ReadUInt16BigEndian(rest);
        if (suites < 2 || suites % 2 != 0 || rest.Length < 2 + suites + 1)
        {
            return false;
        }

        rest = rest[(2 + suites)..];
        int compression = rest[0];
        if (compression < 1 || rest.Length < 1 + compression)
        {
            return false;
        }

        rest = rest[(1 + compression)..];
        if (rest.IsEmpty)
        {
            hello = new ClientHello(null, []);
            return true;
        }

        if (rest.Length < 2 || BinaryPrimitives.ReadUInt16BigEndian(rest) != rest.Length - 2)
        {
            return false;
        }

        string? serverName = null;
        List<SslApplicationProtocol> protocols = [];
        var seen = new HashSet<ushort>();
        for (ReadOnlySpan<byte> extensions = rest[2..]; !extensions.IsEmpty;)
        {
            if (extensions.Length < 4)
            {
                return false;
            }

            ushort type = BinaryPrimitives.ReadUInt16BigEndian(extensions);
            int length = BinaryPrimitives.ReadUInt16BigEndian(extensions[2..]);
            if (extensions.Length < 4 + length || !seen.Add(type))
            {
                return false; // RFC 8446 §4.2: at most one extension of each type
            }

            ReadOnlySpan<byte> data = extensions.Slice(4, length);
            if (type == ServerNameExtension && !ReadServerName(data, out serverName))
            {
                return false;
            }

            if (type == AlpnExtension && !ReadProtocols(data, protocols))
            {
                return false;
            }

            extensions = extensions[(4 + length)..];
        }

        hello = new ClientHello(serverName, protocols);
        return true;
    }

    // RFC 6066 §3: ServerNameList server_name_list<1..2^16-1>; ServerName { NameType name_type; HostName host_name<1..2^16-1> }.
    private static bool ReadServerName(ReadOnlySpan<byte> data, out string? serverName)
    {
        serverName = null;
        if (data.Length < 2 || BinaryPrimitives.ReadUInt16BigEndian(data) != data.Length - 2 || data.Length == 2)
        {
            return false;
        }

        for (ReadOnlySpan<byte> list = data[2..]; !list.IsEmpty;)
        {
            if (list.Length < 3)
            {
                return false;
            }

            int length = BinaryPrimitives.ReadUInt16BigEndian(list[1..]);
            if (length == 0 || list.Length < 3 + length)
            {
                return false;
            }

            ReadOnlySpan<byte> name = list.Slice(3, length);
            if (list[0] == 0 && serverName is null)
            {
                // A DNS name in A-labels: anything else is not a name a certificate could be chosen by.
                if (length > 255 || !IsHostName(name))
                {
                    return false;
                }

                serverName = System.Text.Encoding.ASCII.GetString(name);
            }

            list = list[(3 + length)..];
        }

        return true;
    }

    // RFC 7301 §3.1: ProtocolNameList protocol_name_list<2..2^16-1>; ProtocolName opaque<1..2^8-1>.
    private static bool ReadProtocols(ReadOnlySpan<byte> data, List<SslApplicationProtocol> protocols)
    {
        if (data.Length < 4 || BinaryPrimitives.ReadUInt16BigEndian(data) != data.Length - 2)
        {
            return false;
        }

        for (ReadOnlySpan<byte> list = data[2..]; !list.IsEmpty;)
        {
            int length = list[0];
            if (length == 0 || list.Length < 1 + length)
            {
                return false;
            }

            protocols.Add(new SslApplicationProtocol(list.Slice(1, length).ToArray()));
            list = list[(1 + length)..];
        }

        return true;
    }

    private static bool IsHostName(ReadOnlySpan<byte> name)
    {
        foreach (byte b in name)
        {
            if (!(char.IsAsciiLetterOrDigit((char)b) || b is (byte)'-' or (byte)'.' or (byte)'_'))
            {
                return false;
            }
        }

        return true;
    }
}

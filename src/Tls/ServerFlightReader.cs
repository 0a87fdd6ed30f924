using System.Buffers.Binary;

namespace Appliance.Tls;

/// <summary>
/// Tells from the bytes a TLS server sent whether the handshake resumed a session, the one fact SslStream keeps to
/// itself. Reads the plaintext start of the server's flight only:
/// <list type="bullet">
/// <item>TLS 1.3 (RFC 8446 §4.2.11): the ServerHello carries a <c>pre_shared_key</c> extension exactly when the
/// server accepted a PSK, i.e. resumed. A HelloRetryRequest is a ServerHello with a fixed random (§4.1.3); the real
/// one follows later.</item>
/// <item>TLS 1.2 (RFC 5246 §7.3): a full handshake sends Certificate right after ServerHello; an abbreviated one
/// sends NewSessionTicket (RFC 5077 §3.3) or ChangeCipherSpec instead.</item>
/// </list>
/// Returns <see cref="Result.NeedMore"/> until the bytes decide; anything malformed is <see cref="Result.Unknown"/>,
/// never an exception.
/// </summary>
public static class ServerFlightReader
{
    public enum Result
    {
        NeedMore,
        Full,
        Resumed,
        Unknown,
    }

    private const byte ChangeCipherSpec = 20;
    private const byte Alert = 21;
    private const byte Handshake = 22;
    private const byte ServerHello = 2;
    private const byte NewSessionTicket = 4;
    private const byte Certificate = 11;
    private const ushort SupportedVersions = 43;
    private const ushort PreSharedKey = 41;

    // RFC 8446 §4.1.3: SHA-256("HelloRetryRequest").
    private static ReadOnlySpan<byte> HelloRetryRandom =>
    [
        0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
        0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
    ];

    /// <summary>Reads everything the server has sent so far, from its first byte.</summary>
    public static Result Read(ReadOnlySpan<byte> sent)
    {
        // Handshake messages may span records; gather the handshake payloads up to the first other record.
        Span<byte> messages = stackalloc byte[Math.Min(sent.Length, 4096)];
        int gathered = 0;
        while (sent.Length >= 5)
        {
            byte type = sent[0];
            int length = BinaryPrimitives.ReadUInt16BigEndian(sent[3..]);
            if (sent[1] != 3 || length > (1 << 14) + 2048)
            {
                return Result.Unknown; // not a TLS record (RFC 8446 §5.1 caps the length)
            }

            ReadOnlySpan<byte> payload = sent.Slice(5, Math.Min(length, sent.Length - 5));
            if (type == Handshake)
            {
                int take = Math.Min(payload.Length, messages.Length - gathered);
                payload[..take].CopyTo(messages[gathered..]);
                gathered += take;
            }
            else if (type == ChangeCipherSpec)
            {
                // TLS 1.2: what follows is encrypted, so decide now. (TLS 1.3 sends one for middleboxes after a
                // HelloRetryRequest; the real ServerHello comes after it.)
                Result decided = ReadMessages(messages[..gathered], changeCipherSpecSeen: true);
                if (decided != Result.NeedMore)
                {
                    return decided;
                }
            }
            else if (type == Alert)
            {
                return Result.Unknown;
            }
            else
            {
                break; // encrypted records: everything readable has been read
            }

            if (payload.Length < length)
            {
                break;
            }

            sent = sent[(5 + length)..];
        }

        return ReadMessages(messages[..gathered], changeCipherSpecSeen: false);
    }

    private static Result ReadMessages(ReadOnlySpan<byte> messages, bool changeCipherSpecSeen)
    {
        bool tls12ServerHello = false;
        while (messages.Length >= 4)
        {
            byte type = messages[0];
            int length = (messages[1] << 16) | (messages[2] << 8) | messages[3];
            if (tls12ServerHello)
            {
                // The message after a TLS 1.2 ServerHello decides; its header is enough.
                return type switch
                {
                    Certificate => Result.Full,
                    NewSessionTicket => Result.Resumed,
                    _ => Result.Unknown,
                };
            }

            if (type != ServerHello)
            {
                return Result.Unknown;
            }

            if (messages.Length < 4 + length)
            {
                return Result.NeedMore;
            }

            switch (ReadServerHello(messages.Slice(4, length)))
            {
                case Hello.Tls13Resumed: return Result.Resumed;
                case Hello.Tls13Full: return Result.Full;
                case Hello.HelloRetry: break; // the real ServerHello comes after the client's second ClientHello
                case Hello.Tls12: tls12ServerHello = true; break;
                default: return Result.Unknown;
            }

            messages = messages[(4 + length)..];
        }

        // TLS 1.2 with session IDs: ServerHello, then straight to ChangeCipherSpec.
        return tls12ServerHello && changeCipherSpecSeen ? Result.Resumed : Result.NeedMore;
    }

    private enum Hello
    {
        Malformed,
        Tls12,
        Tls13Full,
        Tls13Resumed,
        HelloRetry,
    }

    private static Hello ReadServerHello(ReadOnlySpan<byte> hello)
    {
        // legacy_version(2) random(32) legacy_session_id<0..32> cipher_suite(2) legacy_compression_method(1) extensions<..>
        if (hello.Length < 35 || hello[34] > 32 || hello.Length < 35 + hello[34] + 3)
        {
            return Hello.Malformed;
        }

        bool retry = hello.Slice(2, 32).SequenceEqual(HelloRetryRandom);
        ReadOnlySpan<byte> rest = hello[(35 + hello[34] + 3)..];
        if (rest.Length == 0)
        {
            return Hello.Tls12; // no extensions at all: TLS 1.2 or older
        }

        if (rest.Length < 2 || BinaryPrimitives.ReadUInt16BigEndian(rest) != rest.Length - 2)
        {
            return Hello.Malformed;
        }

        bool tls13 = false, psk = false;
        for (ReadOnlySpan<byte> ext = rest[2..]; ext.Length > 0;)
        {
            if (ext.Length < 4)
            {
                return Hello.Malformed;
            }

            ushort type = BinaryPrimitives.ReadUInt16BigEndian(ext);
            int length = BinaryPrimitives.ReadUInt16BigEndian(ext[2..]);
            if (ext.Length < 4 + length)
            {
                return Hello.Malformed;
            }

            ReadOnlySpan<byte> data = ext.Slice(4, length);
            tls13 |= type == SupportedVersions && length == 2 && BinaryPrimitives.ReadUInt16BigEndian(data) == 0x0304;
            psk |= type == PreSharedKey;
            ext = ext[(4 + length)..];
        }

        return !tls13 ? Hello.Tls12 : retry ? Hello.HelloRetry : psk ? Hello.Tls13Resumed : Hello.Tls13Full;
    }
}

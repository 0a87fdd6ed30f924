using System.Buffers;
using System.Net.Security;
using System.Runtime.InteropServices;

namespace Appliance.Tls;

/// <summary>
/// The record layer of a TLS 1.3 server connection run here rather than in OpenSSL (server.tlsRecordLayer "evp"):
/// the framing of RFC 8446 §5, the alerts of §6 and the one message a client may send after the handshake, its
/// KeyUpdate (§4.6.3); the sealing and opening are <see cref="RecordProtection"/>'s. Received records are opened in
/// the caller's buffer where they arrived whole (each record's content moved down over the bytes already read), and
/// otherwise kept aside until whole; a record's content that does not fit the caller's buffer waits in front of the
/// ciphertext kept aside. The SSL object is not used after the handshake and goes with the SslStream.
/// <para>A record refused ends the connection with the fatal alert RFC 8446 names for it (bad_record_mac,
/// record_overflow, unexpected_message, decode_error, illegal_parameter), sent after any write in flight (the
/// connection's writes never overlap, and the alert must follow the records sealed before it); nothing is read or
/// written after it. As OpenSSL does, more than 32 records in a row that carry no data (empty ones, warnings, key
/// updates) are refused, so a peer cannot keep the connection busy for nothing.</para>
/// </summary>
public sealed partial class TlsRecordStream
{
    private const byte CloseNotify = 0;
    private const byte UserCanceled = 90;
    private const byte AlertWarning = 1;
    private const byte AlertFatal = 2;
    private const int MaxRecordsWithoutData = 32; // OpenSSL's MAX_EMPTY_RECORDS
    private const byte KeyUpdate = 24;
    private const int KeyUpdateRecord = 5 + RecordProtection.Overhead; // a KeyUpdate message of ours, sealed

    private readonly RecordProtection? _protection;
    private int _plainStart;   // opened content not delivered yet, in _held ahead of _heldStart (under _lock)
    private int _plainEnd;
    private bool _peerClosed;  // its close_notify came: reads end there
    private bool _keyUpdateOwed; // its KeyUpdate asked for ours, which goes ahead of our next record
    private ulong _handshakeBytes; // a KeyUpdate message read so far (it may span records), and how many bytes of it
    private int _handshakeLength;
    private int _recordsWithoutData;

    private TlsRecordStream(SslStream? owner, Stream transport, RecordProtection protection)
    {
        _owner = owner;
        _transport = transport;
        _protection = protection;
    }

    /// <summary>A protected stream over <paramref name="transport"/> with keys of the caller's, without a handshake (tests).</summary>
    internal static TlsRecordStream Protected(Stream transport, RecordProtection protection) => new(null, transport, protection);

    /// <summary>Whether this connection's records are sealed and opened here (server.tlsRecordLayer "evp").</summary>
    public bool IsProtected => _protection is not null;

    /// <summary>
    /// The record protection for a server's TLS 1.3 connection whose handshake left its secrets, with nothing of it
    /// left inside OpenSSL (no record read ahead, nothing unsent); null otherwise, and the connection stays on OpenSSL.
    /// </summary>
    private static unsafe RecordProtection? TryProtect(SslStream ssl, SafeHandle context, nint rbio, nint wbio)
    {
        nint p = context.DangerousGetHandle(); // the SslStream holds its reference until ReleaseHandshake
        if (OpenSslLibrary.SslIsServer(p) != 1 || OpenSslLibrary.SslVersion(p) != Tls13Version
            || OpenSslLibrary.SslHasPending(p) != 0 || OpenSslLibrary.BioCtrl(rbio, BioCtrlPending, 0, 0) != 0
            || OpenSslLibrary.BioCtrl(wbio, BioCtrlPending, 0, 0) != 0)
        {
            return null;
        }

        TlsCipherSuite suite = ssl.NegotiatedCipherSuite;
        int secretLength = RecordProtection.SecretLength(suite);
        SecretBlock* secrets = secretLength > 0 ? TrafficSecrets.TryTake(p, secretLength) : null;
        return secrets == null ? null : RecordProtection.Create(secrets, suite);
    }

    /// <summary>Whether a read can answer without more input: content waiting, a whole record, or the peer's close.</summary>
    private bool ProtectedBuffered()
    {
        if (_plainEnd > _plainStart || _peerClosed)
        {
            return true;
        }

        int available = _heldEnd - _heldStart;
        if (_held is null || available < RecordProtection.HeaderLength)
        {
            return false;
        }

        ReadOnlySpan<byte> header = _held.AsSpan(_heldStart);
        int length = (header[3] << 8) | header[4];
        return header[0] != RecordProtection.ApplicationData || length > RecordProtection.MaxCiphertext // to refuse
            || available - RecordProtection.HeaderLength >= length;
    }

    /// <summary>Opens what was received and what was kept (under the lock).</summary>
    private int OpenReceived(Span<byte> buffer, int received, out bool needInput)
    {
        needInput = false;
        int total = 0;
        if (received > 0)
        {
            if (_held is null)
            {
                int used = OpenInPlace(buffer[..received], out total);
                Hold(buffer[used..received]); // the start of a record still coming
            }
            else
            {
                Hold(buffer[..received]); // after part of a record kept before: opened where it is kept
            }
        }

        if (_held is not null && total < buffer.Length)
        {
            total += DeliverHeld(buffer[total..]);
        }

        if (total > 0 || _peerClosed)
        {
            return total;
        }

        needInput = true;
        return 0;
    }

    /// <summary>
    /// Opens the whole records at the start of <paramref name="data"/> where they are, moving each one's content down
    /// to follow the content before it: how much of the data they took, and the content's length.
    /// </summary>
    private int OpenInPlace(Span<byte> data, out int total)
    {
        total = 0;
        int position = 0;
        while (!_peerClosed && data.Length - position >= RecordProtection.HeaderLength)
        {
            int length = RecordLength(data[position..]);
            if (data.Length - position - RecordProtection.HeaderLength < length)
            {
                break;
            }

            Span<byte> record = data.Slice(position, RecordProtection.HeaderLength + length);
            int n = _protection!.Open(record, out byte type);
            if (Accept(type, record.Slice(RecordProtection.HeaderLength, n)))
            {
                record.Slice(RecordProtection.HeaderLength, n).CopyTo(data[total..]); // overlapping: moves down
                total += n;
            }

            position += record.Length;
        }

        return _peerClosed ? data.Length : position; // nothing after a close_notify is read
    }

    /// <summary>Delivers content kept aside, then opens the whole records kept aside, as far as the destination goes.</summary>
    private int DeliverHeld(Span<byte> destination)
    {
        int total = 0;
        while (true)
        {
            if (_plainEnd > _plainStart)
            {
                int n = Math.Min(destination.Length - total, _plainEnd - _plainStart);
                _held.AsSpan(_plainStart, n).CopyTo(destination[total..]);
                _plainStart += n;
                total += n;
                if (_plainStart < _plainEnd)
                {
                    break; // the destination is full
                }

                _plainStart = _plainEnd = 0;
            }

            int available = _heldEnd - _heldStart;
            if (total == destination.Length || _peerClosed || available < RecordProtection.HeaderLength)
            {
                break;
            }

            int length = RecordLength(_held.AsSpan(_heldStart));
            if (available - RecordProtection.HeaderLength < length)
            {
                break;
            }

            Span<byte> record = _held.AsSpan(_heldStart, RecordProtection.HeaderLength + length);
            int content = _protection!.Open(record, out byte type);
            int start = _heldStart + RecordProtection.HeaderLength;
            _heldStart += record.Length;
            if (Accept(type, record.Slice(RecordProtection.HeaderLength, content)))
            {
                _plainStart = start;
                _plainEnd = start + content;
            }
        }

        if (_peerClosed)
        {
            _heldStart = _heldEnd; // nothing after a close_notify is read
        }

        if (_heldStart == _heldEnd && _plainEnd == _plainStart)
        {
            ArrayPool<byte>.Shared.Return(_held!);
            _held = null;
            _heldStart = _heldEnd = _plainStart = _plainEnd = 0;
        }

        return total;
    }

    /// <summary>A protected record's body length from its header, refusing what may not follow a handshake (§5.1, §5.2).</summary>
    private static int RecordLength(ReadOnlySpan<byte> header)
    {
        byte type = header[0];
        if (type != RecordProtection.ApplicationData)
        {
            throw new TlsAlertException(TlsAlertException.UnexpectedMessage, type == RecordProtection.ChangeCipherSpec
                ? "a change_cipher_spec record after the handshake"
                : $"an unprotected record of content type {type} after the handshake");
        }

        int length = (header[3] << 8) | header[4];
        if (length > RecordProtection.MaxCiphertext)
        {
            throw new TlsAlertException(TlsAlertException.RecordOverflow, $"a record of {length} bytes, over 2^14 + 256");
        }

        return length;
    }

    /// <summary>Acts on an opened record's content: true for application data, to deliver.</summary>
    private bool Accept(byte type, ReadOnlySpan<byte> content)
    {
        if (_handshakeLength > 0 && type != RecordProtection.Handshake)
        {
            throw new TlsAlertException(TlsAlertException.UnexpectedMessage, "a record inside a handshake message");
        }

        if (type == RecordProtection.ApplicationData && !content.IsEmpty)
        {
            _recordsWithoutData = 0;
            return true;
        }

        if (++_recordsWithoutData > MaxRecordsWithoutData)
        {
            throw new TlsAlertException(TlsAlertException.UnexpectedMessage, $"more than {MaxRecordsWithoutData} records in a row without data");
        }

        switch (type)
        {
            case RecordProtection.ApplicationData:
                return true;
            case RecordProtection.Alert:
                ReadAlert(content);
                return false;
            case RecordProtection.Handshake:
                ReadHandshake(content);
                return false;
            default:
                throw new TlsAlertException(TlsAlertException.UnexpectedMessage, $"a record of content type {type}");
        }
    }

    /// <summary>close_notify ends reading; user_canceled is only a warning; every other alert is fatal (§6).</summary>
    private void ReadAlert(ReadOnlySpan<byte> content)
    {
        if (content.Length != 2)
        {
            throw new TlsAlertException(TlsAlertException.DecodeError, $"an alert record of {content.Length} bytes");
        }

        switch (content[1])
        {
            case CloseNotify:
                _peerClosed = true;
                break;
            case UserCanceled:
                break;
            default:
                throw new IOException($"TLS read failed: the peer sent alert {content[1]}");
        }
    }

    /// <summary>
    /// The only handshake message a server accepts after the handshake is a KeyUpdate (it requests no client
    /// certificate later): 4 bytes of header and request_update, ending with its record, since the keys change
    /// after it (§4.6.3, §5.1). Its answer, when asked for, goes ahead of our next record.
    /// </summary>
    private void ReadHandshake(ReadOnlySpan<byte> content)
    {
        if (content.IsEmpty)
        {
            throw new TlsAlertException(TlsAlertException.UnexpectedMessage, "an empty handshake record");
        }

        for (int i = 0; i < content.Length; i++)
        {
            _handshakeBytes = (_handshakeBytes << 8) | content[i];
            _handshakeLength++;
            if (_handshakeLength == 1 && content[i] != KeyUpdate)
            {
                throw new TlsAlertException(TlsAlertException.UnexpectedMessage, $"a handshake message of type {content[i]} after the handshake");
            }

            if (_handshakeLength == 4 && (_handshakeBytes & 0xFFFFFF) != 1)
            {
                throw new TlsAlertException(TlsAlertException.DecodeError, $"a KeyUpdate of {_handshakeBytes & 0xFFFFFF} bytes");
            }

            if (_handshakeLength == 5)
            {
                byte request = content[i];
                if (request > 1)
                {
                    throw new TlsAlertException(TlsAlertException.IllegalParameter, $"a KeyUpdate with request_update {request}");
                }

                if (i != content.Length - 1)
                {
                    throw new TlsAlertException(TlsAlertException.UnexpectedMessage, "a record going on after a KeyUpdate");
                }

                _handshakeBytes = 0;
                _handshakeLength = 0;
                _protection!.UpdateReadKey();
                _keyUpdateOwed |= request == 1;
            }
        }
    }

    /// <summary>Encrypt's work for a protected connection (under the lock): records of at most 2^14 bytes each.</summary>
    private byte[] EncryptProtected(ReadOnlySpan<byte> plaintext, out int length)
    {
        ThrowIfFailed();
        if (_closeNotifySent)
        {
            throw new IOException("TLS write after close_notify"); // the peer reads nothing after it
        }

        RecordProtection protection = _protection!;
        bool update = _keyUpdateOwed || protection.WriteKeyWornOut;
        int records = (plaintext.Length + RecordProtection.MaxPlaintext - 1) / RecordProtection.MaxPlaintext;
        byte[] output = RecordBuffers.Pool.Rent(plaintext.Length + (records * RecordProtection.Overhead) + (update ? KeyUpdateRecord : 0));
        try
        {
            int position = 0;
            if (update)
            {
                // Our KeyUpdate, update_not_requested, under the keys it retires (§4.6.3).
                position += protection.Seal(RecordProtection.Handshake, [KeyUpdate, 0, 0, 1, 0], output);
                protection.UpdateWriteKey();
                _keyUpdateOwed = false;
            }

            for (int offset = 0; offset < plaintext.Length; offset += RecordProtection.MaxPlaintext)
            {
                ReadOnlySpan<byte> chunk = plaintext.Slice(offset, Math.Min(RecordProtection.MaxPlaintext, plaintext.Length - offset));
                position += protection.Seal(RecordProtection.ApplicationData, chunk, output.AsSpan(position));
            }

            length = position;
            _writing = true; // until WriteDone
            return output;
        }
        catch
        {
            RecordBuffers.Pool.Return(output);
            throw;
        }
    }

    /// <summary>One alert of ours, sealed (under the lock).</summary>
    private byte[] SealAlert(byte level, byte description, out int length)
    {
        byte[] output = ArrayPool<byte>.Shared.Rent(2 + RecordProtection.Overhead);
        try
        {
            length = _protection!.Seal(RecordProtection.Alert, [level, description], output);
            return output;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(output);
            throw;
        }
    }
}

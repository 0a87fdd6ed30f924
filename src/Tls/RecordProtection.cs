using System.Buffers.Binary;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Appliance.Tls;

/// <summary>
/// The record protection of a TLS 1.3 server connection after its handshake (RFC 8446 §5.2–5.3, keys by §7.1–7.3):
/// each record sealed and opened with OpenSSL's AEAD (EVP) directly, with keys derived from the traffic secrets the
/// handshake logged (<see cref="TrafficSecrets"/>), a 64-bit sequence per direction and the per-record nonce made
/// from it. In place of SSL_read and SSL_write: the same cipher calls without the record layer of OpenSSL 3.0
/// around them (its parameter lookups cost about 800 ns per request on this box, perf/RESULTS.md), and without the
/// SSL object, which the connection can then free (about 8 KB). The framing and the post-handshake messages are
/// <see cref="TlsRecordStream"/>'s.
/// </summary>
internal sealed unsafe class RecordProtection : IDisposable
{
    public const int HeaderLength = 5;
    public const int TagLength = 16;
    public const int MaxPlaintext = 16384;                  // 2^14 (RFC 8446 §5.1)
    public const int MaxCiphertext = MaxPlaintext + 256;    // TLSCiphertext.length (§5.2)
    public const int MaxInnerPlaintext = MaxPlaintext + 1;  // content and type, padding aside (§5.4)
    public const int Overhead = HeaderLength + 1 + TagLength; // per record sealed here: header, content type, tag
    public const byte ApplicationData = 23;
    public const byte Alert = 21;
    public const byte Handshake = 22;
    public const byte ChangeCipherSpec = 20;

    /// <summary>Records sealed under one key before this side updates it: AES-GCM's margin is 2^24.5 full records (§5.5).</summary>
    internal static ulong WriteKeyLimit = 1UL << 24;

    private const int NonceLength = 12;
    private const int EvpCtrlAeadGetTag = 0x10;
    private const int EvpCtrlAeadSetTag = 0x11;
    private const int MergeLimit = 4096; // content up to this long is copied next to its type byte: one cipher call, not two

    // OSSL_CIPHER_PARAM_AEAD_TAG and OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED (openssl/core_names.h), NUL-terminated.
    private static ReadOnlySpan<byte> TagParam => "tag\0"u8;
    private static ReadOnlySpan<byte> IvParam => "tlsivfixed\0"u8;

    private readonly nint _cipher;
    private readonly int _keyLength;
    private readonly nuint _ivParamSize; // the nonce as "tlsivfixed" takes it: AES-GCM's whole IV is "size -1", ChaCha20's 12 bytes; 0: no params (OpenSSL 1.1)
    private readonly nint _digest;   // the suite's hash, for HKDF
    private SecretBlock* _secrets;   // Client: this server's read secret, Server: its write secret (both updated in place); the IVs
    private nint _read;              // EVP_CIPHER_CTX, keyed for the client's records
    private nint _write;             // EVP_CIPHER_CTX, keyed for ours
    private ulong _readSequence;
    private ulong _writeSequence;

    private RecordProtection(SecretBlock* secrets, nint cipher, int keyLength, nint digest, bool useParams)
    {
        _secrets = secrets;
        _cipher = cipher;
        _keyLength = keyLength;
        _digest = digest;
        _writeSequence = (ulong)secrets->WrittenAfter;
        _ivParamSize = !useParams ? 0 : cipher == OpenSslLibrary.ChaCha20Poly1305 ? NonceLength : nuint.MaxValue;
    }

    /// <summary>
    /// The protection of a connection whose handshake left <paramref name="secrets"/> (which it owns from here, even
    /// when it returns null: for a suite it does not carry, or a cipher OpenSSL would not key).
    /// </summary>
    public static RecordProtection? Create(SecretBlock* secrets, TlsCipherSuite suite) => Create(secrets, suite, ParamsAgree(suite));

    // Per suite (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305): 0 not checked yet, 1 the set_params way agrees, 2 it does not.
    private static readonly int[] s_paramsAgree = new int[3];

    /// <summary>
    /// Whether records may start with EVP_CIPHER_CTX_set_params (<see cref="SetNonce"/>) for this suite. That a
    /// "tlsivfixed" of the whole nonce after a finished record starts a new message is how OpenSSL's own provider
    /// behaves, not a documented promise: another provider may carry on from the previous record. So once per suite
    /// and process, three records are sealed both ways and compared, and three sealed the EVP_CipherInit_ex way are
    /// opened the set_params way; any difference keeps every connection of that suite on EVP_CipherInit_ex.
    /// </summary>
    private static bool ParamsAgree(TlsCipherSuite suite)
    {
        int index = suite switch
        {
            TlsCipherSuite.TLS_AES_128_GCM_SHA256 => 0,
            TlsCipherSuite.TLS_AES_256_GCM_SHA384 => 1,
            TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256 => 2,
            _ => -1,
        };
        if (index < 0 || OpenSslLibrary.EvpCipherCtxSetParams == null || OpenSslLibrary.EvpCipherCtxGetParams == null)
        {
            return false;
        }

        int known = Volatile.Read(ref s_paramsAgree[index]);
        if (known == 0)
        {
            known = SelfCheck(suite) ? 1 : 2;
            Volatile.Write(ref s_paramsAgree[index], known);
        }

        return known == 1;
    }

    private static bool SelfCheck(TlsCipherSuite suite)
    {
        int hashLength = SecretLength(suite);
        Span<byte> a = stackalloc byte[hashLength], b = stackalloc byte[hashLength];
        a.Fill(0x5a);
        b.Fill(0xa5);
        byte[] content = new byte[MergeLimit + 1]; // sealed both ways: in place with its type, and in two updates
        content.AsSpan().Fill(0x42);
        byte[] fastRecord = new byte[content.Length + Overhead], slowRecord = new byte[content.Length + Overhead];
        try
        {
            using RecordProtection fast = ForSecrets(a, b, suite, useParams: true);
            using RecordProtection slow = ForSecrets(a, b, suite, useParams: false);
            using RecordProtection peer = ForSecrets(b, a, suite, useParams: false);
            for (int i = 0; i < 3; i++)
            {
                ReadOnlySpan<byte> piece = content.AsSpan(0, i == 1 ? content.Length : 100);
                int n = fast.Seal(ApplicationData, piece, fastRecord);
                if (!fastRecord.AsSpan(0, n).SequenceEqual(slowRecord.AsSpan(0, slow.Seal(ApplicationData, piece, slowRecord))))
                {
                    return false;
                }

                n = peer.Seal(ApplicationData, piece, slowRecord);
                if (!piece.SequenceEqual(slowRecord.AsSpan(HeaderLength, fast.Open(slowRecord.AsSpan(0, n), out _))))
                {
                    return false;
                }
            }

            return true;
        }
        catch (Exception e) when (e is IOException or ArgumentException)
        {
            return false;
        }
    }

    private static RecordProtection? Create(SecretBlock* secrets, TlsCipherSuite suite, bool useParams)
    {
        (nint cipher, int keyLength, nint digest, int hashLength) = suite switch
        {
            TlsCipherSuite.TLS_AES_128_GCM_SHA256 => (OpenSslLibrary.Aes128Gcm, 16, OpenSslLibrary.Sha256, 32),
            TlsCipherSuite.TLS_AES_256_GCM_SHA384 => (OpenSslLibrary.Aes256Gcm, 32, OpenSslLibrary.Sha384, 48),
            TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256 => (OpenSslLibrary.ChaCha20Poly1305, 32, OpenSslLibrary.Sha256, 32),
            _ => (0, 0, 0, 0),
        };
        if (cipher == 0 || digest == 0 || secrets->ClientLength != hashLength)
        {
            TrafficSecrets.Free(secrets);
            return null;
        }

        var protection = new RecordProtection(secrets, cipher, keyLength, digest, useParams);
        nint hmac = OpenSslLibrary.HmacCtxNew();
        bool keyed = hmac != 0 && protection.Key(hmac, reading: true, fresh: true) && protection.Key(hmac, reading: false, fresh: true);
        OpenSslLibrary.HmacCtxFree(hmac);
        if (!keyed)
        {
            protection.Dispose();
            return null;
        }

        return protection;
    }

    /// <summary>The length of a suite's traffic secrets (its hash's); 0 for a suite not carried here.</summary>
    public static int SecretLength(TlsCipherSuite suite) => suite switch
    {
        TlsCipherSuite.TLS_AES_128_GCM_SHA256 or TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256 => 32,
        TlsCipherSuite.TLS_AES_256_GCM_SHA384 => 48,
        _ => 0,
    };

    /// <summary>Protection from secrets of the caller's (tests: both ends of a connection without a handshake).</summary>
    internal static RecordProtection ForSecrets(ReadOnlySpan<byte> readSecret, ReadOnlySpan<byte> writeSecret, TlsCipherSuite suite, bool? useParams = null)
    {
        var block = (SecretBlock*)NativeMemory.AllocZeroed((nuint)sizeof(SecretBlock));
        readSecret.CopyTo(new Span<byte>(block->Client, SecretBlock.MaxSecret));
        writeSecret.CopyTo(new Span<byte>(block->Server, SecretBlock.MaxSecret));
        block->ClientLength = (byte)readSecret.Length;
        block->ServerLength = (byte)writeSecret.Length;
        return Create(block, suite, useParams ?? ParamsAgree(suite)) ?? throw new ArgumentException("secrets that do not fit the suite", nameof(suite));
    }

    /// <summary>Whether this connection's records start with EVP_CIPHER_CTX_set_params (tests).</summary>
    internal bool UsesParams => _ivParamSize != 0;

    /// <summary>Whether the set_params way passed its check for <paramref name="suite"/> in this process (tests, the start log).</summary>
    internal static bool ParamsUsable(TlsCipherSuite suite) => ParamsAgree(suite);

    /// <summary>How records start, for the start log (runs the checks of <see cref="ParamsAgree"/> now).</summary>
    internal static string DescribeNonces()
    {
        TlsCipherSuite[] suites = [TlsCipherSuite.TLS_AES_128_GCM_SHA256, TlsCipherSuite.TLS_AES_256_GCM_SHA384, TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256];
        string[] slow = [.. suites.Where(s => !ParamsAgree(s)).Select(s => s.ToString())];
        return slow.Length == 0 ? "each record started with EVP_CIPHER_CTX_set_params"
            : "EVP_CipherInit_ex per record for " + string.Join(", ", slow) + (OpenSslLibrary.EvpCipherCtxSetParams == null ? " (OpenSSL 1.1)" : " (the cipher's provider failed the set_params check)");
    }

    /// <summary>Whether the next record sealed should go under a new key first (a KeyUpdate of our own).</summary>
    public bool WriteKeyWornOut => _writeSequence >= WriteKeyLimit;

    /// <summary>
    /// Seals one record of <paramref name="contentType"/> (at most 2^14 bytes of <paramref name="content"/>) into
    /// <paramref name="destination"/>, which has room for <see cref="Overhead"/> more bytes: the record's length.
    /// </summary>
    public int Seal(byte contentType, ReadOnlySpan<byte> content, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_secrets == null, this);
        int inner = content.Length + 1;
        int length = inner + TagLength;
        destination[0] = ApplicationData; // the outer type of every protected record (§5.2)
        destination[1] = 3;
        destination[2] = 3;
        destination[3] = (byte)(length >> 8);
        destination[4] = (byte)length;
        byte* nonce = stackalloc byte[NonceLength];
        Nonce(_secrets->WriteIv, _writeSequence, nonce);
        bool merged = content.Length <= MergeLimit;
        if (merged)
        {
            content.CopyTo(destination[HeaderLength..]); // sealed in place with its type byte
            destination[HeaderLength + content.Length] = contentType;
        }

        int ok, n;
        fixed (byte* d = destination)
        fixed (byte* c = content)
        {
            ok = SetNonce(_write, nonce, tag: null, encrypt: true);
            ok &= OpenSslLibrary.EvpCipherUpdate(_write, null, &n, d, HeaderLength);
            if (merged)
            {
                ok &= OpenSslLibrary.EvpCipherUpdate(_write, d + HeaderLength, &n, d + HeaderLength, inner);
            }
            else
            {
                ok &= OpenSslLibrary.EvpCipherUpdate(_write, d + HeaderLength, &n, c, content.Length);
                ok &= OpenSslLibrary.EvpCipherUpdate(_write, d + HeaderLength + content.Length, &n, &contentType, 1);
            }

            ok &= OpenSslLibrary.EvpCipherFinalEx(_write, d + HeaderLength + inner, &n);
            ok &= GetTag(d + HeaderLength + inner);
        }

        if (ok != 1)
        {
            OpenSslLibrary.ErrClearError();
            throw new IOException("TLS write failed: the cipher refused the record");
        }

        _writeSequence++;
        return HeaderLength + length;
    }

    /// <summary>
    /// Starts a record under <paramref name="nonce"/> (and, opening, with the <paramref name="tag"/> to check at the
    /// end). With OpenSSL 3 one EVP_CIPHER_CTX_set_params call does it: EVP_CipherInit_ex with only an IV asks the
    /// provider for the IV length through a parameter lookup on every call (about 630 instructions of its 820 here),
    /// and setting the tag through EVP_CIPHER_CTX_ctrl is a second lookup. "tlsivfixed" of the whole nonce is how
    /// OpenSSL's TLS 1.2 code restores a full IV; both AEADs then start the next message under it.
    /// </summary>
    private int SetNonce(nint context, byte* nonce, byte* tag, bool encrypt)
    {
        if (_ivParamSize == 0)
        {
            int ok = OpenSslLibrary.EvpCipherInitEx(context, 0, 0, null, nonce, encrypt ? 1 : 0);
            return tag == null ? ok : ok & OpenSslLibrary.EvpCipherCtxCtrl(context, EvpCtrlAeadSetTag, TagLength, tag);
        }

        OsslParam* p = stackalloc OsslParam[3];
        fixed (byte* ivKey = IvParam)
        fixed (byte* tagKey = TagParam)
        {
            p[0] = new OsslParam(ivKey, nonce, _ivParamSize);
            p[1] = tag == null ? default : new OsslParam(tagKey, tag, TagLength);
            p[2] = default;
            return OpenSslLibrary.EvpCipherCtxSetParams(context, p) == 1 ? 1 : 0;
        }
    }

    /// <summary>The tag of the record just sealed, into <paramref name="tag"/>.</summary>
    private int GetTag(byte* tag)
    {
        if (_ivParamSize == 0)
        {
            return OpenSslLibrary.EvpCipherCtxCtrl(_write, EvpCtrlAeadGetTag, TagLength, tag);
        }

        OsslParam* p = stackalloc OsslParam[2];
        fixed (byte* tagKey = TagParam)
        {
            p[0] = new OsslParam(tagKey, tag, TagLength);
            p[1] = default;
            return OpenSslLibrary.EvpCipherCtxGetParams(_write, p) == 1 ? 1 : 0;
        }
    }

    /// <summary>
    /// Opens one whole record (header and body) in place: its content type and the length of its content, which
    /// now starts right after the header. Throws <see cref="TlsAlertException"/> for a record to refuse.
    /// </summary>
    public int Open(Span<byte> record, out byte contentType)
    {
        ObjectDisposedException.ThrowIf(_secrets == null, this);
        int length = record.Length - HeaderLength;
        if (length < TagLength)
        {
            throw new TlsAlertException(TlsAlertException.BadRecordMac, "a record shorter than its tag");
        }

        byte* nonce = stackalloc byte[NonceLength];
        Nonce(_secrets->ReadIv, _readSequence, nonce);

        int body = length - TagLength;
        if (body > MaxInnerPlaintext)
        {
            throw new TlsAlertException(TlsAlertException.RecordOverflow, "a record whose plaintext is over 2^14 + 1 bytes");
        }

        int ok, n;
        fixed (byte* r = record)
        {
            ok = SetNonce(_read, nonce, tag: r + HeaderLength + body, encrypt: false);
            ok &= OpenSslLibrary.EvpCipherUpdate(_read, null, &n, r, HeaderLength);
            if (body > 0)
            {
                ok &= OpenSslLibrary.EvpCipherUpdate(_read, r + HeaderLength, &n, r + HeaderLength, body);
            }

            if (ok == 1)
            {
                ok = OpenSslLibrary.EvpCipherFinalEx(_read, r + HeaderLength + body, &n) > 0 ? 1 : 0;
            }
        }

        if (ok != 1)
        {
            OpenSslLibrary.ErrClearError();
            throw new TlsAlertException(TlsAlertException.BadRecordMac, "a record failed authentication");
        }

        _readSequence++;
        // TLSInnerPlaintext: content, its type, then zeros (§5.4).
        Span<byte> inner = record.Slice(HeaderLength, body);
        int type = inner.LastIndexOfAnyExcept((byte)0);
        if (type < 0)
        {
            throw new TlsAlertException(TlsAlertException.UnexpectedMessage, "a record without a content type");
        }

        if (type > MaxPlaintext)
        {
            throw new TlsAlertException(TlsAlertException.RecordOverflow, "a record longer than 2^14 bytes");
        }

        contentType = inner[type];
        return type;
    }

    /// <summary>The next generation of the client's keys, after its KeyUpdate (§4.6.3, §7.2).</summary>
    public void UpdateReadKey()
    {
        if (!Key(reading: true))
        {
            throw new IOException("TLS read failed: the cipher refused the updated key");
        }
    }

    /// <summary>The next generation of our keys, once our KeyUpdate is sealed under the current ones.</summary>
    public void UpdateWriteKey()
    {
        if (!Key(reading: false))
        {
            throw new IOException("TLS write failed: the cipher refused the updated key");
        }
    }

    private bool Key(bool reading)
    {
        nint hmac = OpenSslLibrary.HmacCtxNew();
        try
        {
            return hmac != 0 && Key(hmac, reading, fresh: false);
        }
        finally
        {
            OpenSslLibrary.HmacCtxFree(hmac);
        }
    }

    /// <summary>
    /// Derives a direction's key and IV from its traffic secret (first advancing the secret unless
    /// <paramref name="fresh"/>) and keys its cipher context; the sequence starts again at 0 after an update.
    /// </summary>
    private bool Key(nint hmac, bool reading, bool fresh)
    {
        int hashLength = _secrets->ClientLength;
        Span<byte> secret = reading ? new Span<byte>(_secrets->Client, hashLength) : new Span<byte>(_secrets->Server, hashLength);
        Span<byte> key = stackalloc byte[32];
        key = key[.._keyLength];
        try
        {
            if (!fresh)
            {
                Span<byte> next = stackalloc byte[SecretBlock.MaxSecret];
                next = next[..hashLength];
                bool advanced = ExpandLabel(hmac, secret, "traffic upd"u8, next);
                next.CopyTo(secret);
                CryptographicOperations.ZeroMemory(next);
                if (!advanced)
                {
                    return false;
                }
            }

            if (!ExpandLabel(hmac, secret, "key"u8, key)
                || !ExpandLabel(hmac, default, "iv"u8, new Span<byte>(reading ? _secrets->ReadIv : _secrets->WriteIv, NonceLength)))
            {
                return false;
            }

            ref nint context = ref reading ? ref _read : ref _write;
            if (context == 0)
            {
                context = OpenSslLibrary.EvpCipherCtxNew();
                if (context == 0)
                {
                    return false;
                }
            }

            fixed (byte* k = key)
            {
                if (OpenSslLibrary.EvpCipherInitEx(context, fresh ? _cipher : 0, 0, k, null, reading ? 0 : 1) != 1)
                {
                    OpenSslLibrary.ErrClearError();
                    return false;
                }
            }

            if (reading)
            {
                _readSequence = 0;
            }
            else if (!fresh)
            {
                _writeSequence = 0;
            }

            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>
    /// HKDF-Expand-Label(Secret, Label, "", Length) (§7.1). No output here is longer than the hash, so HKDF-Expand
    /// (RFC 5869 §2.3) is its first block, HMAC(Secret, HkdfLabel || 0x01): one HMAC with the suite's digest fetched
    /// once, where .NET's HKDF fetches the KDF and the digest by name on every call (about 20,000 instructions each).
    /// An empty <paramref name="secret"/> reuses the previous call's key (HMAC_Init_ex without a key), which saves its
    /// two padded-key blocks.
    /// </summary>
    private bool ExpandLabel(nint hmac, ReadOnlySpan<byte> secret, ReadOnlySpan<byte> label, Span<byte> output)
    {
        Span<byte> info = stackalloc byte[2 + 1 + 6 + label.Length + 1 + 1];
        BinaryPrimitives.WriteUInt16BigEndian(info, (ushort)output.Length);
        info[2] = (byte)(6 + label.Length);
        "tls13 "u8.CopyTo(info[3..]);
        label.CopyTo(info[9..]);
        info[^2] = 0; // an empty context
        info[^1] = 1; // HKDF-Expand's block counter
        byte* block = stackalloc byte[64];
        uint length = 0;
        int ok;
        fixed (byte* s = secret)
        fixed (byte* i = info)
        {
            ok = secret.IsEmpty ? OpenSslLibrary.HmacInitEx(hmac, null, 0, 0, 0) : OpenSslLibrary.HmacInitEx(hmac, s, secret.Length, _digest, 0);
            ok &= OpenSslLibrary.HmacUpdate(hmac, i, (nuint)info.Length);
            ok &= OpenSslLibrary.HmacFinal(hmac, block, &length);
        }

        bool done = ok == 1 && length >= output.Length;
        if (done)
        {
            new ReadOnlySpan<byte>(block, output.Length).CopyTo(output);
        }
        else
        {
            OpenSslLibrary.ErrClearError();
        }

        new Span<byte>(block, 64).Clear();
        return done;
    }

    /// <summary>The per-record nonce: the IV with the 64-bit sequence number XORed into its last 8 bytes (§5.3).</summary>
    private static void Nonce(byte* iv, ulong sequence, byte* nonce)
    {
        Unsafe.WriteUnaligned(nonce, Unsafe.ReadUnaligned<uint>(iv));
        BinaryPrimitives.WriteUInt64BigEndian(new Span<byte>(nonce + 4, 8), BinaryPrimitives.ReadUInt64BigEndian(new ReadOnlySpan<byte>(iv + 4, 8)) ^ sequence);
    }

    /// <summary>A connection dropped undisposed: its keys are freed, cleansed, all the same.</summary>
    ~RecordProtection() => Release();

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    private void Release()
    {
        if (_read != 0)
        {
            OpenSslLibrary.EvpCipherCtxFree(_read); // frees the key schedule cleansed
            _read = 0;
        }

        if (_write != 0)
        {
            OpenSslLibrary.EvpCipherCtxFree(_write);
            _write = 0;
        }

        TrafficSecrets.Free(_secrets); // zeroed: the secrets and the IVs
        _secrets = null;
    }
}

/// <summary>A received record or message refused with a TLS alert (RFC 8446 §6.2): the alert's description, and why.</summary>
public sealed class TlsAlertException(byte alert, string reason) : IOException("TLS read failed: " + reason)
{
    public const byte UnexpectedMessage = 10;
    public const byte BadRecordMac = 20;
    public const byte RecordOverflow = 22;
    public const byte IllegalParameter = 47;
    public const byte DecodeError = 50;

    /// <summary>The alert description this side sends before it closes.</summary>
    public byte Alert { get; } = alert;
}

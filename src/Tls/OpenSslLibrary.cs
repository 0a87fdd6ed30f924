using System.Runtime.InteropServices;

namespace Appliance.Tls;

/// <summary>
/// The few OpenSSL functions the appliance calls itself, on the contexts SslStream made (.NET has no option for
/// them): the libssl and libcrypto this process already mapped for SslStream (read from /proc/self/maps, never a
/// second copy). Resolved once, at first use, which is after SslStream or the certificate loader started OpenSSL.
/// Where the mapped libraries cannot be told apart or lack a function, <see cref="Available"/> is false and the
/// callers leave OpenSSL's defaults in place.
/// </summary>
internal static unsafe class OpenSslLibrary
{
    public static readonly delegate* unmanaged<nint, int, nint, nint, nint> SslCtxCtrl;
    public static readonly delegate* unmanaged<nint, int, nint, int> SslCtxCallbackCtrl;
    public static readonly delegate* unmanaged<nint, ulong, ulong> SslCtxSetOptions;
    public static readonly delegate* unmanaged<nint, ulong, ulong> SslCtxClearOptions;
    public static readonly delegate* unmanaged<nint, nint> SslGetSslCtx;
    public static readonly delegate* unmanaged<nint, int> SslVersion;
    public static readonly delegate* unmanaged<nint, byte*, uint, int> SslCtxSetSessionIdContext;
    // SSL_CTX_set_num_tickets (OpenSSL 1.1.1 and later); null where the libssl lacks it (its default count then).
    public static readonly delegate* unmanaged<nint, nuint, int> SslCtxSetNumTickets;
    // SSL_CTX_set_generate_session_id; null where the libssl lacks it (OpenSSL's own IDs then).
    public static readonly delegate* unmanaged<nint, nint, int> SslCtxSetGenerateSessionId;
    public static readonly delegate* unmanaged<byte*, int, int> RandBytes;
    public static readonly delegate* unmanaged<nint, nint, nint, byte*, byte*, int> EvpEncryptInitEx;
    public static readonly delegate* unmanaged<nint, nint, nint, byte*, byte*, int> EvpDecryptInitEx;
    public static readonly delegate* unmanaged<nint, byte*, int, nint, nint, int> HmacInitEx;

    // The record layer after the handshake (TlsRecordStream): SSL_read, SSL_write, and the memory BIOs SslStream made.
    public static readonly delegate* unmanaged<nint, byte*, int, int> SslRead;
    public static readonly delegate* unmanaged<nint, byte*, int, int> SslWrite;
    public static readonly delegate* unmanaged<nint, int> SslHasPending;
    public static readonly delegate* unmanaged<nint, int> SslWant;
    public static readonly delegate* unmanaged<nint, int> SslGetShutdown;
    public static readonly delegate* unmanaged<nint, ulong, ulong> SslSetOptions;
    public static readonly delegate* unmanaged<nint, ulong, ulong> SslClearOptions;
    public static readonly delegate* unmanaged<nint, int> SslShutdown;
    public static readonly delegate* unmanaged<nint, int, void> SslSetQuietShutdown;
    public static readonly delegate* unmanaged<nint, byte*, int, int> BioRead;
    public static readonly delegate* unmanaged<nint, byte*, int, int> BioWrite;
    public static readonly delegate* unmanaged<nint, int, nint, nint, nint> BioCtrl;
    public static readonly delegate* unmanaged<nint> BufMemNew; // may be null: the record layer works without it

    // One BIO of our own in place of the two memory ones (TlsRecordStream's sink); all null where any is missing.
    public static readonly delegate* unmanaged<int> BioGetNewIndex;
    public static readonly delegate* unmanaged<int, byte*, nint> BioMethNew;
    public static readonly delegate* unmanaged<nint, nint, int> BioMethSetWrite;
    public static readonly delegate* unmanaged<nint, nint, int> BioMethSetCtrl;
    public static readonly delegate* unmanaged<nint, nint, int> BioMethSetCreate;
    public static readonly delegate* unmanaged<nint, nint> BioNew;
    public static readonly delegate* unmanaged<nint, int, void> BioSetInit;
    public static readonly delegate* unmanaged<nint, nint, int> BioMethSetRead;
    public static readonly nint NullBioCtrl; // the null BIO's ctrl: flush succeeds, nothing pending, all else 0
    public static readonly delegate* unmanaged<nint, int, void> BioSetFlags;
    public static readonly delegate* unmanaged<nint, int, void> BioClearFlags;
    public static readonly delegate* unmanaged<nint, nint, nint, void> SslSetBio;
    public static readonly delegate* unmanaged<nuint> ErrPeekError;
    public static readonly delegate* unmanaged<void> ErrClearError;
    public static readonly delegate* unmanaged<nuint, byte*, nuint, void> ErrErrorStringN;

    /// <summary>Whether the record-layer functions above resolved.</summary>
    public static readonly bool RecordsAvailable;

    // The records of a TLS 1.3 connection sealed and opened here (RecordProtection), with the traffic secrets the
    // handshake logs (TrafficSecrets); all null where any is missing.
    public static readonly delegate* unmanaged<nint, nint, void> SslCtxSetKeylogCallback;
    public static readonly delegate* unmanaged<nint, int, nint> SslGetExData;
    public static readonly delegate* unmanaged<nint, int, nint, int> SslSetExData;
    public static readonly delegate* unmanaged<nint, int> SslIsServer;
    public static readonly delegate* unmanaged<nint, int, nint, nint> SslCallbackCtrl;
    public static readonly delegate* unmanaged<int, long, nint, nint, nint, nint, int> CryptoGetExNewIndex;
    public static readonly delegate* unmanaged<nint> EvpCipherCtxNew;
    public static readonly delegate* unmanaged<nint, void> EvpCipherCtxFree;
    public static readonly delegate* unmanaged<nint, nint, nint, byte*, byte*, int, int> EvpCipherInitEx;
    public static readonly delegate* unmanaged<nint, byte*, int*, byte*, int, int> EvpCipherUpdate;
    public static readonly delegate* unmanaged<nint, byte*, int*, int> EvpCipherFinalEx;
    public static readonly delegate* unmanaged<nint, int, int, byte*, int> EvpCipherCtxCtrl;
    public static readonly delegate* unmanaged<nint, OsslParam*, int> EvpCipherCtxSetParams;      // OpenSSL 3; null in 1.1
    public static readonly delegate* unmanaged<nint, OsslParam*, int> EvpCipherCtxGetParams;      // OpenSSL 3; null in 1.1
    public static readonly delegate* unmanaged<nint*, nint*, nint*, void> CryptoGetMemFunctions; // may be null
    public static readonly nint CryptoMalloc;                                                    // may be 0
    public static readonly delegate* unmanaged<nint> HmacCtxNew;
    public static readonly delegate* unmanaged<nint, void> HmacCtxFree;
    public static readonly delegate* unmanaged<nint, byte*, nuint, int> HmacUpdate;
    public static readonly delegate* unmanaged<nint, byte*, uint*, int> HmacFinal;

    /// <summary>SHA-384, fetched once (the TLS_AES_256_GCM_SHA384 key schedule); SHA-256 is <see cref="Sha256"/>.</summary>
    public static readonly nint Sha384;

    /// <summary>The TLS 1.3 AEADs, fetched once (0 where absent): TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256.</summary>
    public static readonly nint Aes128Gcm;
    public static readonly nint Aes256Gcm;
    public static readonly nint ChaCha20Poly1305;

    /// <summary>Whether the functions above resolved.</summary>
    public static readonly bool ProtectionAvailable;

    /// <summary>
    /// AES-256-CBC and SHA-256 for the ticket callback, fetched from the default provider once (OpenSSL 3), so that
    /// initialising a cipher or an HMAC with them does not look the algorithm up again by name on every handshake,
    /// as OpenSSL 3 does for the legacy EVP_aes_256_cbc() and EVP_sha256() objects (about 20,000 instructions per
    /// resumed handshake); those legacy objects where the fetch functions are absent (OpenSSL 1.1).
    /// </summary>
    public static readonly nint Aes256Cbc;
    public static readonly nint Sha256;

    /// <summary>Whether everything above resolved (libssl for <see cref="SslCtxCtrl"/> alone: <see cref="SslAvailable"/>).</summary>
    public static readonly bool Available;

    public static readonly bool SslAvailable;

    static OpenSslLibrary()
    {
        if (Mapped("libssl.so") is not { } ssl || !NativeLibrary.TryLoad(ssl, out nint libssl)
            || !NativeLibrary.TryGetExport(libssl, "SSL_CTX_ctrl", out nint ctrl))
        {
            return;
        }

        SslCtxCtrl = (delegate* unmanaged<nint, int, nint, nint, nint>)ctrl;
        SslAvailable = true;
        if (Mapped("libcrypto.so") is not { } crypto || !NativeLibrary.TryLoad(crypto, out nint libcrypto)
            || !NativeLibrary.TryGetExport(libssl, "SSL_CTX_callback_ctrl", out nint callbackCtrl)
            || !NativeLibrary.TryGetExport(libssl, "SSL_CTX_set_options", out nint setOptions)
            || !NativeLibrary.TryGetExport(libssl, "SSL_CTX_clear_options", out nint clearOptions)
            || !NativeLibrary.TryGetExport(libssl, "SSL_get_SSL_CTX", out nint getCtx)
            || !NativeLibrary.TryGetExport(libssl, "SSL_version", out nint version)
            || !NativeLibrary.TryGetExport(libssl, "SSL_CTX_set_session_id_context", out nint setSidCtx)
            || !NativeLibrary.TryGetExport(libcrypto, "RAND_bytes", out nint rand)
            || !NativeLibrary.TryGetExport(libcrypto, "EVP_EncryptInit_ex", out nint encryptInit)
            || !NativeLibrary.TryGetExport(libcrypto, "EVP_DecryptInit_ex", out nint decryptInit)
            || !NativeLibrary.TryGetExport(libcrypto, "HMAC_Init_ex", out nint hmacInit)
            || !NativeLibrary.TryGetExport(libcrypto, "EVP_aes_256_cbc", out nint aes)
            || !NativeLibrary.TryGetExport(libcrypto, "EVP_sha256", out nint sha))
        {
            return;
        }

        SslCtxCallbackCtrl = (delegate* unmanaged<nint, int, nint, int>)callbackCtrl;
        SslCtxSetOptions = (delegate* unmanaged<nint, ulong, ulong>)setOptions;
        SslCtxClearOptions = (delegate* unmanaged<nint, ulong, ulong>)clearOptions;
        SslGetSslCtx = (delegate* unmanaged<nint, nint>)getCtx;
        SslVersion = (delegate* unmanaged<nint, int>)version;
        SslCtxSetSessionIdContext = (delegate* unmanaged<nint, byte*, uint, int>)setSidCtx;
        RandBytes = (delegate* unmanaged<byte*, int, int>)rand;
        EvpEncryptInitEx = (delegate* unmanaged<nint, nint, nint, byte*, byte*, int>)encryptInit;
        EvpDecryptInitEx = (delegate* unmanaged<nint, nint, nint, byte*, byte*, int>)decryptInit;
        HmacInitEx = (delegate* unmanaged<nint, byte*, int, nint, nint, int>)hmacInit;
        if (NativeLibrary.TryGetExport(libssl, "SSL_CTX_set_num_tickets", out nint numTickets))
        {
            SslCtxSetNumTickets = (delegate* unmanaged<nint, nuint, int>)numTickets;
        }

        if (NativeLibrary.TryGetExport(libssl, "SSL_CTX_set_generate_session_id", out nint generateSessionId))
        {
            SslCtxSetGenerateSessionId = (delegate* unmanaged<nint, nint, int>)generateSessionId;
        }

        if (NativeLibrary.TryGetExport(libssl, "SSL_read", out nint sslRead)
            && NativeLibrary.TryGetExport(libssl, "SSL_write", out nint sslWrite)
            && NativeLibrary.TryGetExport(libssl, "SSL_has_pending", out nint hasPending)
            && NativeLibrary.TryGetExport(libssl, "SSL_want", out nint want)
            && NativeLibrary.TryGetExport(libssl, "SSL_get_shutdown", out nint getShutdown)
            && NativeLibrary.TryGetExport(libssl, "SSL_set_options", out nint sslSetOptions)
            && NativeLibrary.TryGetExport(libssl, "SSL_clear_options", out nint sslClearOptions)
            && NativeLibrary.TryGetExport(libssl, "SSL_shutdown", out nint sslShutdown)
            && NativeLibrary.TryGetExport(libssl, "SSL_set_quiet_shutdown", out nint quietShutdown)
            && NativeLibrary.TryGetExport(libcrypto, "BIO_read", out nint bioRead)
            && NativeLibrary.TryGetExport(libcrypto, "BIO_write", out nint bioWrite)
            && NativeLibrary.TryGetExport(libcrypto, "BIO_ctrl", out nint bioCtrl)
            && NativeLibrary.TryGetExport(libcrypto, "ERR_peek_error", out nint peekError)
            && NativeLibrary.TryGetExport(libcrypto, "ERR_clear_error", out nint clearError)
            && NativeLibrary.TryGetExport(libcrypto, "ERR_error_string_n", out nint errorString))
        {
            SslRead = (delegate* unmanaged<nint, byte*, int, int>)sslRead;
            SslWrite = (delegate* unmanaged<nint, byte*, int, int>)sslWrite;
            SslHasPending = (delegate* unmanaged<nint, int>)hasPending;
            SslWant = (delegate* unmanaged<nint, int>)want;
            SslGetShutdown = (delegate* unmanaged<nint, int>)getShutdown;
            SslSetOptions = (delegate* unmanaged<nint, ulong, ulong>)sslSetOptions;
            SslClearOptions = (delegate* unmanaged<nint, ulong, ulong>)sslClearOptions;
            SslShutdown = (delegate* unmanaged<nint, int>)sslShutdown;
            SslSetQuietShutdown = (delegate* unmanaged<nint, int, void>)quietShutdown;
            BioRead = (delegate* unmanaged<nint, byte*, int, int>)bioRead;
            BioWrite = (delegate* unmanaged<nint, byte*, int, int>)bioWrite;
            BioCtrl = (delegate* unmanaged<nint, int, nint, nint, nint>)bioCtrl;
            ErrPeekError = (delegate* unmanaged<nuint>)peekError;
            ErrClearError = (delegate* unmanaged<void>)clearError;
            ErrErrorStringN = (delegate* unmanaged<nuint, byte*, nuint, void>)errorString;
            RecordsAvailable = true;
            if (NativeLibrary.TryGetExport(libcrypto, "BUF_MEM_new", out nint bufMemNew))
            {
                BufMemNew = (delegate* unmanaged<nint>)bufMemNew;
            }

            if (NativeLibrary.TryGetExport(libcrypto, "BIO_get_new_index", out nint newIndex)
                && NativeLibrary.TryGetExport(libcrypto, "BIO_meth_new", out nint methNew)
                && NativeLibrary.TryGetExport(libcrypto, "BIO_meth_set_write", out nint methWrite)
                && NativeLibrary.TryGetExport(libcrypto, "BIO_meth_set_ctrl", out nint methCtrl)
                && NativeLibrary.TryGetExport(libcrypto, "BIO_meth_set_create", out nint methCreate)
                && NativeLibrary.TryGetExport(libcrypto, "BIO_new", out nint bioNew)
                && NativeLibrary.TryGetExport(libcrypto, "BIO_set_init", out nint setInit)
                && NativeLibrary.TryGetExport(libcrypto, "BIO_meth_set_read", out nint methRead)
                && NativeLibrary.TryGetExport(libcrypto, "BIO_set_flags", out nint setFlags)
                && NativeLibrary.TryGetExport(libcrypto, "BIO_clear_flags", out nint clearFlags)
                && NativeLibrary.TryGetExport(libssl, "SSL_set_bio", out nint setBio)
                && NativeLibrary.TryGetExport(libcrypto, "BIO_s_null", out nint nullBio)
                && NativeLibrary.TryGetExport(libcrypto, "BIO_meth_get_ctrl", out nint getCtrl)
                && ((delegate* unmanaged<nint, nint>)getCtrl)(((delegate* unmanaged<nint>)nullBio)()) is var nullCtrl and not 0)
            {
                BioGetNewIndex = (delegate* unmanaged<int>)newIndex;
                BioMethNew = (delegate* unmanaged<int, byte*, nint>)methNew;
                BioMethSetWrite = (delegate* unmanaged<nint, nint, int>)methWrite;
                BioMethSetCtrl = (delegate* unmanaged<nint, nint, int>)methCtrl;
                BioMethSetCreate = (delegate* unmanaged<nint, nint, int>)methCreate;
                BioNew = (delegate* unmanaged<nint, nint>)bioNew;
                BioSetInit = (delegate* unmanaged<nint, int, void>)setInit;
                BioMethSetRead = (delegate* unmanaged<nint, nint, int>)methRead;
                BioSetFlags = (delegate* unmanaged<nint, int, void>)setFlags;
                BioClearFlags = (delegate* unmanaged<nint, int, void>)clearFlags;
                SslSetBio = (delegate* unmanaged<nint, nint, nint, void>)setBio;
                NullBioCtrl = nullCtrl;
            }
        }

        if (RecordsAvailable
            && NativeLibrary.TryGetExport(libssl, "SSL_CTX_set_keylog_callback", out nint setKeylog)
            && NativeLibrary.TryGetExport(libssl, "SSL_get_ex_data", out nint getExData)
            && NativeLibrary.TryGetExport(libssl, "SSL_set_ex_data", out nint setExData)
            && NativeLibrary.TryGetExport(libssl, "SSL_is_server", out nint isServer)
            && NativeLibrary.TryGetExport(libssl, "SSL_callback_ctrl", out nint sslCallbackCtrl)
            && NativeLibrary.TryGetExport(libcrypto, "CRYPTO_get_ex_new_index", out nint exNewIndex)
            && NativeLibrary.TryGetExport(libcrypto, "EVP_CIPHER_CTX_new", out nint ctxNew)
            && NativeLibrary.TryGetExport(libcrypto, "EVP_CIPHER_CTX_free", out nint ctxFree)
            && NativeLibrary.TryGetExport(libcrypto, "EVP_CipherInit_ex", out nint cipherInit)
            && NativeLibrary.TryGetExport(libcrypto, "EVP_CipherUpdate", out nint cipherUpdate)
            && NativeLibrary.TryGetExport(libcrypto, "EVP_CipherFinal_ex", out nint cipherFinal)
            && NativeLibrary.TryGetExport(libcrypto, "EVP_CIPHER_CTX_ctrl", out nint ctxCtrl)
            && NativeLibrary.TryGetExport(libcrypto, "HMAC_CTX_new", out nint hmacNew)
            && NativeLibrary.TryGetExport(libcrypto, "HMAC_CTX_free", out nint hmacFree)
            && NativeLibrary.TryGetExport(libcrypto, "HMAC_Update", out nint hmacUpdate)
            && NativeLibrary.TryGetExport(libcrypto, "HMAC_Final", out nint hmacFinal)
            && NativeLibrary.TryGetExport(libcrypto, "EVP_sha384", out nint sha384))
        {
            SslCtxSetKeylogCallback = (delegate* unmanaged<nint, nint, void>)setKeylog;
            SslGetExData = (delegate* unmanaged<nint, int, nint>)getExData;
            SslSetExData = (delegate* unmanaged<nint, int, nint, int>)setExData;
            SslIsServer = (delegate* unmanaged<nint, int>)isServer;
            SslCallbackCtrl = (delegate* unmanaged<nint, int, nint, nint>)sslCallbackCtrl;
            CryptoGetExNewIndex = (delegate* unmanaged<int, long, nint, nint, nint, nint, int>)exNewIndex;
            EvpCipherCtxNew = (delegate* unmanaged<nint>)ctxNew;
            EvpCipherCtxFree = (delegate* unmanaged<nint, void>)ctxFree;
            EvpCipherInitEx = (delegate* unmanaged<nint, nint, nint, byte*, byte*, int, int>)cipherInit;
            EvpCipherUpdate = (delegate* unmanaged<nint, byte*, int*, byte*, int, int>)cipherUpdate;
            EvpCipherFinalEx = (delegate* unmanaged<nint, byte*, int*, int>)cipherFinal;
            EvpCipherCtxCtrl = (delegate* unmanaged<nint, int, int, byte*, int>)ctxCtrl;
            HmacCtxNew = (delegate* unmanaged<nint>)hmacNew;
            HmacCtxFree = (delegate* unmanaged<nint, void>)hmacFree;
            HmacUpdate = (delegate* unmanaged<nint, byte*, nuint, int>)hmacUpdate;
            HmacFinal = (delegate* unmanaged<nint, byte*, uint*, int>)hmacFinal;
            if (NativeLibrary.TryGetExport(libcrypto, "EVP_CIPHER_CTX_set_params", out nint setParams)
                && NativeLibrary.TryGetExport(libcrypto, "EVP_CIPHER_CTX_get_params", out nint getParams))
            {
                EvpCipherCtxSetParams = (delegate* unmanaged<nint, OsslParam*, int>)setParams;
                EvpCipherCtxGetParams = (delegate* unmanaged<nint, OsslParam*, int>)getParams;
            }

            if (NativeLibrary.TryGetExport(libcrypto, "CRYPTO_get_mem_functions", out nint memFunctions)
                && NativeLibrary.TryGetExport(libcrypto, "CRYPTO_malloc", out nint cryptoMalloc))
            {
                CryptoGetMemFunctions = (delegate* unmanaged<nint*, nint*, nint*, void>)memFunctions;
                CryptoMalloc = cryptoMalloc;
            }

            Sha384 = Fetch(libcrypto, "EVP_MD_fetch", "SHA384") is var md384 and not 0 ? md384 : ((delegate* unmanaged<nint>)sha384)();
            Aes128Gcm = Cipher(libcrypto, "AES-128-GCM", "EVP_aes_128_gcm");
            Aes256Gcm = Cipher(libcrypto, "AES-256-GCM", "EVP_aes_256_gcm");
            ChaCha20Poly1305 = Cipher(libcrypto, "ChaCha20-Poly1305", "EVP_chacha20_poly1305");
            ProtectionAvailable = Aes128Gcm != 0 && Aes256Gcm != 0 && Sha384 != 0;
        }

        Aes256Cbc = Fetch(libcrypto, "EVP_CIPHER_fetch", "AES-256-CBC") is var cipher and not 0 ? cipher : ((delegate* unmanaged<nint>)aes)();
        Sha256 = Fetch(libcrypto, "EVP_MD_fetch", "SHA256") is var md and not 0 ? md : ((delegate* unmanaged<nint>)sha)();
        Available = Aes256Cbc != 0 && Sha256 != 0;
    }

    /// <summary>A cipher fetched by name (OpenSSL 3), or its legacy object (OpenSSL 1.1); 0 where neither exists.</summary>
    private static nint Cipher(nint libcrypto, string name, string legacy) =>
        Fetch(libcrypto, "EVP_CIPHER_fetch", name) is var fetched and not 0 ? fetched
            : NativeLibrary.TryGetExport(libcrypto, legacy, out nint get) ? ((delegate* unmanaged<nint>)get)() : 0;

    /// <summary>EVP_CIPHER_fetch or EVP_MD_fetch (library context and properties default) of one algorithm, kept for the process's life; 0 where absent.</summary>
    private static nint Fetch(nint libcrypto, string function, string algorithm)
    {
        if (!NativeLibrary.TryGetExport(libcrypto, function, out nint fetch))
        {
            return 0;
        }

        nint name = Marshal.StringToHGlobalAnsi(algorithm);
        try
        {
            nint fetched = ((delegate* unmanaged<nint, nint, nint, nint>)fetch)(0, name, 0);
            if (fetched == 0 && NativeLibrary.TryGetExport(libcrypto, "ERR_clear_error", out nint clear))
            {
                ((delegate* unmanaged<void>)clear)(); // leave no error behind for this thread's next SSL call to find
            }

            return fetched;
        }
        finally
        {
            Marshal.FreeHGlobal(name);
        }
    }

    /// <summary>Runs <paramref name="call"/> on the context's pointer while holding a reference on the handle.</summary>
    public static T With<T>(SafeHandle context, Func<nint, T> call)
    {
        bool added = false;
        try
        {
            context.DangerousAddRef(ref added);
            return call(context.DangerousGetHandle());
        }
        finally
        {
            if (added)
            {
                context.DangerousRelease();
            }
        }
    }

    /// <summary>The one library of that name this process mapped; two different ones would make the choice a guess.</summary>
    private static string? Mapped(string prefix)
    {
        try
        {
            string[] mapped = [.. File.ReadLines("/proc/self/maps")
                .Select(l => l.IndexOf('/') is int i and >= 0 ? l[i..] : "")
                .Where(p => Path.GetFileName(p).StartsWith(prefix, StringComparison.Ordinal))
                .Distinct(StringComparer.Ordinal)];
            return mapped.Length == 1 ? mapped[0] : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}

/// <summary>
/// OpenSSL 3's OSSL_PARAM (openssl/core.h): a named value handed to or read from a provider. An array of them ends
/// with one whose <see cref="Key"/> is null.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct OsslParam
{
    public const uint OctetString = 5; // OSSL_PARAM_OCTET_STRING

    public byte* Key;        // a NUL-terminated name
    public uint DataType;
    public void* Data;
    public nuint DataSize;
    public nuint ReturnSize;

    public OsslParam(byte* key, void* data, nuint size)
    {
        Key = key;
        DataType = OctetString;
        Data = data;
        DataSize = size;
        ReturnSize = nuint.MaxValue; // OSSL_PARAM_UNMODIFIED
    }
}

using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Appliance.Tls;

/// <summary>
/// How TLS sessions are resumed (config <c>server.sessionTickets</c>). <see cref="Enabled"/> (the default): sealed
/// tickets. <see cref="Secrets"/> empty: random keys made by the process, a new one every <see cref="Rotate"/>.
/// Otherwise the operator's keys, the first of which seals new tickets while all of them open presented ones (nginx's
/// <c>ssl_session_ticket_key</c> files: 80 or 48 random bytes each); appliances sharing them resume each other's
/// sessions, across restarts too. Not <see cref="Enabled"/>: from the server's session cache (nginx's
/// <c>ssl_session_tickets off</c>): a TLS 1.3 ticket names a cached session, a TLS 1.2 client resumes by session ID.
/// Nothing is sealed then, so a resumption costs some 6 % fewer instructions and a full handshake some 8 % (two tickets)
/// (perf/RESULTS.md, 2026-12-02), for about 1 KiB of memory per cached session; but the cache holds
/// <see cref="CacheSize"/> sessions, and every handshake, resumed ones included, adds one (OpenSSL keeps a used TLS
/// 1.3 ticket's session until it expires or is pushed out), so under load a session stays only as long as it takes
/// that many handshakes, where a sealed ticket opens for hours.
/// </summary>
/// <param name="RenewOnResumption">
/// With sealed tickets, false: a resumed TLS 1.3 handshake whose ticket the newest key sealed gets no fresh ticket
/// (h2o's way). It saves sealing one (some 8 % of a resumed handshake's work) for clients that present a ticket more
/// than once (OpenSSL's own, Go's); a client that uses each ticket once (RFC 8446 §C.4: BoringSSL, so Chrome, and wrk)
/// then makes a full handshake whenever its tickets run out. Default true, as nginx.
/// </param>
/// <param name="CacheSize">
/// Sessions the server's cache keeps per certificate (OpenSSL's <c>SSL_CTX_sess_set_cache_size</c>); when full, the
/// least recently used one goes. With sealed tickets it holds TLS 1.2 sessions of clients without ticket support;
/// otherwise every session (one per TLS 1.3 ticket issued). Default 20,480 (OpenSSL's).
/// </param>
/// <param name="PerHandshake">
/// TLS 1.3 tickets sent after a full handshake (OpenSSL's <c>SSL_CTX_set_num_tickets</c>; a resumption gets one at
/// most, see <see cref="RenewOnResumption"/>). Default 1, as Go's and Java's TLS servers: a client that connects one
/// connection after another always holds a ticket, since each resumption brings a fresh one, and each ticket costs
/// the server a session sealed (some 5 % of a full handshake's work). OpenSSL's own default, so nginx's, is 2: one
/// client can then resume two connections opened at once. 0 issues none (no TLS 1.3 resumption).
/// </param>
public sealed record SessionTicketSettings(bool Enabled, IReadOnlyList<byte[]> Secrets, TimeSpan Rotate, bool RenewOnResumption = true,
    int CacheSize = SessionTicketSettings.DefaultCacheSize, int PerHandshake = SessionTicketSettings.DefaultPerHandshake)
{
    /// <summary>How long OpenSSL accepts a session (its default timeout, which .NET keeps): a generated key still opens tickets this long after it stopped sealing.</summary>
    public static readonly TimeSpan TicketLifetime = TimeSpan.FromHours(2);

    /// <summary>OpenSSL's own default (SSL_SESSION_CACHE_MAX_SIZE_DEFAULT).</summary>
    public const int DefaultCacheSize = 20_480;

    /// <summary>The most sessions one certificate's cache may keep (about 1 GiB of them).</summary>
    public const int MaxCacheSize = 1_000_000;

    public const int DefaultPerHandshake = 1;

    /// <summary>The most TLS 1.3 tickets sent after one handshake.</summary>
    public const int MaxPerHandshake = 16;

    /// <summary>Sealed tickets with random keys, a new one every hour.</summary>
    public static readonly SessionTicketSettings Default = new(true, [], TimeSpan.FromHours(1));

    public static bool IsKeyLength(long length) => length is 80 or 48;

    public bool Equals(SessionTicketSettings? other) =>
        other is not null && Enabled == other.Enabled && Rotate == other.Rotate && RenewOnResumption == other.RenewOnResumption
        && CacheSize == other.CacheSize && PerHandshake == other.PerHandshake && SameSecrets(Secrets, other.Secrets);

    /// <summary>The same keys, byte for byte, in the same order.</summary>
    internal static bool SameSecrets(IReadOnlyList<byte[]> a, IReadOnlyList<byte[]> b) =>
        a.Count == b.Count && a.Zip(b).All(p => p.First.AsSpan().SequenceEqual(p.Second));

    public override int GetHashCode() => HashCode.Combine(Enabled, Rotate, RenewOnResumption, CacheSize, PerHandshake, Secrets.Count);

    public override string ToString() =>
        (!Enabled ? string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"off (resumption from the server's session cache only, up to {CacheSize:N0} sessions per certificate)")
        : (Secrets.Count == 0 ? $"random keys, a new one every {Duration(Rotate)}, each opening tickets {Duration(TicketLifetime)} after it stops sealing"
            : $"{Secrets.Count} key file(s); the first seals new tickets")
          + (RenewOnResumption ? "" : "; no fresh ticket on a TLS 1.3 resumption"))
        + (PerHandshake == DefaultPerHandshake ? "" : $"; {PerHandshake} TLS 1.3 ticket(s) per full handshake");

    private static string Duration(TimeSpan t) => t.TotalHours >= 1 && t.Minutes == 0 ? $"{t.TotalHours:0}h" : $"{t.TotalMinutes:0}m";
}

/// <summary>
/// Session tickets as they stand: whether the appliance seals them (<paramref name="Available"/>), whether they are
/// issued, whether the keys come from files, how many keys open tickets, the rotation interval of generated keys,
/// when the newest key started sealing, how many certificate contexts use them, whether a TLS 1.3 resumption gets
/// a fresh ticket, and the server's session cache: its size per certificate, the sessions it holds now (every
/// certificate's), and how many it let go for want of room; and how many TLS 1.3 tickets a full handshake gets.
/// </summary>
public sealed record SessionTicketStatus(bool Available, bool Enabled, bool FromFiles, int Keys, TimeSpan? Rotate, DateTimeOffset NewestKeySince, int Contexts,
    bool RenewOnResumption = true, int CacheSize = SessionTicketSettings.DefaultCacheSize, long CachedSessions = 0, long CacheFullEvictions = 0,
    int PerHandshake = SessionTicketSettings.DefaultPerHandshake);

/// <summary>One ticket key as OpenSSL's ticket callback uses it: a 16-byte name sent in the ticket, an HMAC-SHA256 key, an AES-256-CBC key.</summary>
internal sealed class TicketKey
{
    public readonly byte[] Name = new byte[16];
    public readonly byte[] Hmac = new byte[32];
    public readonly byte[] Aes = new byte[32];

    /// <summary>
    /// The key a context uses, derived from a secret and the context's certificate (HKDF-SHA256, RFC 5869): every
    /// certificate gets its own keys, so a ticket opens only where it was issued, as with OpenSSL's own per-context
    /// keys; and two appliances with the same secret and certificate derive the same keys.
    /// </summary>
    public static TicketKey Derive(byte[] secret, byte[] certificateHash)
    {
        Span<byte> okm = stackalloc byte[80];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, secret, okm, certificateHash, "appliance TLS session ticket key"u8);
        var key = new TicketKey();
        okm[..16].CopyTo(key.Name);
        okm[16..48].CopyTo(key.Hmac);
        okm[48..].CopyTo(key.Aes);
        CryptographicOperations.ZeroMemory(okm);
        return key;
    }
}

/// <summary>The keys of one context, newest first: [0] seals, all open.</summary>
internal sealed class TicketKeys(TicketKey[] keys)
{
    public TicketKey[] Keys { get; } = keys;

    public static TicketKeys Derive(IReadOnlyList<byte[]> secrets, byte[] certificateHash) =>
        new([.. secrets.Select(s => TicketKey.Derive(s, certificateHash))]);

    /// <summary>The index of the key with this name, or -1.</summary>
    public int Find(ReadOnlySpan<byte> name)
    {
        for (int i = 0; i < Keys.Length; i++)
        {
            if (name.SequenceEqual(Keys[i].Name))
            {
                return i;
            }
        }

        return -1;
    }
}

/// <summary>
/// Session resumption for every pinned server context (<see cref="SessionResumption"/>): sealed tickets through
/// OpenSSL's ticket key callback with the appliance's keys, which .NET leaves unset, or, turned off, the context's
/// session cache alone (SSL_OP_NO_TICKET), which is sized by the settings either way. Two things
/// follow that OpenSSL's own keys (random per context, never rotated, DESIGN.md) do not give:
/// <list type="bullet">
/// <item>Keys rotate (a new one every hour by default; the old ones still open tickets for their lifetime), so a key
/// taken from memory does not open every session the process ever resumed.</item>
/// <item>An operator's key files make tickets outlive a restart and open on every appliance that shares them.</item>
/// </list>
/// A resumed TLS 1.3 handshake gets a fresh ticket (unless renewOnResumption is off): clients use a ticket once (RFC 8446 §C.4; BoringSSL, so
/// Chrome, and wrk do), and without a fresh one every other connection of theirs is a full handshake. A resumed
/// TLS 1.2 handshake gets one only when its ticket was sealed by a key that no longer seals (nginx does the same).
/// The process-wide settings come from <see cref="Configure"/>; each context derives its keys from them and its
/// certificate (<see cref="TicketKey.Derive"/>).
/// </summary>
public static unsafe class SessionTickets
{
    private const int SslCtrlSetTlsextTicketKeyCb = 72; // SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB, OpenSSL 1.1 and 3
    private const ulong SslOpNoTicket = 0x4000;
    private const int Tls13Version = 0x0304; // TLS1_3_VERSION
    private const int SslCtrlSessNumber = 20;         // SSL_CTX_sess_number
    private const int SslCtrlSessCacheFull = 31;      // SSL_CTX_sess_cache_full
    private const int SslCtrlSetSessCacheSize = 42;   // SSL_CTX_sess_set_cache_size

    private static readonly Lock s_lock = new();
    private static readonly ConcurrentDictionary<nint, Context> s_contexts = new();
    private static SessionTicketSettings s_settings = SessionTicketSettings.Default;
    private static TimeProvider s_time = TimeProvider.System;
    private static byte[][] s_secrets = [RandomNumberGenerator.GetBytes(80)]; // newest first
    private static DateTimeOffset[] s_retired = [DateTimeOffset.MaxValue];     // when each stopped sealing (the newest: never)
    private static DateTimeOffset s_newestSince = DateTimeOffset.UtcNow;
    private static ITimer? s_timer;

    /// <summary>Whether the appliance seals tickets itself (false where OpenSSL could not be reached: its own keys then).</summary>
    public static bool Available => OpenSslLibrary.Available;

    /// <summary>How tickets are sealed now, for the log.</summary>
    public static string Describe() => Available ? s_settings.ToString() : "OpenSSL's own keys (the appliance cannot reach its ticket callback)";

    /// <summary>
    /// Takes the settings of a config (at start and on every apply or reload). Generated keys survive an apply, a
    /// changed rotation included; key files are re-read by the compiler, and new contents take effect here.
    /// </summary>
    public static void Configure(SessionTicketSettings settings, TimeProvider? time = null)
    {
        lock (s_lock)
        {
            SessionTicketSettings before = s_settings;
            s_settings = settings;
            s_time = time ?? TimeProvider.System;
            if (settings.Enabled != before.Enabled || settings.CacheSize != before.CacheSize || settings.PerHandshake != before.PerHandshake)
            {
                foreach (Context c in s_contexts.Values)
                {
                    ApplyOptions(c.Handle, settings);
                }
            }

            bool generated = settings.Secrets.Count == 0;
            if (generated)
            {
                if (before.Secrets.Count > 0)
                {
                    Publish([RandomNumberGenerator.GetBytes(80)], [DateTimeOffset.MaxValue]); // the file keys go
                }

                if (s_timer is null || settings.Rotate != before.Rotate || time is not null)
                {
                    s_timer?.Dispose();
                    TimeSpan tick = settings.Rotate < TimeSpan.FromMinutes(1) ? settings.Rotate : TimeSpan.FromMinutes(1);
                    s_timer = s_time.CreateTimer(static _ => Tick(), null, tick, tick);
                }
            }
            else
            {
                s_timer?.Dispose();
                s_timer = null;
                if (!SessionTicketSettings.SameSecrets(before.Secrets, settings.Secrets) || before.Secrets.Count == 0)
                {
                    DateTimeOffset now = s_time.GetUtcNow();
                    Publish([.. settings.Secrets], [DateTimeOffset.MaxValue, .. settings.Secrets.Skip(1).Select(_ => now)]);
                }
            }
        }
    }

    /// <summary>
    /// A new generated key seals from now on (the timer's turn, or an operator's). The older keys still open tickets
    /// until the ticket lifetime has passed since each stopped sealing, unless <paramref name="revoke"/>: then they are
    /// dropped at once and every outstanding ticket needs a full handshake (a key suspected to have leaked). False
    /// when the keys come from files: those rotate by rewriting the files.
    /// </summary>
    public static bool Rotate(bool revoke = false)
    {
        lock (s_lock)
        {
            if (s_settings.Secrets.Count > 0)
            {
                return false;
            }

            RotateLocked(revoke);
            return true;
        }
    }

    /// <summary>The timer's tick (every minute, or every rotation interval if shorter): rotates when due, drops expired keys.</summary>
    internal static void Tick()
    {
        lock (s_lock)
        {
            if (s_settings.Secrets.Count > 0)
            {
                return;
            }

            DateTimeOffset now = s_time.GetUtcNow();
            if (now - s_newestSince >= s_settings.Rotate)
            {
                RotateLocked(revoke: false);
            }
            else if (s_retired.Any(r => Expired(r, now)))
            {
                Publish(s_secrets, s_retired);
            }
        }
    }

    private static void RotateLocked(bool revoke)
    {
        DateTimeOffset now = s_time.GetUtcNow();
        byte[][] secrets = revoke ? [RandomNumberGenerator.GetBytes(80)] : [RandomNumberGenerator.GetBytes(80), .. s_secrets];
        DateTimeOffset[] retired = revoke ? [DateTimeOffset.MaxValue] : [DateTimeOffset.MaxValue, now, .. s_retired.Skip(1)];
        Publish(secrets, retired);
    }

    private static bool Expired(DateTimeOffset retired, DateTimeOffset now) =>
        retired != DateTimeOffset.MaxValue && now - retired >= SessionTicketSettings.TicketLifetime;

    /// <summary>What the admin API shows: never a key or a key name.</summary>
    public static SessionTicketStatus Status()
    {
        lock (s_lock)
        {
            long cached = 0, evicted = 0;
            foreach (Context c in s_contexts.Values)
            {
                cached += OpenSslLibrary.SslCtxCtrl(c.Handle, SslCtrlSessNumber, 0, 0);
                evicted += OpenSslLibrary.SslCtxCtrl(c.Handle, SslCtrlSessCacheFull, 0, 0);
            }

            return new SessionTicketStatus(Available, s_settings.Enabled, s_settings.Secrets.Count > 0, s_secrets.Length,
                s_settings.Secrets.Count > 0 ? null : s_settings.Rotate, s_newestSince, s_contexts.Count, s_settings.RenewOnResumption,
                s_settings.CacheSize, cached, evicted, s_settings.PerHandshake);
        }
    }

    /// <summary>The secrets in force, newest first (tests).</summary>
    internal static IReadOnlyList<byte[]> Secrets => Volatile.Read(ref s_secrets);

    /// <summary>
    /// Makes a pinned context seal and open tickets with the appliance's keys, derived for its certificate. The
    /// returned registration undoes it; null where OpenSSL could not be reached.
    /// </summary>
    internal static IDisposable? Attach(SafeHandle context, byte[] certificateHash)
    {
        if (!Available || context.IsInvalid)
        {
            return null;
        }

        lock (s_lock)
        {
            nint handle = context.DangerousGetHandle();
            if (s_contexts.TryGetValue(handle, out Context? existing))
            {
                existing.References++;
            }
            else
            {
                var c = new Context(handle, certificateHash) { Keys = TicketKeys.Derive(s_secrets, certificateHash) };
                s_contexts[handle] = c;
                // .NET gives each context a random session ID context, which a resumed session must match: one made
                // from the certificate instead lets a session resume in another process with the same keys.
                Span<byte> sessionIdContext = stackalloc byte[32];
                SHA256.HashData([.. "appliance session id context"u8, .. certificateHash], sessionIdContext);
                fixed (byte* sid = sessionIdContext)
                {
                    OpenSslLibrary.SslCtxSetSessionIdContext(handle, sid, (uint)sessionIdContext.Length);
                }

                OpenSslLibrary.SslCtxCallbackCtrl(handle, SslCtrlSetTlsextTicketKeyCb, (nint)(delegate* unmanaged[Cdecl]<nint, byte*, byte*, nint, nint, int, int>)&OnTicketKey);
                if (OpenSslLibrary.SslCtxSetGenerateSessionId != null)
                {
                    OpenSslLibrary.SslCtxSetGenerateSessionId(handle, (nint)(delegate* unmanaged[Cdecl]<nint, byte*, uint*, int>)&OnSessionId);
                }

                ApplyOptions(handle, s_settings);
            }

            return new Registration(handle);
        }
    }

    private static void Detach(nint handle)
    {
        lock (s_lock)
        {
            if (s_contexts.TryGetValue(handle, out Context? c) && --c.References == 0)
            {
                // The context may outlive the pin (connections still on it): OpenSSL's own keys from here on.
                OpenSslLibrary.SslCtxCallbackCtrl(handle, SslCtrlSetTlsextTicketKeyCb, 0);
                if (OpenSslLibrary.SslCtxSetGenerateSessionId != null)
                {
                    OpenSslLibrary.SslCtxSetGenerateSessionId(handle, 0); // OpenSSL's own again
                }

                s_contexts.TryRemove(handle, out _);
            }
        }
    }

    /// <summary>The context's ticket option, session cache size and TLS 1.3 tickets per full handshake, from the settings (each call is idempotent).</summary>
    private static void ApplyOptions(nint handle, SessionTicketSettings settings)
    {
        SetTicketOption(handle, settings.Enabled);
        SetCacheSize(handle, settings.CacheSize);
        SetTicketCount(handle, settings.PerHandshake);
    }

    /// <summary>
    /// SSL_OP_NO_TICKET off: sealed tickets. On: OpenSSL seals none; TLS 1.3 tickets then name a cached session
    /// (stateful tickets, each used once) and TLS 1.2 clients resume by session ID.
    /// </summary>
    private static void SetTicketOption(nint handle, bool enabled)
    {
        _ = enabled ? OpenSslLibrary.SslCtxClearOptions(handle, SslOpNoTicket) : OpenSslLibrary.SslCtxSetOptions(handle, SslOpNoTicket);
    }

    /// <summary>A smaller size lets the least recently used sessions go at the next insertion.</summary>
    private static void SetCacheSize(nint handle, int size) => OpenSslLibrary.SslCtxCtrl(handle, SslCtrlSetSessCacheSize, size, 0);

    /// <summary>TLS 1.3 tickets after a full handshake, from the next handshake on (a libssl without the call keeps its own count).</summary>
    private static void SetTicketCount(nint handle, int count)
    {
        if (OpenSslLibrary.SslCtxSetNumTickets != null)
        {
            _ = OpenSslLibrary.SslCtxSetNumTickets(handle, (nuint)count);
        }
    }

    /// <summary>
    /// Under the lock: new secrets (file keys are never dropped for age: the files say which are in force), and every
    /// context's keys derived from them before any handshake sees them.
    /// </summary>
    private static void Publish(byte[][] secrets, DateTimeOffset[] retired)
    {
        if (s_settings.Secrets.Count == 0)
        {
            DateTimeOffset now = s_time.GetUtcNow();
            bool[] keep = [.. retired.Select(r => !Expired(r, now))];
            secrets = [.. secrets.Where((_, i) => keep[i])];
            retired = [.. retired.Where((_, i) => keep[i])];
        }

        foreach (Context c in s_contexts.Values)
        {
            c.Keys = TicketKeys.Derive(secrets, c.CertificateHash);
        }

        if (!ReferenceEquals(secrets[0], s_secrets[0]))
        {
            s_newestSince = s_time.GetUtcNow(); // a new key seals
        }

        s_retired = retired;
        Volatile.Write(ref s_secrets, secrets);
    }

    /// <summary>Random bytes drawn ahead from OpenSSL's generator, per thread (handshakes run on the loop threads).</summary>
    [ThreadStatic]
    private static byte[]? t_random;

    [ThreadStatic]
    private static int t_randomTaken;

    private const int RandomDraw = 1024;

    /// <summary>
    /// Fresh random bytes for a ticket's IV or a new session's ID, from a buffer that one RAND_bytes fills for many.
    /// RAND_bytes costs some 6,000 instructions a call in OpenSSL 3.0 (its DRBG, locks, and a fork check that is a
    /// getpid(2) system call); each ticket sealed cost two (its session's ID, its IV). The bytes are the same
    /// generator's, each handed out once and cleared; they never leave the process before what they go into does
    /// (CBC wants its IV unpredictable, not secret; a session ID only has to be unique).
    /// </summary>
    private static bool TakeRandom(byte* destination, int length)
    {
        byte[] random = t_random ??= new byte[RandomDraw];
        int taken = t_randomTaken;
        if (taken == 0 || RandomDraw - taken < length)
        {
            fixed (byte* fill = random)
            {
                if (OpenSslLibrary.RandBytes(fill, RandomDraw) != 1)
                {
                    t_randomTaken = 0;
                    return false;
                }
            }

            taken = 0;
        }

        Span<byte> next = random.AsSpan(taken, length);
        next.CopyTo(new Span<byte>(destination, length));
        next.Clear(); // used once
        t_randomTaken = taken + length;
        return true;
    }

    /// <summary>
    /// OpenSSL's session ID callback (SSL_CTX_set_generate_session_id): a new session's ID, made for every ticket a
    /// TLS 1.3 handshake sends (and every TLS 1.2 session), from <see cref="TakeRandom"/> in place of a RAND_bytes of
    /// its own. OpenSSL still checks it against the session cache. 0 fails the handshake, which only a failed draw does.
    /// </summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnSessionId(nint ssl, byte* id, uint* length)
    {
        try
        {
            return TakeRandom(id, (int)Math.Min(*length, 32u)) ? 1 : 0; // *length: the most it may be (32), left as it is
        }
        catch (Exception)
        {
            return 0;
        }
    }

    /// <summary>
    /// OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_cb), run inside a handshake. Sealing: the
    /// newest key's name, a random IV, and the cipher and HMAC set up with it (1). Opening: the key the ticket names
    /// (2, "open it and issue a fresh ticket", on TLS 1.3 unless renewOnResumption is off, or when that key no longer
    /// seals; else 1), or 0 for a key not held (a full handshake follows). -1 fails the handshake, which only an
    /// OpenSSL error does here.
    /// </summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnTicketKey(nint ssl, byte* keyName, byte* iv, nint cipher, nint hmac, int seal)
    {
        try
        {
            // No context of ours (unpinned while this handshake ran), or no HMAC context (OpenSSL makes one only when
            // a callback was set at the handshake's start): no ticket sealed, none opened (a full handshake).
            if (cipher == 0 || hmac == 0 || !s_contexts.TryGetValue(OpenSslLibrary.SslGetSslCtx(ssl), out Context? c))
            {
                return 0;
            }

            TicketKeys keys = c.Keys;
            int index = 0;
            if (seal != 0)
            {
                keys.Keys[0].Name.CopyTo(new Span<byte>(keyName, 16));
                if (!TakeRandom(iv, 16))
                {
                    return -1;
                }
            }
            else if ((index = keys.Find(new ReadOnlySpan<byte>(keyName, 16))) < 0)
            {
                return 0;
            }

            TicketKey key = keys.Keys[index];
            fixed (byte* aes = key.Aes)
            fixed (byte* mac = key.Hmac)
            {
                int cipherSet = seal != 0
                    ? OpenSslLibrary.EvpEncryptInitEx(cipher, OpenSslLibrary.Aes256Cbc, 0, aes, iv)
                    : OpenSslLibrary.EvpDecryptInitEx(cipher, OpenSslLibrary.Aes256Cbc, 0, aes, iv);
                if (cipherSet != 1 || OpenSslLibrary.HmacInitEx(hmac, mac, key.Hmac.Length, OpenSslLibrary.Sha256, 0) != 1)
                {
                    return -1;
                }
            }

            return index == 0 && (!s_settings.RenewOnResumption || OpenSslLibrary.SslVersion(ssl) != Tls13Version) ? 1 : 2;
        }
        catch (Exception)
        {
            return -1; // nothing may unwind into OpenSSL
        }
    }

    private sealed class Context(nint handle, byte[] certificateHash)
    {
        public nint Handle { get; } = handle;

        public byte[] CertificateHash { get; } = certificateHash;

        public int References { get; set; } = 1;

        public volatile TicketKeys Keys = null!;
    }

    private sealed class Registration(nint handle) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Detach(handle);
            }
        }
    }
}

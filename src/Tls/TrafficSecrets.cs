using System.Runtime.InteropServices;

namespace Appliance.Tls;

/// <summary>
/// What a TLS 1.3 handshake on one of the appliance's server contexts leaves for a record layer outside OpenSSL
/// (<see cref="RecordProtection"/>, as kernel TLS would take it): the two application traffic secrets, and how many
/// records each side protected with them before the handshake ended (the server's session tickets). OpenSSL 3.0 has
/// no call that returns either. The message callback marks each side's Finished and counts the record headers after
/// it, since a Finished is the last record under the handshake keys; the keylog callback hands over the secrets (as
/// it does for SSLKEYLOGFILE). They live in a small native block hung on the SSL object (ex_data), zeroed and freed
/// with it unless a record layer takes it first (<see cref="TryTake"/>).
/// </summary>
/// <remarks>
/// OpenSSL formats every key log line with a sprintf per byte, five lines a handshake: about 225,000 instructions, 9 %
/// of a resumed handshake. So the context's keylog callback is set only while some handshake on it is between a
/// Finished and the secret it brings, both inside one OpenSSL call on one thread: the server's Finished written, then
/// (in the same call) the exporter and the server's traffic secret logged; the client's Finished read, then its
/// traffic secret. Three lines instead of five, and none for the handshake secrets. A count per context, under a lock,
/// keeps the callback set while any handshake on it is inside such a window.
/// <para>Three lines still cost 135,000 instructions, so the secrets are then read where OpenSSL keeps them: its SSL
/// object holds both (client_app_traffic_secret and server_app_traffic_secret, inline arrays of ssl_st) at offsets
/// fixed for the loaded libssl. They are learned, not assumed: for each of the first handshakes the secrets its key
/// log gave are searched for in the object (within its allocation, whose size glibc knows when OpenSSL allocates
/// with its default malloc), and once three handshakes found each exactly once at the same two offsets, later
/// handshakes are read there and log nothing. Two handshakes that disagree end the learning; the key log stays.</para>
/// </remarks>
internal static unsafe partial class TrafficSecrets
{
    private const int CryptoExIndexSsl = 0;   // CRYPTO_EX_INDEX_SSL
    private const int SslCtrlSetMsgCallback = 15; // SSL_CTRL_SET_MSG_CALLBACK
    private const int RecordHeader = 0x100;   // SSL3_RT_HEADER: the message callback's "a record header"
    private const int Handshake = 22;         // SSL3_RT_HANDSHAKE
    private const byte Finished = 20;         // HandshakeType.finished
    private const int Tls13 = 0x0304;
    private const byte ServerFinishedWritten = 1;
    private const byte ClientFinishedRead = 2;
    private const byte WindowOpen = 4;
    private const byte Complete = ServerFinishedWritten | ClientFinishedRead;

    private const int Lessons = 3;

    private static readonly Lock s_windowLock = new();
    private static readonly Lock s_learnLock = new();
    private static bool s_learning = DefaultAllocator(); // under s_learnLock, as the two below
    private static int s_lessons;
    private static (int Client, int Server) s_candidate;
    private static int s_clientOffset = -1; // learned: where the SSL object keeps the two secrets
    private static int s_serverOffset = -1;
    private static readonly Dictionary<nint, int> s_windows = []; // context → handshakes inside a window (under the lock)

    private static readonly int s_index = OpenSslLibrary.ProtectionAvailable
        ? OpenSslLibrary.CryptoGetExNewIndex(CryptoExIndexSsl, 0, 0, 0, 0, (nint)(delegate* unmanaged<nint, nint, nint, int, long, nint, void>)&OnFree)
        : -1;

    /// <summary>Whether OpenSSL offers what this needs.</summary>
    public static bool Available => s_index >= 0;

    /// <summary>Where the secrets come from: the SSL object at learned offsets, or the key log.</summary>
    public static string Source => Volatile.Read(ref s_serverOffset) is int server and >= 0
        ? $"the SSL object (offsets {s_clientOffset} and {server}, learned from {Lessons} handshakes)"
        : "the key log callback";

    /// <summary>
    /// Installs the message callback on a server context, which sets the keylog callback when it needs it (once per
    /// context is enough; again is harmless). False, and nothing changed, where a key log callback of someone else's is
    /// already set (an operator's SSLKEYLOGFILE).
    /// </summary>
    public static bool Attach(nint context)
    {
        if (!Available || context == 0)
        {
            return false;
        }

        nint keylog = (nint)(delegate* unmanaged<nint, byte*, void>)&OnKeylog;
        nint existing = OpenSslLibrary.SslCtxGetKeylogCallback(context);
        if (existing != 0 && existing != keylog)
        {
            return false;
        }

        OpenSslLibrary.SslCtxCallbackCtrl(context, SslCtrlSetMsgCallback, (nint)(delegate* unmanaged<int, int, int, byte*, nuint, nint, nint, void>)&OnMessage);
        return true;
    }

    /// <summary>
    /// Takes the block of a finished handshake off its SSL object: the caller owns it from here and gives it back to
    /// <see cref="Free"/>. Null when the handshake left no complete block (TLS 1.2, another context, a key log of
    /// someone else's) or when the client's records were read past its Finished.
    /// </summary>
    public static SecretBlock* TryTake(nint ssl, int secretLength)
    {
        if (!Available)
        {
            return null;
        }

        var block = (SecretBlock*)OpenSslLibrary.SslGetExData(ssl, s_index);
        if (block == null)
        {
            return null;
        }

        OpenSslLibrary.SslSetExData(ssl, s_index, 0);
        CloseWindow(ssl, block);
        int server = Volatile.Read(ref s_serverOffset);
        if (server >= 0 && block->ClientLength == 0 && secretLength is > 0 and <= SecretBlock.MaxSecret)
        {
            new ReadOnlySpan<byte>((byte*)ssl + s_clientOffset, secretLength).CopyTo(new Span<byte>(block->Client, secretLength));
            new ReadOnlySpan<byte>((byte*)ssl + server, secretLength).CopyTo(new Span<byte>(block->Server, secretLength));
            block->ClientLength = block->ServerLength = (byte)secretLength;
        }
        else if (block->ClientLength == secretLength && block->ServerLength == secretLength)
        {
            Learn(ssl, block);
        }

        if (block->Flags != Complete || block->ClientLength != secretLength || block->ServerLength != secretLength
            || block->ReadAfter != 0)
        {
            Free(block);
            return null;
        }

        return block;
    }

    /// <summary>One lesson of the layout (see the remarks): where this handshake's logged secrets sit in its SSL object.</summary>
    private static void Learn(nint ssl, SecretBlock* block)
    {
        if (!Volatile.Read(ref s_learning))
        {
            return;
        }

        var whole = new ReadOnlySpan<byte>((byte*)ssl, (int)Math.Min(malloc_usable_size(ssl), 1 << 16));
        int client = FindOnce(whole, new ReadOnlySpan<byte>(block->Client, block->ClientLength));
        int server = FindOnce(whole, new ReadOnlySpan<byte>(block->Server, block->ServerLength));
        lock (s_learnLock)
        {
            if (!s_learning)
            {
                return;
            }

            if (client < 0 || server < 0 || (s_lessons > 0 && s_candidate != (client, server)))
            {
                s_learning = false; // not found, not once, or elsewhere than before: the key log it is
                return;
            }

            s_candidate = (client, server);
            if (++s_lessons == Lessons)
            {
                s_learning = false;
                s_clientOffset = client;
                Volatile.Write(ref s_serverOffset, server); // read first by others: set last
            }
        }

        static int FindOnce(ReadOnlySpan<byte> whole, ReadOnlySpan<byte> secret)
        {
            int at = whole.IndexOf(secret);
            return at >= 0 && whole[(at + 1)..].IndexOf(secret) < 0 ? at : -1;
        }
    }

    /// <summary>
    /// Whether OpenSSL allocates with its default malloc (no CRYPTO_set_mem_functions), so that glibc's
    /// malloc_usable_size gives the extent of an SSL object.
    /// </summary>
    private static bool DefaultAllocator()
    {
        if (!OpenSslLibrary.ProtectionAvailable || OpenSslLibrary.CryptoGetMemFunctions == null || OpenSslLibrary.CryptoMalloc == 0)
        {
            return false;
        }

        nint malloc = 0, realloc = 0, free = 0;
        OpenSslLibrary.CryptoGetMemFunctions(&malloc, &realloc, &free);
        return malloc == OpenSslLibrary.CryptoMalloc;
    }

    [LibraryImport("libc", EntryPoint = "malloc_usable_size")]
    private static partial nuint malloc_usable_size(nint pointer);

    /// <summary>
    /// Stops the message callback on a connection whose records stay on OpenSSL (TLS 1.2, or a fallback): it would
    /// otherwise run for every record.
    /// </summary>
    public static void Detach(nint ssl)
    {
        if (Available)
        {
            OpenSslLibrary.SslCallbackCtrl(ssl, SslCtrlSetMsgCallback, 0);
        }
    }

    /// <summary>Zeroes and frees a block.</summary>
    public static void Free(SecretBlock* block)
    {
        if (block != null)
        {
            NativeMemory.Clear(block, (nuint)sizeof(SecretBlock));
            NativeMemory.Free(block);
        }
    }

    /// <summary>"LABEL &lt;client random hex&gt; &lt;secret hex&gt;": the two application traffic secrets are kept.</summary>
    [UnmanagedCallersOnly]
    private static void OnKeylog(nint ssl, byte* line)
    {
        var text = new ReadOnlySpan<byte>(line, (int)Math.Min(strlen(line), 512));
        bool client = text.StartsWith("CLIENT_TRAFFIC_SECRET_0 "u8);
        if (!client && !text.StartsWith("SERVER_TRAFFIC_SECRET_0 "u8))
        {
            return;
        }

        int space = text.LastIndexOf((byte)' ');
        ReadOnlySpan<byte> hex = text[(space + 1)..];
        if (hex.Length % 2 != 0 || hex.Length / 2 > SecretBlock.MaxSecret)
        {
            return;
        }

        SecretBlock* block = Block(ssl, create: false);
        if (block == null)
        {
            return; // another context's handshake, or one on this context outside its windows
        }

        byte* secret = client ? block->Client : block->Server;
        for (int i = 0; i < hex.Length / 2; i++)
        {
            int high = Nibble(hex[2 * i]), low = Nibble(hex[(2 * i) + 1]);
            if ((high | low) < 0)
            {
                return; // not hex: the length stays 0, and the connection stays on OpenSSL
            }

            secret[i] = (byte)((high << 4) | low);
        }

        if (client)
        {
            block->ClientLength = (byte)(hex.Length / 2);
        }
        else
        {
            block->ServerLength = (byte)(hex.Length / 2);
        }

        CloseWindow(ssl, block);

        static int Nibble(byte c) => c is >= (byte)'0' and <= (byte)'9' ? c - '0' : c is >= (byte)'a' and <= (byte)'f' ? c - 'a' + 10 : c is >= (byte)'A' and <= (byte)'F' ? c - 'A' + 10 : -1;

        static nuint strlen(byte* s)
        {
            nuint n = 0;
            while (s[n] != 0 && n < 512)
            {
                n++;
            }

            return n;
        }
    }

    [UnmanagedCallersOnly]
    private static void OnMessage(int writing, int version, int contentType, byte* data, nuint length, nint ssl, nint argument)
    {
        if (contentType == RecordHeader)
        {
            SecretBlock* block = Block(ssl, create: false);
            if (block != null)
            {
                if (writing != 0 && (block->Flags & ServerFinishedWritten) != 0)
                {
                    block->WrittenAfter++;
                }
                else if (writing == 0 && (block->Flags & ClientFinishedRead) != 0)
                {
                    block->ReadAfter++;
                }
            }
        }
        else if (contentType == Handshake && length >= 1 && data[0] == Finished && version == Tls13
            && Block(ssl, create: true) is var block and not null)
        {
            // Called once the whole message is written (or read): its record's header came before. The server's
            // comes before its application secrets are logged, which is why the block may be made here.
            block->Flags |= writing != 0 ? ServerFinishedWritten : ClientFinishedRead;
            OpenWindow(ssl, block);
        }
    }

    [UnmanagedCallersOnly]
    private static void OnFree(nint parent, nint pointer, nint exData, int index, long argl, nint argp)
    {
        if (pointer != 0)
        {
            CloseWindow(parent, (SecretBlock*)pointer); // a handshake that failed inside one
            Free((SecretBlock*)pointer);
        }
    }

    /// <summary>Sets the context's keylog callback until this handshake's secret comes (see the remarks).</summary>
    private static void OpenWindow(nint ssl, SecretBlock* block)
    {
        if ((block->Flags & WindowOpen) != 0 || Volatile.Read(ref s_serverOffset) >= 0)
        {
            return; // open already, or the secrets are read from the SSL object
        }

        nint context = OpenSslLibrary.SslGetSslCtx(ssl);
        lock (s_windowLock)
        {
            ref int open = ref CollectionsMarshal.GetValueRefOrAddDefault(s_windows, context, out _);
            if (open++ == 0)
            {
                OpenSslLibrary.SslCtxSetKeylogCallback(context, (nint)(delegate* unmanaged<nint, byte*, void>)&OnKeylog);
            }
        }

        block->Flags |= WindowOpen;
    }

    /// <summary>Unsets the context's keylog callback when no other handshake on it is inside a window.</summary>
    private static void CloseWindow(nint ssl, SecretBlock* block)
    {
        if ((block->Flags & WindowOpen) == 0)
        {
            return;
        }

        block->Flags &= unchecked((byte)~WindowOpen);
        nint context = OpenSslLibrary.SslGetSslCtx(ssl);
        lock (s_windowLock)
        {
            if (s_windows.TryGetValue(context, out int open) && --open > 0)
            {
                s_windows[context] = open;
                return;
            }

            s_windows.Remove(context);
            OpenSslLibrary.SslCtxSetKeylogCallback(context, 0);
        }
    }

    private static SecretBlock* Block(nint ssl, bool create)
    {
        var block = (SecretBlock*)OpenSslLibrary.SslGetExData(ssl, s_index);
        if (block == null && create)
        {
            block = (SecretBlock*)NativeMemory.AllocZeroed((nuint)sizeof(SecretBlock));
            if (OpenSslLibrary.SslSetExData(ssl, s_index, (nint)block) != 1)
            {
                NativeMemory.Free(block);
                OpenSslLibrary.ErrClearError();
                return null;
            }
        }

        return block;
    }
}

/// <summary>A handshake's application traffic secrets and record counts (<see cref="TrafficSecrets"/>).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct SecretBlock
{
    public const int MaxSecret = 48; // SHA-384's length

    public fixed byte Client[MaxSecret];
    public fixed byte Server[MaxSecret];
    public fixed byte ReadIv[12];  // the record layer's, once it derived them (RecordProtection)
    public fixed byte WriteIv[12];
    public byte ClientLength;
    public byte ServerLength;
    public byte Flags;
    public int WrittenAfter; // records the server sealed after its Finished: its session tickets
    public int ReadAfter;    // records read after the client's Finished
}

using System.Net.Security;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tls;

/// <summary>
/// What a TLS 1.3 handshake on one of the appliance's server contexts leaves for a record layer outside OpenSSL
/// (<see cref="RecordProtection"/>, as kernel TLS would take it): the two application traffic secrets, and how many
/// records each side protected with them before the handshake ended (the server's session tickets). OpenSSL 3.0 has
/// no call that returns either. The message callback marks each side's Finished and counts the record headers after
/// it, since a Finished is the last record under the handshake keys; those counts live in a small native block hung
/// on the SSL object (ex_data), zeroed and freed with it unless a record layer takes it first (<see cref="TryTake"/>).
/// The secrets are read where OpenSSL keeps them, in the SSL object itself (client_app_traffic_secret and
/// server_app_traffic_secret, inline arrays of ssl_st), at offsets fixed for the loaded libssl.
/// </summary>
/// <remarks>
/// The offsets are learned, not assumed (<see cref="Learn"/>): once, at start, three TLS 1.3 handshakes between two
/// SslStreams in this process on a context of their own, whose keylog callback hands over the secrets (as it does for
/// SSLKEYLOGFILE); each handshake's secrets are searched for in its SSL object, within the allocation (whose size the
/// process's malloc gives, when OpenSSL allocates with its default malloc), and the offsets hold only if each secret
/// is found exactly once, at the same two offsets, in all three. Otherwise no connection is taken off OpenSSL's record
/// layer. Serving contexts never get a keylog callback: OpenSSL formats every key log line with a sprintf per byte
/// (about 225,000 instructions, 9 % of a resumed handshake), and it reads the callback twice, around that formatting,
/// so the callback cannot be unset safely while handshakes run.
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
    private const byte Complete = ServerFinishedWritten | ClientFinishedRead;
    private const int Lessons = 3;

    private static readonly Lock s_learnLock = new();
    private static string? s_unlearned = "not learned yet"; // why the offsets are unknown; null once learned (under the lock)
    private static int s_clientOffset = -1; // where the SSL object keeps the two secrets
    private static int s_serverOffset = -1;

    private static readonly int s_index = OpenSslLibrary.ProtectionAvailable
        ? OpenSslLibrary.CryptoGetExNewIndex(CryptoExIndexSsl, 0, 0, 0, 0, (nint)(delegate* unmanaged<nint, nint, nint, int, long, nint, void>)&OnFree)
        : -1;

    /// <summary>Whether the secrets of a server's handshakes can be read (<see cref="Learn"/> succeeded).</summary>
    public static bool Available => Volatile.Read(ref s_serverOffset) >= 0;

    /// <summary>Where the secrets come from, or why they cannot be read.</summary>
    public static string Describe()
    {
        lock (s_learnLock)
        {
            return s_unlearned is { } why ? "unavailable: " + why
                : $"read from the SSL object (offsets {s_clientOffset} and {s_serverOffset}, learned from {Lessons} handshakes)";
        }
    }

    /// <summary>
    /// Learns where the SSL object keeps the secrets (see the remarks), once per process: null when it did, or why not.
    /// Takes a few milliseconds (a certificate and three handshakes), so it runs at start.
    /// </summary>
    public static string? Learn()
    {
        lock (s_learnLock)
        {
            if (s_unlearned == "not learned yet")
            {
                try
                {
                    s_unlearned = LearnOnce();
                }
                catch (Exception e)
                {
                    s_unlearned = "learning where OpenSSL keeps the traffic secrets failed: " + e.Message;
                }
            }

            return s_unlearned;
        }
    }

    private static string? LearnOnce()
    {
        if (s_index < 0)
        {
            return "the loaded OpenSSL lacks a function the appliance's record layer needs";
        }

        if (!DefaultAllocator(out nint usableSize))
        {
            return "OpenSSL does not allocate with the process's malloc (the SSL object's extent is unknown)";
        }

        using X509Certificate2 certificate = SelfSignedCertificate.Create(["record-layer.appliance.invalid"], TimeSpan.FromHours(1));
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(certificate, null, offline: true),
            EnabledSslProtocols = SslProtocols.Tls13,
        };
        using ContextPin? pin = SessionResumption.Pin(options, prepare: false);
        if (pin is null)
        {
            return "the handshake's OpenSSL context cannot be reached in this runtime";
        }

        nint context = pin.Context.DangerousGetHandle();
        OpenSslLibrary.SslCtxSetKeylogCallback(context, (nint)(delegate* unmanaged<nint, byte*, void>)&OnKeylog); // this context's only
        Attach(context);
        (int Client, int Server) found = (-1, -1);
        for (int i = 0; i < Lessons; i++)
        {
            (int, int)? offsets = LearnFromHandshake(options, usableSize);
            if (offsets is null || (i > 0 && offsets != found))
            {
                return "the traffic secrets were not found once each, at the same offsets, in the SSL objects of three handshakes";
            }

            found = offsets.Value;
        }

        s_clientOffset = found.Client;
        Volatile.Write(ref s_serverOffset, found.Server); // read first by others: set last
        return null;
    }

    /// <summary>One handshake between two SslStreams over two OS pipes: where its logged secrets sit in the server's SSL object.</summary>
    private static (int Client, int Server)? LearnFromHandshake(SslServerAuthenticationOptions options, nint usableSize)
    {
        using var toServer = new System.IO.Pipes.AnonymousPipeServerStream(System.IO.Pipes.PipeDirection.Out);
        using var atServer = new System.IO.Pipes.AnonymousPipeClientStream(System.IO.Pipes.PipeDirection.In, toServer.ClientSafePipeHandle);
        using var toClient = new System.IO.Pipes.AnonymousPipeServerStream(System.IO.Pipes.PipeDirection.Out);
        using var atClient = new System.IO.Pipes.AnonymousPipeClientStream(System.IO.Pipes.PipeDirection.In, toClient.ClientSafePipeHandle);
        using var server = new SslStream(new Duplex(atServer, toClient));
        using var client = new SslStream(new Duplex(atClient, toServer));
        var clientThread = new Thread(() =>
        {
            try
            {
                client.AuthenticateAsClient(new SslClientAuthenticationOptions
                {
                    TargetHost = "record-layer.appliance.invalid",
                    EnabledSslProtocols = SslProtocols.Tls13,
                    RemoteCertificateValidationCallback = (_, _, _, _) => true, // a handshake with ourselves, for its keys
                });
            }
            catch (Exception)
            {
                toServer.Dispose(); // the server's read ends; a thread's exception would end the process
            }
        }) { IsBackground = true, Name = "record layer: learning" };
        clientThread.Start();
        try
        {
            server.AuthenticateAsServer(options);
        }
        catch (Exception)
        {
            toClient.Dispose(); // the client's read ends
            clientThread.Join();
            return null;
        }

        clientThread.Join();
        nint ssl = TlsRecordStream.SslHandle(server);
        var block = ssl == 0 ? null : (SecretBlock*)OpenSslLibrary.SslGetExData(ssl, s_index);
        if (block == null || block->Flags != Complete || block->ClientLength == 0 || block->ClientLength != block->ServerLength)
        {
            return null;
        }

        var whole = new ReadOnlySpan<byte>((byte*)ssl, (int)Math.Min(((delegate* unmanaged<nint, nuint>)usableSize)(ssl), 1 << 16));
        int clientAt = FindOnce(whole, new ReadOnlySpan<byte>(block->Client, block->ClientLength));
        int serverAt = FindOnce(whole, new ReadOnlySpan<byte>(block->Server, block->ServerLength));
        return clientAt >= 0 && serverAt >= 0 ? (clientAt, serverAt) : null;

        static int FindOnce(ReadOnlySpan<byte> whole, ReadOnlySpan<byte> secret)
        {
            int at = whole.IndexOf(secret);
            return at >= 0 && whole[(at + 1)..].IndexOf(secret) < 0 ? at : -1;
        }
    }

    /// <summary>
    /// Whether OpenSSL allocates with its default malloc (no CRYPTO_set_mem_functions), and the process's own
    /// malloc_usable_size (resolved as malloc is, so an allocator preloaded in place of glibc's answers for its own).
    /// </summary>
    private static bool DefaultAllocator(out nint usableSize)
    {
        usableSize = 0;
        if (OpenSslLibrary.CryptoGetMemFunctions == null || OpenSslLibrary.CryptoMalloc == 0
            || !NativeLibrary.TryGetExport(NativeLibrary.GetMainProgramHandle(), "malloc_usable_size", out usableSize))
        {
            return false;
        }

        nint malloc = 0, realloc = 0, free = 0;
        OpenSslLibrary.CryptoGetMemFunctions(&malloc, &realloc, &free);
        return malloc == OpenSslLibrary.CryptoMalloc;
    }

    /// <summary>Installs the message callback on a server context (once per context is enough; again is harmless).</summary>
    public static void Attach(nint context)
    {
        if (s_index >= 0 && context != 0)
        {
            OpenSslLibrary.SslCtxCallbackCtrl(context, SslCtrlSetMsgCallback, (nint)(delegate* unmanaged<int, int, int, byte*, nuint, nint, nint, void>)&OnMessage);
        }
    }

    /// <summary>
    /// Takes the block of a finished handshake off its SSL object, with its secrets (<paramref name="secretLength"/>
    /// bytes each) copied from the object: the caller owns it from here and gives it back to <see cref="Free"/>. Null
    /// when the handshake left no complete block (TLS 1.2, another context) or when the client's records were read
    /// past its Finished.
    /// </summary>
    public static SecretBlock* TryTake(nint ssl, int secretLength)
    {
        int server = Volatile.Read(ref s_serverOffset);
        if (server < 0 || secretLength is <= 0 or > SecretBlock.MaxSecret)
        {
            return null;
        }

        var block = (SecretBlock*)OpenSslLibrary.SslGetExData(ssl, s_index);
        if (block == null)
        {
            return null;
        }

        OpenSslLibrary.SslSetExData(ssl, s_index, 0);
        if (block->Flags != Complete || block->ReadAfter != 0)
        {
            Free(block);
            return null;
        }

        new ReadOnlySpan<byte>((byte*)ssl + s_clientOffset, secretLength).CopyTo(new Span<byte>(block->Client, secretLength));
        new ReadOnlySpan<byte>((byte*)ssl + server, secretLength).CopyTo(new Span<byte>(block->Server, secretLength));
        block->ClientLength = block->ServerLength = (byte)secretLength;
        return block;
    }

    /// <summary>
    /// Stops the message callback on a connection whose records stay on OpenSSL (TLS 1.2, or a fallback): it would
    /// otherwise run for every record.
    /// </summary>
    public static void Detach(nint ssl)
    {
        if (s_index >= 0)
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

    /// <summary>"LABEL &lt;client random hex&gt; &lt;secret hex&gt;" (the learning context's only): the two application traffic secrets are kept.</summary>
    [UnmanagedCallersOnly]
    private static void OnKeylog(nint ssl, byte* line)
    {
        var text = new ReadOnlySpan<byte>(line, (int)Math.Min(strlen(line), 512));
        bool client = text.StartsWith("CLIENT_TRAFFIC_SECRET_0 "u8);
        if (!client && !text.StartsWith("SERVER_TRAFFIC_SECRET_0 "u8))
        {
            return;
        }

        ReadOnlySpan<byte> hex = text[(text.LastIndexOf((byte)' ') + 1)..];
        SecretBlock* block = Block(ssl, create: false);
        if (block == null || hex.Length % 2 != 0 || hex.Length / 2 > SecretBlock.MaxSecret)
        {
            return;
        }

        byte* secret = client ? block->Client : block->Server;
        for (int i = 0; i < hex.Length / 2; i++)
        {
            int high = Nibble(hex[2 * i]), low = Nibble(hex[(2 * i) + 1]);
            if ((high | low) < 0)
            {
                return; // not hex: the length stays 0, and learning fails
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
            // Called once the whole message is written (or read): its record's header came before.
            block->Flags |= writing != 0 ? ServerFinishedWritten : ClientFinishedRead;
        }
    }

    [UnmanagedCallersOnly]
    private static void OnFree(nint parent, nint pointer, nint exData, int index, long argl, nint argp) => Free((SecretBlock*)pointer);

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

    /// <summary>Reads from one stream and writes to another: one end of a connection made of two pipes.</summary>
    private sealed class Duplex(Stream input, Stream output) : Stream
    {
        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => input.Read(buffer, offset, count);
        public override void Write(byte[] buffer, int offset, int count) => output.Write(buffer, offset, count);
        public override void Flush() => output.Flush();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
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

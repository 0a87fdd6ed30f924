using System.Buffers;
using System.Net.Security;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Appliance.Tls;

/// <summary>
/// The TLS record layer of a connection once SslStream's handshake is done: SSL_read and SSL_write on the
/// handshake's own OpenSSL object, through a BIO of our own (the sink) in place of its two memory BIOs, with the
/// socket stream underneath, in place of SslStream's read and write paths. The handshake (SNI, ALPN, certificates, client certificates, resumption) stays SslStream's;
/// only the records after it move here.
/// </summary>
/// <remarks>
/// <para>Why: per HTTPS request SslStream's data path cost about 6,000 user-space instructions of 33,000 on top of
/// OpenSSL's own work (perf/RESULTS.md): its read and write state machines, a SafeHandle reference taken and dropped
/// around each of its P/Invokes, and above all .NET's OpenSSL shim clearing the thread's error queue before each of
/// the four calls a request makes (`ERR_clear_error`, some 800 instructions each). nginx and HAProxy call OpenSSL
/// directly; this does the same on the object SslStream made. It is also where kernel TLS fits (DESIGN.md): the
/// same point after the handshake, with the keys handed to the kernel instead.</para>
/// <para>How: ciphertext is read into the caller's buffer (as SslStream does) and SSL_read decrypts over it, taking
/// the records through the sink's read callback from that buffer (or from a copy kept aside, where a record spans two
/// reads); SSL_write seals through the sink's write callback into a pooled buffer, which is sent. The callbacks find
/// their stream through a thread-static set around each OpenSSL call. Where libcrypto lacks the BIO_meth functions,
/// .NET's memory BIOs stay: received bytes are written into one, and sealed records read out of the other. One lock keeps SSL_read and SSL_write apart (OpenSSL's SSL object is not
/// safe for both at once; HTTP/2 reads and writes from two threads); the socket I/O happens outside it. Whether a
/// call needs input, met a close or failed is read from the SSL object's state, so the thread's error queue is not
/// cleared before each call as .NET's shim does; it is read and cleared when a call fails. Records OpenSSL answers
/// on its own while reading (a TLS 1.3 KeyUpdate's answer) wait in the output buffer and leave ahead of the next write,
/// as RFC 8446 §4.6.3 allows. Like SslStream, closing sends no close_notify, and it takes one write at a time (the
/// connection's writers never overlap): records are sealed in the order they are sent.</para>
/// <para>It reaches SslStream's SSL handle through one field read and <see cref="UnsafeAccessorAttribute"/> (both
/// AOT-safe) and holds a reference on it for its whole life, so the SSL object outlives every call here. If a runtime
/// moves those internals, <see cref="TryCreate"/> returns null and the connection stays on SslStream.</para>
/// <para>A TLS 1.3 server connection goes one step further by default (server.tlsRecordLayer "evp",
/// TlsRecordStream.Protected.cs): its records are sealed and opened here with OpenSSL's ciphers and the keys of the
/// handshake, and the SSL object goes with the SslStream. That halves the user-space work of a small HTTPS request
/// again (perf/RESULTS.md) and is the cut where kernel TLS takes the same keys.</para>
/// </remarks>
public sealed partial class TlsRecordStream : Stream
{
    private const int BioCtrlPending = 10; // BIO_CTRL_PENDING
    private const int BioCSetBufMem = 114; // BIO_C_SET_BUF_MEM
    private const int BioCGetBufMemPtr = 115; // BIO_C_GET_BUF_MEM_PTR
    private const int BioClose = 1;        // BIO_CLOSE: the BIO frees the buffer it is given
    private const int BioFlagsRead = 0x01;        // BIO_FLAGS_READ
    private const int BioFlagsRetry = 0x0F;       // BIO_FLAGS_RWS | BIO_FLAGS_SHOULD_RETRY (BIO_clear_retry_flags)
    private const int BioFlagsShouldRetry = 0x08; // BIO_FLAGS_SHOULD_RETRY
    private const int BioTypeSourceSink = 0x0400; // BIO_TYPE_SOURCE_SINK
    private const int SslReading = 3;          // SSL_want(): SSL_READING
    private const int SslReceivedShutdown = 2; // SSL_get_shutdown(): SSL_RECEIVED_SHUTDOWN
    private const ulong SslOpAllowClientRenegotiation = 1UL << 8;
    private const ulong SslOpNoRenegotiation = 1UL << 30;
    private const int MaxRecordPlaintext = 16384;
    private const int RecordOverhead = 96;      // header 5, and at most 85 of IV, MAC and padding (TLS 1.2 CBC with SHA-384)
    private const int QueuedRoom = 256;
    private const int Tls13Version = 0x0304;
    private const string SafeSslHandle = "Microsoft.Win32.SafeHandles.SafeSslHandle, System.Net.Security";
    private const string SafeBioHandle = "Microsoft.Win32.SafeHandles.SafeBioHandle, System.Net.Security";

    private static volatile string? s_unavailable = OpenSslLibrary.RecordsAvailable ? null : "the loaded libssl could not be found";

    /// <summary>The method of the BIO that hands OpenSSL its records and takes the sealed ones from the stream itself; 0 where absent.</summary>
    private static readonly nint s_sinkMethod = CreateSinkMethod();

    /// <summary>The stream whose OpenSSL call is running on this thread: where its BIO reads from and writes to.</summary>
    [ThreadStatic]
    private static TlsRecordStream? t_sinkOwner;

    private SslStream? _owner;            // the handshake's, until ReleaseHandshake: it holds the SSL object too
    private readonly Stream _transport;   // the socket, which this stream closes
    private readonly SafeHandle? _handle; // SslStream's SSL handle, referenced for this stream's life (null: _protection's)
    private readonly nint _ssl;
    private readonly nint _rbio;          // the sink, or the memory BIO where there is none
    private readonly nint _wbio;          // the sink, or the memory BIO where there is none
    private readonly bool _sink;
    private byte[]? _out;                 // what the sink received and nobody took yet: a pooled buffer (under _lock)
    private int _outLength;
    private byte[]? _held;                // received records OpenSSL has not read yet, kept between reads (sink; under _lock)
    private int _heldStart;
    private int _heldEnd;
    private unsafe byte* _in;             // the ciphertext of the read in progress, in the caller's buffer (sink; in ReadRecords)
    private int _inStart;
    private int _inEnd;
    private int _inReceived;              // how much of the caller's buffer is ciphertext, for the next ReadRecords
    private int _headerSeen;              // the framing of what the sink handed OpenSSL: header bytes of the record in
    private int _recordLength;            // progress (0..4), its length once known, and its body bytes still to come
    private int _bodyLeft;
    private SpinGate _lock; // one OpenSSL call or record at a time; the sink's callbacks run under it and never take it (not readonly: a struct)
    private readonly bool _tls12; // TLS 1.2 or older: a handshake message after the handshake is a renegotiation
    private bool _closed;                 // guarded by _lock, as the three below
    private bool _closeNotifySent;
    private bool _inputQueued;            // received ciphertext SSL_read may not have taken yet (read BIO, kept aside or in place)
    private bool _plaintextPending;       // OpenSSL holds decrypted bytes or unprocessed records (SSL_has_pending)
    private string? _failure;             // why the connection failed: nothing is read or written after it (under _lock)
    private byte[]? _alert;               // our fatal alert, sealed, waiting for the write in flight (under _lock)
    private int _alertLength;
    private bool _writing;                // records are on their way to the socket (under _lock)
    private int _disposed;

    private unsafe TlsRecordStream(SslStream owner, Stream transport, SafeHandle handle, nint rbio, nint wbio)
    {
        _owner = owner;
        _transport = transport;
        _handle = handle;
        _ssl = handle.DangerousGetHandle();
        _rbio = rbio;
        _wbio = wbio;
        if (s_sinkMethod != 0 && OpenSslLibrary.BioCtrl(rbio, BioCtrlPending, 0, 0) == 0 && OpenSslLibrary.BioCtrl(wbio, BioCtrlPending, 0, 0) == 0
            && OpenSslLibrary.BioNew(s_sinkMethod) is var sink and not 0)
        {
            // The SSL object owns its BIOs and frees the two memory ones here; .NET's handles for them hold only a
            // reference on the SSL handle, and nothing of .NET's reads or writes them after the handshake. One BIO
            // for both sides: SSL_set_bio takes the one reference twice.
            OpenSslLibrary.SslSetBio(_ssl, sink, sink);
            _rbio = _wbio = sink;
            _sink = true;
        }
        else
        {
            ReleaseBioBuffer(rbio);
            ReleaseBioBuffer(wbio);
        }

        TrafficSecrets.Detach(_ssl);
        _tls12 = OpenSslLibrary.SslVersion(_ssl) < Tls13Version;
        if (_tls12)
        {
            // .NET allows a client to renegotiate (SSL_OP_ALLOW_CLIENT_RENEGOTIATION): refuse it instead, so OpenSSL
            // answers a ClientHello (or, as a client, a HelloRequest) with a no_renegotiation warning rather than a
            // whole handshake (nginx does the same), and Decrypt closes the connection.
            OpenSslLibrary.SslClearOptions(_ssl, SslOpAllowClientRenegotiation);
            OpenSslLibrary.SslSetOptions(_ssl, SslOpNoRenegotiation);
        }
    }

    /// <summary>server.tlsRecordLayer is "openssl" or "evp" (set at start; connections already running keep their layer).</summary>
    public static bool Enabled { get; set; } = true;

    /// <summary>
    /// server.tlsRecordLayer is "evp": a TLS 1.3 server connection's records are sealed and opened here
    /// (<see cref="RecordProtection"/>) and its SSL object freed; others stay on OpenSSL's record layer.
    /// </summary>
    public static bool Protect { get; set; } = true;

    /// <summary>Whether new TLS 1.3 server connections get <see cref="Protect"/>'s record layer (<see cref="PrepareProtection"/> succeeded).</summary>
    public static bool ProtectUsable => Usable && Protect && TrafficSecrets.Available;

    /// <summary>
    /// Readies <see cref="Protect"/>'s record layer, once per process, before the first server context is made (a few
    /// milliseconds: <see cref="TrafficSecrets.Learn"/>): null when it is ready or not asked for, otherwise why TLS 1.3
    /// connections stay on OpenSSL's record layer.
    /// </summary>
    public static string? PrepareProtection() => Usable && Protect ? TrafficSecrets.Learn() : null;

    /// <summary>How the record layer of <see cref="Protect"/> finds its keys, or why it is unavailable (status).</summary>
    public static string DescribeProtection() => TrafficSecrets.Describe() + "; " + RecordProtection.DescribeNonces();

    /// <summary>Installs what a handshake on <paramref name="context"/> (a server's SSL_CTX) needs to leave for <see cref="Protect"/>.</summary>
    public static void PrepareServerContext(SafeHandle context)
    {
        if (ProtectUsable && !context.IsInvalid)
        {
            OpenSslLibrary.With(context, c =>
            {
                TrafficSecrets.Attach(c);
                return true;
            });
        }
    }

    /// <summary>Whether a new connection's handshake should be read through a <see cref="RecordBoundedStream"/> for a takeover.</summary>
    public static bool Usable => Enabled && s_unavailable is null;

    /// <summary>Why connections stay on SslStream's record layer in this process; null when they need not.</summary>
    public static string? Unavailable => s_unavailable;

    /// <summary>
    /// Takes over the records of <paramref name="ssl"/> (a server's or a client's), whose handshake just finished over
    /// <paramref name="bounded"/>: the bytes the peer sent after the handshake go to OpenSSL first. Null (and the connection stays on
    /// SslStream) when this runtime's SslStream cannot be reached or the handshake did not end at a record boundary.
    /// </summary>
    public static TlsRecordStream? TryCreate(SslStream ssl, RecordBoundedStream bounded)
    {
        if (s_unavailable is not null || !bounded.AtRecordBoundary)
        {
            return null;
        }

        SafeHandle handle;
        nint rbio, wbio;
        try
        {
            if (SecurityContext(ssl) is not SafeHandle context || context.IsInvalid)
            {
                return null;
            }

            handle = context;
            rbio = ((SafeHandle)InputBio(context)).DangerousGetHandle();
            wbio = ((SafeHandle)OutputBio(context)).DangerousGetHandle();

            // SslStream gives its read buffer back when a read of its own drains it, which now never comes: without
            // this, every connection kept the handshake's buffer (about 10 KiB per idle connection, S6).
            ReturnReadBufferIfEmpty(ssl);
        }
        catch (Exception e) when (e is MissingMemberException or TypeLoadException or InvalidCastException or NotSupportedException)
        {
            s_unavailable = "cannot reach SslStream's OpenSSL object in this runtime (" + e.Message + ")";
            return null;
        }

        if (rbio == 0 || wbio == 0)
        {
            return null;
        }

        if (ProtectUsable && TryProtect(ssl, handle, rbio, wbio) is { } protection)
        {
            return Adopt(new TlsRecordStream(ssl, bounded.ReleaseTransport(), protection), bounded);
        }

        bool added = false;
        handle.DangerousAddRef(ref added);
        return Adopt(new TlsRecordStream(ssl, bounded.ReleaseTransport(), handle, rbio, wbio), bounded);
    }

    /// <summary>Hands a new stream what the peer sent after the handshake, and what SslStream wrote after its last read.</summary>
    private static TlsRecordStream Adopt(TlsRecordStream stream, RecordBoundedStream bounded)
    {
        bounded.TakeOutput(out byte[]? preface, out int prefaceLength);
        if (preface is not null)
        {
            stream.AdoptPreface(preface, prefaceLength);
        }

        bounded.TakeRemainder(out byte[]? remainder, out int start, out int length);
        try
        {
            if (remainder is not null)
            {
                stream.FeedGuarded(remainder.AsSpan(start, length));
            }
        }
        catch
        {
            stream.Dispose();
            throw;
        }
        finally
        {
            if (remainder is not null)
            {
                ArrayPool<byte>.Shared.Return(remainder);
            }
        }

        return stream;
    }

    /// <summary>
    /// The sink's method: its write callback appends what OpenSSL writes (sealed records, alerts) to the pooled buffer
    /// of the stream whose call is running on the thread, and its read callback hands OpenSSL that stream's received
    /// bytes. In place of memory BIOs, which zeroed every byte as their buffer grew, copied it in, and were read out
    /// again: three passes over a 16 KiB response (about 35,000 instructions under callgrind) where this makes one,
    /// and no buffer held by an idle connection.
    /// </summary>
    private static unsafe nint CreateSinkMethod()
    {
        if (OpenSslLibrary.BioMethNew == null)
        {
            return 0;
        }

        int index = OpenSslLibrary.BioGetNewIndex();
        if (index < 0)
        {
            return 0;
        }

        nint method;
        fixed (byte* name = "appliance record sink"u8)
        {
            method = OpenSslLibrary.BioMethNew(index | BioTypeSourceSink, name); // the name is copied
        }

        if (method == 0
            || OpenSslLibrary.BioMethSetWrite(method, (nint)(delegate* unmanaged<nint, byte*, int, int>)&SinkWrite) != 1
            || OpenSslLibrary.BioMethSetRead(method, (nint)(delegate* unmanaged<nint, byte*, int, int>)&SinkRead) != 1
            || OpenSslLibrary.BioMethSetCtrl(method, OpenSslLibrary.NullBioCtrl) != 1 // native: OpenSSL asks a dozen times a request
            || OpenSslLibrary.BioMethSetCreate(method, (nint)(delegate* unmanaged<nint, int>)&SinkCreate) != 1)
        {
            OpenSslLibrary.ErrClearError();
            return 0;
        }

        return method;
    }

    [UnmanagedCallersOnly]
    private static unsafe int SinkWrite(nint bio, byte* data, int length)
    {
        OpenSslLibrary.BioClearFlags(bio, BioFlagsRetry); // one BIO both ways: a read's retry flags are not this write's
        if (length <= 0)
        {
            return 0;
        }

        try
        {
            // No owner: the SSL object being freed (its quiet shutdown) after the stream closed. Nothing is sent then.
            t_sinkOwner?.Append(new ReadOnlySpan<byte>(data, length));
            return length;
        }
        catch (Exception)
        {
            return -1; // out of memory: the write fails (no retry flag), and the stream with it; never past this frame
        }
    }

    [UnmanagedCallersOnly]
    private static unsafe int SinkRead(nint bio, byte* data, int length)
    {
        OpenSslLibrary.BioClearFlags(bio, BioFlagsRetry);
        int n = length > 0 && t_sinkOwner is { } owner ? owner.TakeInput(data, length) : 0; // copies within bounds: cannot throw
        if (n > 0)
        {
            return n;
        }

        OpenSslLibrary.BioSetFlags(bio, BioFlagsRead | BioFlagsShouldRetry); // no more yet: SSL_read wants to read
        return -1;
    }

    /// <summary>
    /// Gives OpenSSL up to <paramref name="length"/> bytes of received ciphertext (under the lock, in ReadRecords): what
    /// was kept aside first, then the caller's buffer, which SSL_read decrypts over (see Decrypt for when that is safe).
    /// </summary>
    private unsafe int TakeInput(byte* data, int length)
    {
        int n = 0;
        if (_heldEnd > _heldStart)
        {
            n = Math.Min(length, _heldEnd - _heldStart);
            _held.AsSpan(_heldStart, n).CopyTo(new Span<byte>(data, n));
            _heldStart += n;
            if (_heldStart == _heldEnd)
            {
                ArrayPool<byte>.Shared.Return(_held!);
                _held = null;
                _heldStart = _heldEnd = 0;
            }
        }

        if (n < length && _in != null && _inEnd > _inStart)
        {
            int m = Math.Min(length - n, _inEnd - _inStart);
            new ReadOnlySpan<byte>(_in + _inStart, m).CopyTo(new Span<byte>(data + n, m));
            _inStart += m;
            n += m;
        }

        Frame(new ReadOnlySpan<byte>(data, n));
        return n;
    }

    /// <summary>
    /// Follows the record framing (RFC 8446 §5.1: 5-byte header, its last two bytes the length) over the bytes OpenSSL
    /// took, so that an end of input is known to fall between records or inside one, even right after a header, where
    /// OpenSSL holds nothing yet.
    /// </summary>
    private void Frame(ReadOnlySpan<byte> taken)
    {
        while (!taken.IsEmpty)
        {
            if (_bodyLeft > 0)
            {
                int body = Math.Min(_bodyLeft, taken.Length);
                _bodyLeft -= body;
                taken = taken[body..];
                continue;
            }

            if (_headerSeen == 0 && taken.Length >= 5)
            {
                _bodyLeft = (taken[3] << 8) | taken[4]; // a whole header at once: how OpenSSL asks for it
                taken = taken[5..];
                continue;
            }

            if (_headerSeen >= 3)
            {
                _recordLength = (_recordLength << 8) | taken[0];
            }

            taken = taken[1..];
            if (++_headerSeen == 5)
            {
                _bodyLeft = _recordLength;
                _headerSeen = 0;
                _recordLength = 0;
            }
        }
    }

    /// <summary>Whether the bytes OpenSSL took so far end inside a record (the sink's framing).</summary>
    private bool InsideRecord => _sink && (_headerSeen > 0 || _bodyLeft > 0);

    /// <summary>Keeps received ciphertext OpenSSL has not read yet for the next read (under the lock).</summary>
    private void Hold(ReadOnlySpan<byte> ciphertext)
    {
        if (ciphertext.IsEmpty)
        {
            return;
        }

        int from = _plainEnd > _plainStart ? _plainStart : _heldStart; // opened content waiting goes along (evp)
        int kept = _heldEnd - from;
        if (_held is null || _held.Length - _heldEnd < ciphertext.Length)
        {
            byte[] larger = ArrayPool<byte>.Shared.Rent(kept + ciphertext.Length);
            if (_held is not null)
            {
                _held.AsSpan(from, kept).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(_held);
            }

            _held = larger;
            if (_plainEnd > _plainStart)
            {
                _plainStart -= from;
                _plainEnd -= from;
            }

            _heldStart -= from;
            _heldEnd = kept;
        }

        ciphertext.CopyTo(_held.AsSpan(_heldEnd));
        _heldEnd += ciphertext.Length;
    }

    [UnmanagedCallersOnly]
    private static unsafe int SinkCreate(nint bio)
    {
        OpenSslLibrary.BioSetInit(bio, 1);
        return 1;
    }

    /// <summary>Takes what the sink was handed (under the lock, on the thread of the OpenSSL call).</summary>
    private void Append(ReadOnlySpan<byte> data)
    {
        Reserve(data.Length);
        data.CopyTo(_out.AsSpan(_outLength));
        _outLength += data.Length;
    }

    /// <summary>Room for <paramref name="length"/> more bytes of output (under the lock).</summary>
    private void Reserve(int length)
    {
        if (_out is null)
        {
            _out = ArrayPool<byte>.Shared.Rent(Math.Max(length, QueuedRoom));
        }
        else if (_out.Length - _outLength < length)
        {
            byte[] larger = ArrayPool<byte>.Shared.Rent(_outLength + length);
            _out.AsSpan(0, _outLength).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_out);
            _out = larger;
        }
    }

    /// <summary>
    /// Gives a drained memory BIO an empty buffer in place of the one the handshake grew (the ClientHello in, the
    /// server's flight and tickets out: about 1.5 KB per connection for the two), which a memory BIO otherwise keeps
    /// at its largest for the connection's life. BIO_C_SET_BUF_MEM frees the old buffer (the BIO owns it); records
    /// after this grow the new one only as far as they need.
    /// </summary>
    private static unsafe void ReleaseBioBuffer(nint bio)
    {
        if (OpenSslLibrary.BufMemNew == null || OpenSslLibrary.BioCtrl(bio, BioCtrlPending, 0, 0) != 0)
        {
            return;
        }

        nint empty = OpenSslLibrary.BufMemNew();
        if (empty != 0)
        {
            OpenSslLibrary.BioCtrl(bio, BioCSetBufMem, BioClose, empty);
        }
    }

    /// <summary>
    /// Disposes the SslStream that made the handshake, once the caller has read from it what it keeps (protocol,
    /// cipher, ALPN, the peer's certificate). The SSL object lives on under this stream's own reference, and the socket
    /// stays open (this stream closes it), so an idle connection no longer holds the SslStream, its authentication
    /// options and its certificate callback: about 500 bytes each. Call before the first read or write.
    /// </summary>
    public void ReleaseHandshake() => Interlocked.Exchange(ref _owner, null)?.Dispose();

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Flush() => _transport.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => _transport.FlushAsync(cancellationToken);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            // "Wait until there is something to read": OpenSSL may hold it already.
            return HasBuffered() ? new ValueTask<int>(0) : _transport.ReadAsync(buffer, cancellationToken);
        }

        int received = 0;
        while (true)
        {
            // The ciphertext is read into the caller's buffer, copied into the read BIO, then decrypted over it.
            if (received > 0 || !AwaitsInput())
            {
                int n = Decrypt(buffer.Span, received, out bool needInput);
                if (!needInput)
                {
                    return new ValueTask<int>(n);
                }
            }

            ValueTask<int> read = _transport.ReadAsync(buffer, cancellationToken);
            if (!read.IsCompletedSuccessfully)
            {
                return ReadPendingAsync(read, buffer, cancellationToken);
            }

            received = read.Result;
            if (received == 0)
            {
                return new ValueTask<int>(EndOfInput());
            }
        }
    }

    /// <summary>
    /// Whether a read has to wait for the socket before anything can be opened, as <see cref="Decrypt"/> would find
    /// under the lock: a protected connection that holds no received bytes and is neither ended by the peer, failed nor
    /// disposed. The usual state between requests, where it saves a trip through the lock. Read without the lock: only
    /// reads change the held bytes, the peer's end and the failure, and the caller is the reader; a dispose racing
    /// with it fails the transport's read instead.
    /// </summary>
    private bool AwaitsInput() => _protection is not null && _held is null && !_peerClosed && !_closed && _failure is null;

    [AsyncMethodBuilder(typeof(Appliance.Runtime.PooledValueTaskMethodBuilder<>))] // with io_uring reads, every connection of a round waits here at once
    private async ValueTask<int> ReadPendingAsync(ValueTask<int> read, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            int received = await read.ConfigureAwait(false);
            if (received == 0)
            {
                return EndOfInput();
            }

            int n = Decrypt(buffer.Span, received, out bool needInput);
            if (!needInput)
            {
                return n;
            }

            read = _transport.ReadAsync(buffer, cancellationToken);
        }
    }

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }

        int received = 0;
        while (true)
        {
            int n = Decrypt(buffer, received, out bool needInput);
            if (!needInput || buffer.IsEmpty)
            {
                return n;
            }

            received = _transport.Read(buffer);
            if (received == 0)
            {
                return EndOfInput();
            }
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return default;
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken); // before sealing: a sealed record not sent would desync
        }

        byte[] records = Encrypt(buffer.Span, out int length, out Task? after);
        return after is null ? SendAsync(records, length, cancellationToken) : SendAfterAsync(after, records, length, cancellationToken);
    }

    /// <summary>Sends sealed records and gives their pooled buffer back once the socket has them.</summary>
    private ValueTask SendAsync(byte[] records, int length, CancellationToken cancellationToken)
    {
        ValueTask send;
        try
        {
            send = _transport.WriteAsync(records.AsMemory(0, length), cancellationToken);
        }
        catch
        {
            RecordBuffers.Pool.Return(records);
            WriteDone();
            throw;
        }

        if (send.IsCompletedSuccessfully)
        {
            RecordBuffers.Pool.Return(records);
            WriteDone();
            return default;
        }

        return SendPendingAsync(send, records);
    }

    [AsyncMethodBuilder(typeof(Appliance.Runtime.PooledValueTaskMethodBuilder))] // every write waits for its loop's round with io_uring sends
    private async ValueTask SendPendingAsync(ValueTask send, byte[] records)
    {
        try
        {
            await send.ConfigureAwait(false);
        }
        finally
        {
            RecordBuffers.Pool.Return(records);
            WriteDone();
        }
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return;
        }

        byte[] records = Encrypt(buffer, out int length, out Task? after);
        try
        {
            after?.GetAwaiter().GetResult(); // the handshake's last records, sent alone, go first (not on a loop thread: its ring sends them)
            _transport.Write(records.AsSpan(0, length));
        }
        finally
        {
            RecordBuffers.Pool.Return(records);
            WriteDone();
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>
    /// Sends close_notify, as SslStream.ShutdownAsync does: the peer reads the end of our data as an end, not a cut
    /// (a tunnel whose client finished sending). Reading stays possible.
    /// </summary>
    public unsafe ValueTask ShutdownAsync(CancellationToken cancellationToken = default)
    {
        byte[] records;
        int length;
        Task? after;
        _lock.Enter();
        try
        {
            ThrowIfClosed();
            ThrowIfFailed(); // after our fatal alert, no close_notify
            if (_closeNotifySent)
            {
                return default; // once: a second SSL_shutdown would wait for the peer's close_notify instead
            }

            _closeNotifySent = true;
            if (_protection is not null)
            {
                records = SealAlert(AlertWarning, CloseNotify, out length);
            }
            else
            {
                OpenSslLibrary.SslSetQuietShutdown(_ssl, 0); // .NET's contexts shut down quietly (no close_notify) unless told
                t_sinkOwner = this;
                try
                {
                    if (OpenSslLibrary.SslShutdown(_ssl) < 0)
                    {
                        throw Failure("shutdown");
                    }
                }
                finally
                {
                    t_sinkOwner = null;
                }

                records = TakeOutput(QueuedRoom, out length);
            }

            after = PrefaceFirstLocked(ref records, ref length);
            if (length > 0)
            {
                _writing = true; // until WriteDone
            }
        }
        finally
        {
            _lock.Exit();
        }

        if (length == 0)
        {
            ArrayPool<byte>.Shared.Return(records);
            return default; // sent before
        }

        return after is null ? SendAsync(records, length, cancellationToken) : SendAfterAsync(after, records, length, cancellationToken);
    }

    /// <summary>
    /// Whether decrypted bytes, or received records not yet decrypted, may wait inside OpenSSL. Read without the lock:
    /// only reads change these, and the caller is the reader.
    /// </summary>
    private bool HasBuffered() => _protection is not null ? ProtectedBuffered() : _inputQueued || _plaintextPending;

    /// <summary>
    /// Hands the first <paramref name="received"/> bytes of <paramref name="buffer"/> (ciphertext) to OpenSSL, then
    /// decrypts what it holds into the buffer: the bytes, 0 with <paramref name="needInput"/> when it needs more
    /// ciphertext first, or 0 at the peer's close_notify. Whole records already received fill the buffer as far as
    /// they go.
    /// </summary>
    private int Decrypt(Span<byte> buffer, int received, out bool needInput)
    {
        bool alert = false;
        try
        {
            _lock.Enter();
            try
            {
                ThrowIfClosed();
                ThrowIfFailed();
                try
                {
                    return _protection is not null ? OpenReceived(buffer, received, out needInput) : DecryptLocked(buffer, received, out needInput);
                }
                catch (IOException e)
                {
                    // A refused record fails the connection; its fatal alert (RFC 8446 §5.2, RFC 5246 §7.2.2) leaves
                    // once no write is in flight.
                    _failure = e.Message;
                    alert = !_closeNotifySent && TakeFatalAlert(e);
                    throw;
                }
            }
            finally
            {
                _lock.Exit();
            }
        }
        finally
        {
            if (alert)
            {
                _ = SendAlertAsync(); // starts now: on a socket with room it is sent before the caller closes
            }
        }
    }

    /// <summary>
    /// Puts the fatal alert for <paramref name="refused"/> in <see cref="_alert"/> (under the lock): sealed here for a
    /// protected connection, or what OpenSSL sealed into its output (bad_record_mac, record_overflow, ...), where
    /// nothing else would take it. False when there is none.
    /// </summary>
    private bool TakeFatalAlert(IOException refused)
    {
        if (_protection is not null)
        {
            if (refused is not TlsAlertException { Alert: var code })
            {
                return false;
            }

            _alert = SealAlert(AlertFatal, code, out _alertLength);
            return true;
        }

        if (PendingOutput() == 0)
        {
            return false;
        }

        _alert = TakeOutput(QueuedRoom, out _alertLength);
        return true;
    }

    /// <summary>Decrypt on OpenSSL's record layer (under the lock).</summary>
    private unsafe int DecryptLocked(Span<byte> buffer, int received, out bool needInput)
    {
        if (received > 0)
        {
            if (_sink && _heldEnd == _heldStart && OpenSslLibrary.SslHasPending(_ssl) == 0)
            {
                // Read in place by ReadRecords: every record starts in this buffer (or only its header came
                // before), so each record's plaintext, shorter than its ciphertext, lands only on bytes OpenSSL has
                // read already: OpenSSL reads a whole record before it writes any of it (no read-ahead here).
                _inReceived = received;
                _inputQueued = true;
            }
            else
            {
                // With the sink, part of a record came with an earlier read: its plaintext can be longer than
                // what of this buffer OpenSSL has read by then and would overwrite the rest, so the bytes are
                // kept aside.
                Feed(buffer[..received]);
            }
        }

        if (!_inputQueued && !_plaintextPending)
        {
            needInput = true; // nothing to decrypt: skip the SSL_read that would only say so
            return 0;
        }

        int read;
        t_sinkOwner = this; // what reading makes OpenSSL send (a KeyUpdate's answer) waits for our next write
        try
        {
            read = ReadRecords(buffer, out needInput);
        }
        finally
        {
            t_sinkOwner = null;
        }

        if (_tls12 && PendingOutput() > 0)
        {
            // OpenSSL answered a ClientHello with a no_renegotiation warning, which would wait for our next write
            // while the client waits for it: close instead, as nginx does (the warning is dropped, not sent).
            ArrayPool<byte>.Shared.Return(TakeOutput(QueuedRoom, out _));
            throw new IOException("The peer asked to renegotiate TLS, which this gateway does not allow.");
        }

        return read;
    }

    /// <summary>
    /// SSL_read until the buffer is full or OpenSSL holds nothing more (under the lock). What a call that returned
    /// nothing means is read from the SSL object's own state (SSL_want, SSL_get_shutdown) rather than SSL_get_error,
    /// which looks at the thread's error queue first: so that queue needs no clearing before each call, where .NET's
    /// shim clears it before every one (some 800 instructions each).
    /// </summary>
    private unsafe int ReadRecords(Span<byte> destination, out bool needInput)
    {
        fixed (byte* p = destination)
        {
            if (_sink)
            {
                _in = p;
                _inStart = 0;
                _inEnd = _inReceived;
                _inReceived = 0;
            }

            try
            {
                return ReadRecords(p, destination.Length, out needInput);
            }
            finally
            {
                if (_sink)
                {
                    // The caller's buffer goes back to it: what OpenSSL did not read of it yet is kept.
                    int start = _inStart, end = _inEnd;
                    _in = null;
                    _inStart = _inEnd = 0;
                    Hold(new ReadOnlySpan<byte>(p + start, end - start));
                }
            }
        }
    }

    private unsafe int ReadRecords(byte* p, int length, out bool needInput)
    {
        needInput = false;
        int total = 0;
        while (true)
        {
            int n = OpenSslLibrary.SslRead(_ssl, p + total, length - total);
            if (n > 0)
            {
                total += n;
                // What OpenSSL still holds: the rest of a record longer than the buffer, or records (a close_notify
                // among them) it has taken from the BIO but not processed yet, which SSL_has_pending also counts.
                _plaintextPending = OpenSslLibrary.SslHasPending(_ssl) != 0;
                _inputQueued = PendingInput() > 0;
                if (total == length || !(_plaintextPending || _inputQueued))
                {
                    return total;
                }

                continue; // more records came with the same read
            }

            if (total > 0)
            {
                return total; // these bytes now; a close or an error shows again at the next read
            }

            _inputQueued = _plaintextPending = false;
            if (OpenSslLibrary.SslWant(_ssl) == SslReading)
            {
                needInput = true;
                return 0;
            }

            // OpenSSL marks the peer's side shut at a fatal alert too, with the alert on the error queue.
            if ((OpenSslLibrary.SslGetShutdown(_ssl) & SslReceivedShutdown) != 0 && OpenSslLibrary.ErrPeekError() == 0)
            {
                return 0; // close_notify
            }

            throw Failure("read");
        }
    }

    private unsafe int PendingInput() =>
        _sink ? _heldEnd - _heldStart + (_in != null ? _inEnd - _inStart : 0) : (int)OpenSslLibrary.BioCtrl(_rbio, BioCtrlPending, 0, 0);

    private unsafe int PendingOutput() => _sink ? _outLength : (int)OpenSslLibrary.BioCtrl(_wbio, BioCtrlPending, 0, 0);

    /// <summary>Whether sealed records go straight to this stream (tests); otherwise through a memory BIO.</summary>
    internal bool UsesSink => _sink;

    /// <summary>
    /// The bytes the read and write sides hold allocated (tests): the sink's kept buffers, or the memory BIOs' BUF_MEM
    /// max, through BIO_C_GET_BUF_MEM_PTR.
    /// </summary>
    internal unsafe (long Read, long Write) BioCapacity()
    {
        _lock.Enter();
        try
        {
            return _sink || _protection is not null ? (_held?.Length ?? 0, _out?.Length ?? 0) : (Capacity(_rbio), Capacity(_wbio));
        }
        finally
        {
            _lock.Exit();
        }

        static long Capacity(nint bio)
        {
            nint bufMem = 0;
            OpenSslLibrary.BioCtrl(bio, BioCGetBufMemPtr, 0, (nint)(&bufMem));
            return bufMem == 0 ? -1 : (long)((nuint*)bufMem)[2]; // struct buf_mem_st { size_t length; char *data; size_t max; ... }
        }
    }

    /// <summary><see cref="Feed"/> under the lock (for a new stream, from outside its instance methods).</summary>
    private void FeedGuarded(ReadOnlySpan<byte> ciphertext)
    {
        _lock.Enter();
        try
        {
            Feed(ciphertext);
        }
        finally
        {
            _lock.Exit();
        }
    }

    /// <summary>Hands received ciphertext to OpenSSL: kept aside for the sink, or into the read memory BIO (which takes all of it). Under the lock.</summary>
    private unsafe void Feed(ReadOnlySpan<byte> ciphertext)
    {
        if (_protection is not null)
        {
            Hold(ciphertext); // whole records are opened by the next read
            return;
        }

        if (_sink)
        {
            Hold(ciphertext);
            _inputQueued = true;
            return;
        }

        fixed (byte* p = ciphertext)
        {
            if (OpenSslLibrary.BioWrite(_rbio, p, ciphertext.Length) != ciphertext.Length)
            {
                throw Failure("read");
            }
        }

        _inputQueued = true;
    }

    /// <summary>The socket ended: fine between records (as SslStream, no close_notify required), not inside one.</summary>
    private unsafe int EndOfInput()
    {
        _lock.Enter();
        try
        {
            ThrowIfClosed();
            // Part of a record, still in the BIO or already in OpenSSL's record buffer.
            if (_protection is not null ? _heldEnd > _heldStart || _handshakeLength > 0
                : PendingInput() > 0 || OpenSslLibrary.SslHasPending(_ssl) != 0 || InsideRecord)
            {
                throw new IOException("The peer closed the connection in the middle of a TLS record.");
            }
        }
        finally
        {
            _lock.Exit();
        }

        return 0;
    }


    /// <summary>
    /// Seals <paramref name="plaintext"/> into records: a pooled buffer holding <paramref name="length"/> bytes to send
    /// (with the handshake's last records in front when they are still here), once <paramref name="after"/> (when not
    /// null) has completed.
    /// </summary>
    private byte[] Encrypt(ReadOnlySpan<byte> plaintext, out int length, out Task? after)
    {
        _lock.Enter();
        try
        {
            byte[] records = EncryptLocked(plaintext, out length);
            after = PrefaceFirstLocked(ref records, ref length);
            return records;
        }
        finally
        {
            _lock.Exit();
        }
    }

    /// <summary>Encrypt's work (under the lock).</summary>
    private unsafe byte[] EncryptLocked(ReadOnlySpan<byte> plaintext, out int length)
    {
        ThrowIfClosed();
        if (_protection is not null)
        {
            return EncryptProtected(plaintext, out length);
        }

        ThrowIfFailed();

        // Room for every record's framing and for records OpenSSL queued on its own (a KeyUpdate's answer, an
        // alert): the sink's buffer does not grow during the write, and one BIO_read takes it all from a memory BIO.
        int capacity = plaintext.Length + ((plaintext.Length / MaxRecordPlaintext) + 1) * RecordOverhead + QueuedRoom;
        if (_sink)
        {
            Reserve(capacity);
            t_sinkOwner = this;
        }

        try
        {
            fixed (byte* p = plaintext)
            {
                int written = 0;
                while (written < plaintext.Length)
                {
                    int n = OpenSslLibrary.SslWrite(_ssl, p + written, plaintext.Length - written);
                    if (n <= 0)
                    {
                        throw Failure("write"); // neither BIO makes a write wait: only a failure stops it
                    }

                    written += n;
                }
            }
        }
        finally
        {
            t_sinkOwner = null;
        }

        byte[] records = TakeOutput(capacity, out length);
        if (length == 0)
        {
            ArrayPool<byte>.Shared.Return(records);
            throw Failure("write");
        }

        _writing = true; // until WriteDone: an alert of ours waits for these records
        return records;
    }

    /// <summary>
    /// Everything written to send, in a pooled buffer (under the lock): the sink's own buffer, or from a memory BIO one
    /// of at least <paramref name="capacity"/> bytes, where only a buffer the first BIO_read fills makes us ask how
    /// much is left.
    /// </summary>
    private unsafe byte[] TakeOutput(int capacity, out int length)
    {
        if (_sink)
        {
            byte[] taken = _out ?? ArrayPool<byte>.Shared.Rent(1);
            length = _outLength;
            _out = null;
            _outLength = 0;
            return taken;
        }

        byte[] records = ArrayPool<byte>.Shared.Rent(capacity);
        length = 0;
        while (true)
        {
            int n;
            fixed (byte* r = records)
            {
                n = OpenSslLibrary.BioRead(_wbio, r + length, records.Length - length);
            }

            length += Math.Max(n, 0);
            int more = length < records.Length ? 0 : PendingOutput();
            if (more <= 0)
            {
                return records;
            }

            byte[] larger = ArrayPool<byte>.Shared.Rent(length + more);
            records.AsSpan(0, length).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(records);
            records = larger;
        }
    }

    /// <summary>Sends our fatal alert unless a write is in flight, whose end sends it (<see cref="WriteDone"/>). Never throws.</summary>
    private async Task SendAlertAsync()
    {
        byte[] alert;
        int length;
        _lock.Enter();
        try
        {
            if (_alert is null || _writing || _closed)
            {
                return;
            }

            alert = _alert;
            length = _alertLength;
            _alert = null;
            _ = PrefaceFirstLocked(ref alert, ref length); // never one on its way alone: that is a write in flight
            _writing = true;
        }
        finally
        {
            _lock.Exit();
        }

        try
        {
            await _transport.WriteAsync(alert.AsMemory(0, length)).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The connection is failing: the alert is a courtesy, and the socket may be gone already.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(alert);
            _lock.Enter();
            try
            {
                _writing = false;
            }
            finally
            {
                _lock.Exit();
            }
        }
    }

    /// <summary>A write's records reached the socket (or failed): an alert waiting for it goes now.</summary>
    private void WriteDone()
    {
        bool alert;
        _lock.Enter();
        try
        {
            _writing = false;
            alert = _alert is not null;
        }
        finally
        {
            _lock.Exit();
        }

        if (alert)
        {
            _ = SendAlertAsync();
        }
    }

    private void ThrowIfFailed()
    {
        if (_failure is { } why)
        {
            throw new IOException("TLS connection failed earlier: " + why);
        }
    }

    /// <summary>An I/O error with OpenSSL's reason; leaves the thread's error queue empty.</summary>
    private static unsafe IOException Failure(string direction)
    {
        nuint code = OpenSslLibrary.ErrPeekError();
        string detail = "";
        if (code != 0)
        {
            byte* text = stackalloc byte[256];
            OpenSslLibrary.ErrErrorStringN(code, text, 256);
            detail = ": " + Encoding.ASCII.GetString(text, new ReadOnlySpan<byte>(text, 256).IndexOf((byte)0) is int end and >= 0 ? end : 256);
        }

        OpenSslLibrary.ErrClearError();
        return new IOException($"TLS {direction} failed{detail}");
    }

    private void ThrowIfClosed()
    {
        if (_closed)
        {
            throw new ObjectDisposedException(nameof(TlsRecordStream));
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _lock.Enter();
            try
            {
                _closed = true; // no OpenSSL call starts after this, and none is running
                if (_out is { } pending)
                {
                    _out = null;
                    _outLength = 0;
                    ArrayPool<byte>.Shared.Return(pending);
                }

                if (_held is { } held)
                {
                    _held = null;
                    _heldStart = _heldEnd = 0;
                    ArrayPool<byte>.Shared.Return(held);
                }

                if (_alert is { } alert)
                {
                    _alert = null;
                    ArrayPool<byte>.Shared.Return(alert);
                }

                ReleasePrefaceLocked();
            }
            finally
            {
                _lock.Exit();
            }

            _lock.Enter();
            try
            {
                _protection?.Dispose(); // no seal or open is running, and none starts
            }
            finally
            {
                _lock.Exit();
            }

            _handle?.DangerousRelease(); // frees the SSL object once the SslStream has let it go (or now, if it has)
            Interlocked.Exchange(ref _owner, null)?.Dispose();
            _transport.Dispose();
        }

        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
        return default;
    }

    /// <summary>
    /// SslStream's SSL handle (a SafeSslHandle: its handle is the SSL object). A field of an inaccessible type, which
    /// UnsafeAccessor cannot return, so it is read through its FieldInfo: the trimmer sees the literal name and keeps
    /// the field, and native AOT reads it without a warning. Once per connection.
    /// </summary>
    private static readonly FieldInfo? s_securityContext =
        typeof(SslStream).GetField("_securityContext", BindingFlags.NonPublic | BindingFlags.Instance);

    /// <summary>The SSL object of <paramref name="stream"/>; 0 where this runtime's SslStream cannot be reached.</summary>
    internal static nint SslHandle(SslStream stream)
    {
        try
        {
            return SecurityContext(stream) is SafeHandle { IsInvalid: false } context ? context.DangerousGetHandle() : 0;
        }
        catch (Exception e) when (e is MissingMemberException or InvalidCastException)
        {
            return 0;
        }
    }

    private static object? SecurityContext(SslStream stream) =>
        (s_securityContext ?? throw new MissingFieldException(nameof(SslStream), "_securityContext")).GetValue(stream);

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "ReturnReadBufferIfEmpty")]
    private static extern void ReturnReadBufferIfEmpty(SslStream stream);

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "get_InputBio")]
    [return: UnsafeAccessorType(SafeBioHandle)]
    private static extern object InputBio([UnsafeAccessorType(SafeSslHandle)] object ssl);

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "get_OutputBio")]
    [return: UnsafeAccessorType(SafeBioHandle)]
    private static extern object OutputBio([UnsafeAccessorType(SafeSslHandle)] object ssl);
}

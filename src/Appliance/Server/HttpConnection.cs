using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Appliance.Protocol.Http2;
using Appliance.Transport;
using Microsoft.Extensions.Logging;

namespace Appliance.Server;

/// <summary>
/// One accepted socket from start to end: TLS handshake with SNI and ALPN (Kestrel's layering: TLS wraps the
/// stream, the HTTP layer sees only the pipe pair above it), then the protocol loop the handshake chose.
/// </summary>
public sealed class HttpConnection : TrackedConnection
{
    // The writer hands SslStream each segment as a write of its own, and each write is an SSL_write (OpenSSL cuts it
    // into records of at most 16 KiB) and a send: 4 KiB segments turned a 16 KiB body into five of each, and 16 KiB
    // ones a 16 KiB body with its head into two. 32 KiB is SslStream's largest write on Linux (StreamSizes), so such
    // a response leaves in one write and one send.
    private const int OutputSegmentSize = 32 * 1024;

    private static int s_recordLayerFallbackLogged;

    private readonly Socket _socket;
    private readonly SocketListener _listener;
    private readonly ListenerRuntime _runtime;
    private readonly ConnectionRegistry _registry;
    private readonly ILogger _logger;
    private volatile Http1Connection? _http1;
    private volatile Http2Connection? _http2;

    /// <summary>The HTTP/2 side of this connection once it speaks HTTP/2 (tests look at its stream pool).</summary>
    internal Http2Connection? Http2 => _http2;
    private volatile bool _handshaking;
    private volatile bool _closeRequested;
    private volatile bool _aborted;
    private volatile Stream? _transport;
    private Task? _served;       // once the protocol runs: its task, and the connection's reader and stream, which
    private PipeReader? _input;  // OnServed closes when the task ends
    private Stream? _stream;
    private Stream? _network;    // the socket's own stream, under any TLS layer

    public HttpConnection(Socket socket, SocketListener listener, ListenerRuntime runtime, ConnectionRegistry registry, ILogger logger)
    {
        _socket = socket;
        _listener = listener;
        _runtime = runtime;
        _registry = registry;
        _logger = logger;
    }

    /// <summary>
    /// Serves the connection: its handshake, then the protocol it chose, whose end closes the connection. Never
    /// faults: the listener does not await it, and whatever ends the connection is logged here or in
    /// <see cref="OnServed"/>. Its task ends once the protocol runs: what holds an idle connection's state is the
    /// protocol's own, not this method's as well.
    /// </summary>
    public async Task RunAsync()
    {
        ConnectionInfo info;
        Stream network;
        try
        {
            info = new ConnectionInfo
            {
                Id = Id,
                ListenerName = _runtime.Name,
                RemoteEndPoint = _socket.RemoteEndPoint,
                LocalEndPoint = LocalAddress(),
                Peer = _socket.AddressFamily == AddressFamily.Unix && PeerCredentials.TryGet(_socket, out PeerCredentials peer) ? peer : null,
            };
            network = _network = SocketEngine.Open(_socket);
        }
        catch (Exception e)
        {
            // A socket reset before we asked its address, an epoll registration refused: nothing was registered yet.
            _logger.LogInformation("connection {Id} on {Listener}: not started: {Reason}", Id, _runtime.Name, e.Message);
            _socket.Dispose();
            _listener.Release();
            return;
        }

        _transport = network;
        Stream stream = network;
        PipeReader? input = null;
        bool handedOver = false;
        _registry.Add(this);
        try
        {
            ListenerRuntime.State state = _runtime.Current;
            if (state.Certificates is { } certificates)
            {
                (stream, bool established) = await HandshakeAsync(network, state, certificates, info).ConfigureAwait(false);
                if (!established)
                {
                    return;
                }
            }

            // A connection accepted before a drain began still gets its first request answered (with
            // Connection: close, or a GOAWAY on HTTP/2): the client sent it in good faith, and a socket-activated
            // restart must not turn it into an error.
            input = new ConnectionReader(stream);
            bool h2 = info.ApplicationProtocol == "h2"
                || (!info.IsTls && state.Http2Enabled && await StartsWithPrefaceAsync(input).ConfigureAwait(false));
            Task serving;
            if (h2)
            {
                info.ApplicationProtocol = "h2";
                var http2 = new Http2Connection(input, stream, this, _runtime, info, _logger);
                _http2 = http2;
                if (_closeRequested)
                {
                    http2.RequestClose();
                }

                serving = http2.ProcessAsync();
            }
            else
            {
                serving = RunHttp1Async(input, stream, info);
            }

            // From here the connection lives in the protocol's task, and its end closes the connection: a delegate
            // of 64 B waits on it rather than this method's state machine (216 B), for each of thousands of idle
            // connections.
            _served = serving;
            _input = input;
            _stream = stream;
            handedOver = true;
            if (stream is Tls.TlsRecordStream { HoldsPreface: true } records && !EventLoop.TryDefer(records))
            {
                // The protocol has written what this round had (a response to a request that came with the
                // client's Finished, HTTP/2's SETTINGS), and the handshake's last records went with it; if not, they
                // go at the end of the round (or now, off a loop thread): a TLS 1.2 client waits for them.
                records.FlushPreface();
            }

            if (serving.IsCompleted)
            {
                OnServed();
            }
            else
            {
                serving.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(OnServed);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or SocketException)
        {
            // The peer went away or sent garbage right after the handshake: nothing to answer.
        }
        catch (Exception e)
        {
            _logger.LogError(e, "connection {Id} on {Listener}: failed", Id, _runtime.Name);
        }
        finally
        {
            if (!handedOver)
            {
                await CloseAsync(input, stream).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The connection's local address: the listener's own when it is bound to one address (or a Unix socket), so
    /// most connections ask the kernel nothing and hold no endpoint of their own; the socket's on a wildcard listener.
    /// </summary>
    private EndPoint? LocalAddress() =>
        _listener.LocalEndPoint is IPEndPoint { Address: var bound } && (bound.Equals(IPAddress.Any) || bound.Equals(IPAddress.IPv6Any))
            ? _socket.LocalEndPoint
            : _listener.LocalEndPoint;

    /// <summary>
    /// The protocol's task ended: what ended it is logged unless it is the usual (a peer gone, an abort), and the
    /// connection closes, whatever the logging does (this runs as a bare continuation: nothing above it would catch).
    /// </summary>
    private void OnServed()
    {
        try
        {
            if (_served!.Exception?.InnerException is { } e && e is not (IOException or ObjectDisposedException or OperationCanceledException or SocketException))
            {
                _logger.LogError(e, "connection {Id} on {Listener}: failed", Id, _runtime.Name);
            }
        }
        catch
        {
            // A logger that failed: the connection still closes.
        }
        finally
        {
            _ = CloseAsync(_input, _stream!);
        }
    }

    /// <summary>
    /// Closes the connection: completes its reader (when it has one), sends FIN so the client reads the last
    /// response before the connection ends, disposes the stream (the record layer or SslStream, and the socket), and
    /// gives back its place in the registry and the listener. Never faults.
    /// </summary>
    private async Task CloseAsync(PipeReader? input, Stream stream)
    {
        bool lingered = input is not null && _http1 is { ClosesWithInputLeft: true };
        if (lingered)
        {
            ShutdownSend();
            await LingerAsync(input!).ConfigureAwait(false);
        }

        if (input is not null)
        {
            try
            {
                await input.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _logger.LogError(e, "connection {Id} on {Listener}: close failed", Id, _runtime.Name);
            }
        }

        if (!lingered)
        {
            ShutdownSend();
        }

        try
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _logger.LogError(e, "connection {Id} on {Listener}: close failed", Id, _runtime.Name);
        }

        _registry.Remove(this);
        _listener.Release();
    }

    /// <summary>
    /// The TLS handshake (after a TLS-ALPN-01 answer, while one waits): the stream the connection goes on with, or the
    /// one to close when it does not (the handshake failed, or it answered a challenge). A method of its own so that
    /// what only the handshake needs (SslStream, the stream under it, the flight observer) is not held in the
    /// connection's state machine for the connection's life: an idle connection keeps the record layer only.
    /// </summary>
    private async Task<(Stream Stream, bool Established)> HandshakeAsync(Stream network, ListenerRuntime.State state, Tls.CertificateStore certificates, ConnectionInfo info)
    {
        _handshaking = true;
        SetDeadline(state.Limits.HandshakeTimeout);
        Stream transport = network;
        if (state.AcmeChallenges is { TlsAlpnPending: true } challenges)
        {
            // Only while a TLS-ALPN-01 challenge waits: read the ClientHello first, since SslStream's
            // callback sees no ALPN list (the bytes are replayed to the handshake that follows).
            (transport, bool answered) = await AnswerTlsAlpnChallengeAsync(network, challenges, info).ConfigureAwait(false);
            if (answered)
            {
                return (transport, false);
            }
        }

        // Whether the handshake resumed a session is read from the server's first flight: watched by the
        // socket stream itself when SslStream sits right on it, so no stream in between stays in every read
        // and write of the connection after the handshake.
        var socketStream = transport as SocketStream;
        Tls.ServerFlightObserver flight;
        Stream inner = transport;
        if (socketStream is not null)
        {
            flight = new Tls.ServerFlightObserver();
            socketStream.SendObserver = flight.Observe;
        }
        else
        {
            var observer = new Tls.HandshakeObserverStream(transport);
            flight = observer.Observer;
            inner = observer;
        }

        // With the record layer taken over after the handshake (Tls.TlsRecordStream), SslStream reads the
        // handshake through a stream that stops at record boundaries, so it is left holding nothing after it.
        Tls.RecordBoundedStream? bounded = null;
        if (Tls.TlsRecordStream.Usable)
        {
            // It also keeps what SslStream writes until the socket is read next, so the handshake's last records
            // (a TLS 1.3 ticket) go with the first response (TlsRecordStream's preface; RunAsync sends them alone
            // at the end of the round when nothing took them).
            inner = bounded = new Tls.RecordBoundedStream(inner, holdWrites: true);
        }

        var ssl = new SslStream(inner, leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsServerAsync(certificates.SelectAsync, null, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            if (bounded is not null)
            {
                await SendKeptAsync(bounded).ConfigureAwait(false); // an alert SslStream wrote leaves before the close
            }

            string reason = HandshakeFailureReason(e);
            Telemetry.TlsHandshakeCounters.Failed();
            _logger.LogInformation("connection {Id} from {Remote}: TLS handshake failed: {Reason}", Id, info.RemoteEndPoint, reason);
            return (ssl, false);
        }
        finally
        {
            _handshaking = false;
            ClearDeadline();
            if (socketStream is not null)
            {
                socketStream.SendObserver = null;
                flight.Dispose();
            }
        }

        Stream stream = ssl;
        try
        {
            Tls.TlsRecordStream? records = bounded is not null ? Tls.TlsRecordStream.TryCreate(ssl, bounded) : null;
            if (records is not null)
            {
                stream = records;
            }
            else if (bounded is not null)
            {
                if (Tls.TlsRecordStream.Unavailable is { } why && Interlocked.Exchange(ref s_recordLayerFallbackLogged, 1) == 0)
                {
                    _logger.LogWarning("TLS connections stay on SslStream's record layer: {Reason}", why);
                }

                // SslStream goes on over the bounded stream: its writes pass straight through from here, after what
                // it wrote last (its ticket), which leaves now.
                bounded.StopHolding();
                await bounded.FlushOutputAsync().ConfigureAwait(false);
            }

            Telemetry.TlsHandshakeCounters.RecordLayer(stream);

            info.IsTls = true;
            info.ServerName = SharedServerName(ssl.TargetHostName);
            info.TlsProtocol = ssl.SslProtocol;
            info.CipherSuite = ssl.NegotiatedCipherSuite;
            info.ApplicationProtocol = ProtocolName(ssl.NegotiatedApplicationProtocol);
            info.TlsResumed = flight.Resumed;
            Telemetry.TlsHandshakeCounters.Completed(info.TlsResumed);
            if (ssl.RemoteCertificate is { } client)
            {
                info.SetClientCertificate(
                    client as System.Security.Cryptography.X509Certificates.X509Certificate2
                        ?? new System.Security.Cryptography.X509Certificates.X509Certificate2(client),
                    certificates.Options);
            }

            records?.ReleaseHandshake(); // read what the connection keeps from SslStream first
            return (stream, true);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false); // the record layer or SslStream: the SSL object and the socket
            throw;
        }
    }

    /// <summary>FIN after what was written (a write still queued for the loop's round, a fatal alert, leaves first); never throws.</summary>
    private void ShutdownSend()
    {
        try
        {
            if (_socket.Connected)
            {
                if (_network is SocketStream network)
                {
                    network.ShutdownSend();
                }
                else
                {
                    _socket.Shutdown(SocketShutdown.Send);
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>The longest a lingering close waits for the client to stop sending (nginx's lingering_time).</summary>
    internal static readonly TimeSpan LingeringTime = TimeSpan.FromSeconds(30);

    /// <summary>The longest it waits for the client's next bytes (nginx's lingering_timeout).</summary>
    internal static readonly TimeSpan LingeringTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// RFC 9112 §9.6's lingering close, as nginx's lingering_close: the response has left, the client may still be
    /// sending (a body the server refused or did not read). Closing now, with its bytes unread, would make the kernel
    /// reset the connection, and a client still sending may lose the response to the reset. So, after the FIN the
    /// caller sends: read and discard through the connection's reader (which may have a read of the stream in
    /// flight) until the client closes, <see cref="LingeringTimeout"/> passes without a byte, or
    /// <see cref="LingeringTime"/> in all. Never throws.
    /// </summary>
    private static async Task LingerAsync(PipeReader input)
    {
        try
        {
            long deadline = Environment.TickCount64 + (long)LingeringTime.TotalMilliseconds;
            while (true)
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0)
                {
                    return;
                }

                using var quiet = new CancellationTokenSource(TimeSpan.FromMilliseconds(Math.Min(left, LingeringTimeout.TotalMilliseconds)));
                ReadResult read = await input.ReadAsync(quiet.Token).ConfigureAwait(false);
                input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted || read.IsCanceled)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // The client went, sent garbage, or stayed quiet: close now.
        }
    }

    /// <summary>What the handshake wrote and the bounded stream kept, sent on a handshake that failed (an alert); never throws.</summary>
    private static async Task SendKeptAsync(Tls.RecordBoundedStream bounded)
    {
        try
        {
            await bounded.FlushOutputAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    private static string? s_lastServerName;

    /// <summary>
    /// The SNI name, as the same string instance as the last connection's when it is the same name (most clients of
    /// a listener ask for one host): not one more string per idle connection. Null when the client sent none.
    /// </summary>
    private static string? SharedServerName(string name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return null;
        }

        string? last = Volatile.Read(ref s_lastServerName);
        if (last == name)
        {
            return last;
        }

        Volatile.Write(ref s_lastServerName, name);
        return name;
    }

    /// <summary>The negotiated ALPN protocol's name: one shared string for the usual two, not one per connection.</summary>
    private static string ProtocolName(SslApplicationProtocol protocol) =>
        protocol == SslApplicationProtocol.Http2 ? "h2"
        : protocol == SslApplicationProtocol.Http11 ? "http/1.1"
        : protocol.ToString();

    /// <summary>Whether an HTTP/1.1 connection holds a request context now (tests: not while it waits idle).</summary>
    internal bool HoldsRequestState => _http1?.HoldsRequestState ?? false;

    /// <summary>Not async: the connection completes its own output, so no state machine of this method is held for the connection's life.</summary>
    private Task RunHttp1Async(PipeReader input, Stream stream, ConnectionInfo info)
    {
        PipeWriter output = new ConnectionWriter(stream, OutputSegmentSize);
        var http1 = new Http1Connection(input, output, this, _runtime, info, _logger);
        _http1 = http1;
        if (_closeRequested)
        {
            http1.RequestClose();
        }

        return http1.ProcessAsync();
    }

    /// <summary>
    /// RFC 8737 §3: a ClientHello that offers ALPN "acme-tls/1" (alone) for a name with a pending TLS-ALPN-01 challenge gets
    /// the validation certificate, "acme-tls/1" as the only protocol, and a close after the handshake. Anything else
    /// goes on to the usual handshake over the returned stream, which replays the bytes read here.
    /// </summary>
    private async Task<(Stream Transport, bool Answered)> AnswerTlsAlpnChallengeAsync(Stream network, Tls.Acme.PendingChallenges challenges, ConnectionInfo info)
    {
        (byte[] received, int length, Tls.ClientHelloReader.ClientHello? hello) read;
        try
        {
            read = await Tls.ClientHelloReader.ReceiveAsync(network, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            _handshaking = false;
            ClearDeadline();
            Telemetry.TlsHandshakeCounters.Failed();
            _logger.LogInformation("connection {Id} from {Remote}: TLS handshake failed: {Reason}", Id, info.RemoteEndPoint, e.Message);
            return (network, true); // nothing more to do on this connection
        }

        (byte[] received, int length, Tls.ClientHelloReader.ClientHello? hello) = read;
        var replay = new Tls.ReplayStream(received, length, network);
        // RFC 8737 §4: the validating server offers "acme-tls/1" as its single protocol; a client that lists others
        // too is an ordinary one and never sees the validation certificate.
        if (hello is not { ApplicationProtocols: [var only] } h || only != Tls.Acme.PendingChallenges.AcmeTls1
            || challenges.TlsAlpnOptions(h.ServerName) is not { } options)
        {
            return (replay, false);
        }

        var ssl = new SslStream(replay, leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsServerAsync(options, CancellationToken.None).ConfigureAwait(false);
            _logger.LogInformation("acme: tls-alpn-01 challenge for {Name} answered to {Remote}", h.ServerName, info.RemoteEndPoint);
        }
        catch (Exception e)
        {
            _logger.LogInformation("acme: tls-alpn-01 handshake for {Name} from {Remote} failed: {Reason}", h.ServerName, info.RemoteEndPoint, HandshakeFailureReason(e));
        }
        finally
        {
            _handshaking = false;
            ClearDeadline();
        }

        return (ssl, true);
    }

    /// <summary>h2c with prior knowledge (RFC 9113 §3.3): the client's first bytes are the connection preface.</summary>
    private async Task<bool> StartsWithPrefaceAsync(PipeReader input)
    {
        SetDeadline(_runtime.Current.Limits.KeepAliveTimeout);
        while (true)
        {
            ReadResult result = await input.ReadAsync().ConfigureAwait(false);
            PrefaceMatch match = result.IsCanceled ? PrefaceMatch.NoMatch : Http2Preface.Check(result.Buffer);
            input.AdvanceTo(result.Buffer.Start, match == PrefaceMatch.NeedMore ? result.Buffer.End : result.Buffer.Start);
            if (match != PrefaceMatch.NeedMore || result.IsCompleted)
            {
                return match == PrefaceMatch.Match;
            }
        }
    }

    private static string HandshakeFailureReason(Exception e)
    {
        Exception inner = e;
        while (inner.InnerException is not null && inner is not System.Security.Authentication.AuthenticationException)
        {
            inner = inner.InnerException;
        }

        string message = inner.Message;
        if (inner.InnerException is { } cause && !string.IsNullOrEmpty(cause.Message) && cause.Message != message)
        {
            message += " (" + cause.Message + ")";
        }

        return message;
    }

    protected override void OnTimeout()
    {
        if (_handshaking)
        {
            _logger.LogInformation("connection {Id}: TLS handshake timeout", Id);
            Abort("handshake timeout");
            return;
        }

        if (_http2 is { } h2)
        {
            h2.OnTimeout();
        }
        else if (_http1 is { } h1)
        {
            h1.OnTimeout();
        }
        else
        {
            Abort("timeout before the first request");
        }
    }

    public override void OnHeartbeat(long now)
    {
        base.OnHeartbeat(now);
        _http1?.OnHeartbeat(now);
        _http2?.OnHeartbeat(now); // per-stream body and send timeouts
    }

    public override string ListenerName => _runtime.Name;

    public override void RequestClose()
    {
        _closeRequested = true;
        _http1?.RequestClose();
        _http2?.RequestClose();
    }

    /// <summary>
    /// We closed the transport ourselves (a timeout, the shutdown's deadline, a send that never drained): streams it
    /// cut off were not left by their client, and are not logged 499.
    /// </summary>
    internal bool AbortedByUs => _aborted;

    public override void Abort(string reason)
    {
        _aborted = true; // before the close, which the read loop sees
        try
        {
            // Through the transport: our socket engine fails the pending read there (a socket closed under it
            // would just stop getting events).
            if (_transport is { } transport)
            {
                transport.Dispose();
            }
            else
            {
                _socket.Dispose();
            }
        }
        catch (ObjectDisposedException)
        {
        }
    }
}

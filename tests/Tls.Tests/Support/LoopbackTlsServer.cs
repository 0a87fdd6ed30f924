using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Threading.Channels;

namespace Appliance.Tls.Tests.Support;

/// <summary>
/// A TLS server on 127.0.0.1 (port chosen by the kernel) that authenticates every
/// connection through a <see cref="CertificateStore"/>, writes "hello\n", sends
/// close_notify and waits for the client to close. Each outcome is queued, so tests wait
/// on events instead of sleeping.
/// </summary>
internal sealed class LoopbackTlsServer : IAsyncDisposable
{
    private static readonly TimeSpan ConnectionTimeout = TimeSpan.FromSeconds(30);

    private readonly TcpListener _listener;
    private readonly CertificateStore _store;
    private readonly Channel<ServerHandshake> _handshakes = Channel.CreateUnbounded<ServerHandshake>();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;

    private LoopbackTlsServer(CertificateStore store)
    {
        _store = store;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = AcceptAsync();
    }

    public int Port { get; }

    public string Address => $"127.0.0.1:{Port}";

    public static LoopbackTlsServer Start(CertificateStore store) => new(store);

    public async Task<ServerHandshake> NextHandshakeAsync()
    {
        using var timeout = new CancellationTokenSource(ConnectionTimeout);
        return await _handshakes.Reader.ReadAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        try
        {
            await _acceptLoop;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client = await _listener.AcceptTcpClientAsync(_stop.Token);
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(ConnectionTimeout);
        string? serverName = null;
        using (client)
        await using (var stream = new SslStream(client.GetStream()))
        {
            try
            {
                await stream.AuthenticateAsServerAsync(
                    (ssl, hello, state, ct) =>
                    {
                        serverName = hello.ServerName;
                        return _store.SelectAsync(ssl, hello, state, ct);
                    },
                    null,
                    timeout.Token);
            }
            catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException)
            {
                _handshakes.Writer.TryWrite(new ServerHandshake(serverName, SslProtocols.None, default, e));
                return;
            }

            _handshakes.Writer.TryWrite(new ServerHandshake(serverName, stream.SslProtocol, stream.NegotiatedApplicationProtocol, null));
            try
            {
                await stream.WriteAsync("hello\n"u8.ToArray(), timeout.Token);
                await stream.ShutdownAsync();
                // Drain until the client closes, so closing never resets a connection with
                // unread data (which could discard "hello" on the client side).
                byte[] buffer = new byte[256];
                while (await stream.ReadAsync(buffer, timeout.Token) > 0)
                {
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                // The client went away first; the handshake outcome is already recorded.
            }
        }
    }
}

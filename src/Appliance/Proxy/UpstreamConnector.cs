using System.Net;
using System.Net.Security;
using System.Net.Sockets;

namespace Appliance.Proxy;

/// <summary>
/// Opens a connection to a destination, for either pool: resolve (unless an address), connect within the connect
/// timeout trying each address, then TLS with SNI, verification and ALPN when the cluster has TLS.
/// </summary>
internal static class UpstreamConnector
{
    public static async Task<(Socket Socket, Stream Stream, SslApplicationProtocol Alpn)> ConnectAsync(
        string host, int port, IPAddress? address, UpstreamTlsOptions? tls, SslApplicationProtocol alpn, TimeSpan connectTimeout,
        CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(connectTimeout);
        IPAddress[] addresses = address is not null ? [address] : await Dns.GetHostAddressesAsync(host, timeout.Token).ConfigureAwait(false);
        Exception? last = null;
        foreach (IPAddress a in addresses)
        {
            var socket = new Socket(a.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            Stream? network = null;
            try
            {
                network = await Transport.SocketEngine.ConnectAsync(socket, new IPEndPoint(a, port), timeout.Token).ConfigureAwait(false);
                if (tls is null)
                {
                    return (socket, network, default);
                }

                // The records after the handshake go to OpenSSL directly, as on the client side (Tls.TlsRecordStream).
                Tls.RecordBoundedStream? bounded = Tls.TlsRecordStream.Usable
                    ? new Tls.RecordBoundedStream(network) : null;
                var ssl = new SslStream(bounded ?? network, leaveInnerStreamOpen: false);
                try
                {
                    await ssl.AuthenticateAsClientAsync(tls.ClientOptions(host, alpn), timeout.Token).ConfigureAwait(false);
                }
                catch (System.Security.Authentication.AuthenticationException e)
                {
                    await ssl.DisposeAsync().ConfigureAwait(false);
                    throw new UpstreamTlsException($"TLS to {host}:{port} failed: {e.Message}", e);
                }

                SslApplicationProtocol negotiated = ssl.NegotiatedApplicationProtocol;
                if (bounded is not null && Tls.TlsRecordStream.TryCreate(ssl, bounded) is { } records)
                {
                    records.ReleaseHandshake();
                    return (socket, records, negotiated);
                }

                return (socket, ssl, negotiated);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
            {
                // The stream, not just the socket: on our engine it also holds the socket's event loop slot.
                network?.Dispose();
                socket.Dispose();
                last = e is OperationCanceledException && !cancellationToken.IsCancellationRequested
                    ? new TimeoutException($"connect to {host}:{port} timed out after {connectTimeout.TotalSeconds:0.###}s")
                    : e;
            }
        }

        throw last ?? new SocketException((int)SocketError.HostNotFound);
    }
}

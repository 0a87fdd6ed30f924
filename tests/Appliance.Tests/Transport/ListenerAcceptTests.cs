using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Appliance.Transport;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Tests.Transport;

/// <summary>
/// What a connection's socket is like as the listener hands it on (accept4 on the event loop, no fcntl or setsockopt
/// of its own): non-blocking, TCP_NODELAY (inherited from the listening socket), and its peer's address.
/// </summary>
public sealed partial class ListenerAcceptTests
{
    private const int F_GETFL = 3;
    private const int O_NONBLOCK = 0x800;

    [LibraryImport("libc", EntryPoint = "fcntl")]
    private static partial int Fcntl(int fd, int cmd, int arg);

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public async Task An_accepted_socket_is_non_blocking_without_nagle_and_knows_its_peer(string address)
    {
        var seen = new TaskCompletionSource<(bool NonBlocking, bool NoDelay, EndPoint? Remote)>(TaskCreationOptions.RunContinuationsAsynchronously);
        IPAddress ip = IPAddress.Parse(address);
        SocketListener listener = SocketListener.Bind(
            new SocketListenerOptions("t", new IPEndPoint(ip, 0), Backlog: 16, ReusePort: false, MaxConnections: 16),
            (socket, l) =>
            {
                int flags = Fcntl((int)socket.SafeHandle.DangerousGetHandle(), F_GETFL, 0);
                seen.TrySetResult(((flags & O_NONBLOCK) != 0, socket.NoDelay, socket.RemoteEndPoint));
                socket.Dispose();
                l.Release();
                return Task.CompletedTask;
            },
            NullLogger.Instance);
        await using (listener)
        {
            listener.Start();
            using var client = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(new IPEndPoint(ip, listener.Port));
            (bool nonBlocking, bool noDelay, EndPoint? remote) = await seen.Task.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(nonBlocking);
            Assert.True(noDelay);
            Assert.Equal(client.LocalEndPoint, remote);
        }
    }
}

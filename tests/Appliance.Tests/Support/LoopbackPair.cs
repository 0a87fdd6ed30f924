using System.Net;
using System.Net.Sockets;
using Appliance.Transport;

namespace Appliance.Tests.Support;

/// <summary>
/// A loopback TCP connection whose client side runs on our socket engine (<see cref="SocketEngine"/>), and whose
/// server side is a plain blocking socket the test drives as the peer.
/// </summary>
internal static class LoopbackPair
{
    public static async Task<(Socket Client, Stream Stream, Socket Peer)> ConnectAsync(TimeSpan timeout)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Task<Socket> accept = listener.AcceptAsync();
        Stream stream = await SocketEngine.ConnectAsync(client, listener.LocalEndPoint!, CancellationToken.None).WaitAsync(timeout);
        return (client, stream, await accept.WaitAsync(timeout));
    }
}

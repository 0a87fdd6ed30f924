using System.Net;
using System.Net.Sockets;
using Appliance.Transport;

namespace Appliance.Tests.Transport;

/// <summary>
/// The peer's address as the listener reads it from accept4(2)'s sockaddr, against the address .NET's own
/// SocketAddress serialization writes for the same endpoint (the kernel's layout); and what a short or foreign
/// sockaddr gives.
/// </summary>
public sealed class PeerAddressTests
{
    [Theory]
    [InlineData("127.0.0.1", 54321)]
    [InlineData("203.0.113.7", 1)]
    [InlineData("::1", 65535)]
    [InlineData("2001:db8::42", 443)]
    [InlineData("::ffff:192.0.2.1", 8443)] // an IPv4 client of a dual-mode listener
    public unsafe void The_address_and_port_are_read_as_the_kernel_wrote_them(string address, int port)
    {
        var expected = new IPEndPoint(IPAddress.Parse(address), port);
        SocketAddress raw = expected.Serialize();
        byte[] bytes = new byte[raw.Size];
        raw.Buffer.Span[..raw.Size].CopyTo(bytes);
        fixed (byte* p = bytes)
        {
            IPEndPoint read = SocketListener.PeerAddress(p, bytes.Length);
            Assert.Equal(expected, read);
            Assert.Equal(expected.AddressFamily, read.AddressFamily);
        }
    }

    [Fact]
    public unsafe void A_link_local_peer_keeps_its_scope()
    {
        var expected = new IPEndPoint(new IPAddress(IPAddress.Parse("fe80::1").GetAddressBytes(), 3), 80);
        SocketAddress raw = expected.Serialize();
        byte[] bytes = new byte[raw.Size];
        raw.Buffer.Span[..raw.Size].CopyTo(bytes);
        fixed (byte* p = bytes)
        {
            Assert.Equal(3, SocketListener.PeerAddress(p, bytes.Length).Address.ScopeId);
        }
    }

    [Theory]
    [InlineData(2, 7)]   // AF_INET, cut before its address ends
    [InlineData(10, 27)] // AF_INET6, cut before its scope ends
    [InlineData(1, 110)] // AF_UNIX: not a TCP/IP peer
    [InlineData(0, 16)]  // nothing written
    public unsafe void A_short_or_foreign_sockaddr_gives_no_address(int family, int length)
    {
        byte[] bytes = new byte[128];
        BitConverter.TryWriteBytes(bytes, (ushort)family);
        bytes[2] = 0x1F;
        bytes[3] = 0x90;
        fixed (byte* p = bytes)
        {
            IPEndPoint read = SocketListener.PeerAddress(p, length);
            Assert.Equal(IPAddress.IPv6None, read.Address);
            Assert.Equal(0, read.Port);
        }
    }
}

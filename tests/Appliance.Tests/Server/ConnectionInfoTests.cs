using System.Net;
using System.Net.Sockets;
using System.Text;
using Appliance.Server;

namespace Appliance.Tests.Server;

/// <summary>
/// The client address a connection's requests forward and check (X-Forwarded-For, Forwarded, trusted proxies): a
/// dual-stack socket's IPv4 client as plain IPv4, made once per connection, so requests read it without allocating.
/// </summary>
public sealed class ConnectionInfoTests
{
    private static ConnectionInfo Info(EndPoint? remote) => new() { Id = 1, ListenerName = "l", RemoteEndPoint = remote, LocalEndPoint = null };

    [Theory]
    [InlineData("::ffff:192.0.2.7", "192.0.2.7")] // a dual-stack listener's IPv4 client
    [InlineData("192.0.2.7", "192.0.2.7")]
    [InlineData("2001:db8::1", "2001:db8::1")]
    [InlineData("::1", "::1")]
    public void The_client_address_is_unmapped_and_formatted_once(string reported, string expected)
    {
        ConnectionInfo info = Info(new IPEndPoint(IPAddress.Parse(reported), 50000));
        Assert.Equal(IPAddress.Parse(expected), info.ClientAddress);
        Assert.Equal(expected, Encoding.ASCII.GetString(info.ClientAddressText));

        long before = GC.GetAllocatedBytesForCurrentThread();
        int length = 0;
        for (int i = 0; i < 1000; i++)
        {
            length += info.ClientAddressText.Length + (info.ClientAddress is null ? 1 : 0);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(1000 * expected.Length, length);
    }

    [Fact]
    public void A_unix_socket_client_has_no_address()
    {
        ConnectionInfo info = Info(new UnixDomainSocketEndPoint("/run/appliance/admin.sock"));
        Assert.Null(info.ClientAddress);
        Assert.True(info.ClientAddressText.IsEmpty);
        Assert.True(Info(null).ClientAddressText.IsEmpty);
    }
}

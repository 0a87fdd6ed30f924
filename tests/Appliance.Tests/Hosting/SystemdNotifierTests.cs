using System.Net.Sockets;
using System.Text;
using Appliance.Hosting;

namespace Appliance.Tests.Hosting;

public sealed class SystemdNotifierTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)] // "@name": the abstract namespace, as systemd often passes it
    public async Task Sends_datagrams_to_the_notify_socket(bool @abstract)
    {
        string name = "appliance-notify-" + Guid.NewGuid().ToString("N");
        string path = @abstract ? "\0" + name : Path.Combine(Path.GetTempPath(), name);
        using var receiver = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        receiver.Bind(new UnixDomainSocketEndPoint(path));
        try
        {
            using var notifier = new SystemdNotifier(@abstract ? "@" + name : path);
            Assert.True(notifier.Enabled);
            notifier.Ready("0 connection(s), config revision 1");
            notifier.Stopping("draining");

            var buffer = new byte[512];
            int n = await receiver.ReceiveAsync(buffer);
            Assert.Equal($"READY=1\nSTATUS=0 connection(s), config revision 1\nMAINPID={Environment.ProcessId}", Encoding.UTF8.GetString(buffer, 0, n));
            n = await receiver.ReceiveAsync(buffer);
            Assert.Equal("STOPPING=1\nSTATUS=draining", Encoding.UTF8.GetString(buffer, 0, n));
        }
        finally
        {
            if (!@abstract)
            {
                File.Delete(path);
            }
        }
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("vsock:2:1234")]
    public void Is_off_without_a_usable_socket(string? value)
    {
        using var notifier = new SystemdNotifier(value);
        Assert.False(notifier.Enabled);
        notifier.Ready("ignored"); // no-op, no throw
    }

    [Fact]
    public void A_vanished_socket_does_not_throw()
    {
        using var notifier = new SystemdNotifier(Path.Combine(Path.GetTempPath(), "gone-" + Guid.NewGuid().ToString("N")));
        notifier.WatchdogPing();
    }
}

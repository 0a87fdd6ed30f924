using System.Net;
using System.Text;
using Appliance.Protocol.Headers;
using Appliance.Server;

namespace Appliance.Tests.Server;

/// <summary>A request context starts with small buffers and grows them for longer targets and hosts, keeping them.</summary>
public sealed class RequestContextTests
{
    private static RequestContext NewContext() =>
        new(new ConnectionInfo { Id = 1, ListenerName = "l", RemoteEndPoint = new IPEndPoint(IPAddress.Loopback, 1), LocalEndPoint = null });

    private static void Parse(RequestContext c, string target)
    {
        c.Reset();
        c.SetTarget(Encoding.ASCII.GetBytes(target));
        Assert.Equal(RequestTarget.Result.Ok, c.ParseTarget(out _, out _, out _));
    }

    [Theory]
    [InlineData(255)]
    [InlineData(256)]
    [InlineData(257)]
    [InlineData(4000)]
    public void Targets_longer_than_the_first_buffer_keep_every_byte_and_a_short_one_after_is_not_polluted(int pathLength)
    {
        RequestContext c = NewContext();
        string path = "/" + new string('p', pathLength - 1);
        Parse(c, path + "?q=" + new string('v', 300));
        Assert.Equal(path, Encoding.ASCII.GetString(c.Path));
        Assert.Equal("?q=" + new string('v', 300), Encoding.ASCII.GetString(c.Query));

        Parse(c, "/a?b");
        Assert.Equal("/a", Encoding.ASCII.GetString(c.Path));
        Assert.Equal("?b", Encoding.ASCII.GetString(c.Query));
        Assert.Equal("/a?b", Encoding.ASCII.GetString(c.RawTarget));
    }

    [Fact]
    public void A_long_authority_is_stored_whole_and_its_host_lowercased()
    {
        RequestContext c = NewContext();
        string host = string.Join('.', Enumerable.Repeat("Label" + new string('x', 50), 5)); // 284 bytes
        Assert.True(c.SetAuthority(Encoding.ASCII.GetBytes(host + ":8443")));
        Assert.Equal(host.ToLowerInvariant(), Encoding.ASCII.GetString(c.HostName));
    }
}

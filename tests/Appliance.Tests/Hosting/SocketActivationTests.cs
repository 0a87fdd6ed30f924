using System.Net.Sockets;
using Appliance.Hosting;

namespace Appliance.Tests.Hosting;

public sealed class SocketActivationTests
{
    private readonly List<nint> _opened = [];

    private Socket Open(nint fd)
    {
        _opened.Add(fd);
        return new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    }

    [Fact]
    public void Names_the_passed_descriptors_from_3_in_order()
    {
        SocketActivation a = SocketActivation.Parse("42", "3", "https:http:admin", 42, Open);
        Assert.Equal([3, 4, 5], _opened);
        Assert.NotNull(a.Take("admin"));
        Assert.NotNull(a.Take("https"));
        Assert.Null(a.Take("https")); // taken once
        Assert.Equal(["http"], a.CloseUnclaimed());
        Assert.Equal(0, a.Count);
    }

    [Theory]
    [InlineData("41", "2", "a:b")]     // meant for another process (LISTEN_PID)
    [InlineData(null, "2", "a:b")]
    [InlineData("42", "0", "")]
    [InlineData("42", "-1", "a")]
    [InlineData("42", "x", "a")]
    [InlineData("42", "99999", "a")]   // absurd count
    [InlineData("4 2", "1", "a")]
    public void Ignores_variables_that_are_not_for_us_or_malformed(string? pid, string? fds, string? names)
    {
        SocketActivation a = SocketActivation.Parse(pid, fds, names, 42, Open);
        Assert.Equal(0, a.Count);
        Assert.Empty(_opened);
    }

    [Fact]
    public void Missing_or_empty_names_are_unknown_and_duplicates_keep_the_first()
    {
        SocketActivation a = SocketActivation.Parse("42", "4", "https::https", 42, Open);
        Assert.Equal(4, _opened.Count);
        Assert.Equal(2, a.Count); // https (fd 3), unknown (fd 4 and 6: first kept); the second https closed
        Assert.NotNull(a.Take("https"));
        Assert.NotNull(a.Take("unknown"));
    }
}

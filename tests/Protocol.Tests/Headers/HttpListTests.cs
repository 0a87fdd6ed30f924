using Appliance.Protocol.Headers;

namespace Appliance.Protocol.Tests.Headers;

public sealed class HttpListTests
{
    private static List<string> Elements(string value)
    {
        var list = new List<string>();
        foreach (ReadOnlySpan<byte> element in new HttpList(System.Text.Encoding.ASCII.GetBytes(value)))
        {
            list.Add(System.Text.Encoding.ASCII.GetString(element));
        }

        return list;
    }

    [Theory]
    [InlineData("", new string[0])]
    [InlineData("close", new[] { "close" })]
    [InlineData(" keep-alive ,\tX-Hop", new[] { "keep-alive", "X-Hop" })]
    [InlineData(",, a ,, b,", new[] { "a", "b" })] // RFC 9110 §5.6.1: empty elements are ignored
    [InlineData(" \t ", new string[0])]
    public void Elements_are_trimmed_and_empty_ones_skipped(string value, string[] expected) =>
        Assert.Equal(expected, Elements(value));
}

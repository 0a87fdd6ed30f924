using Appliance.Protocol.Hpack;

namespace Appliance.Protocol.Tests.Hpack;

public class HpackStaticTableTests
{
    [Theory]
    [InlineData(1, ":authority", "")]
    [InlineData(2, ":method", "GET")]
    [InlineData(8, ":status", "200")]
    [InlineData(16, "accept-encoding", "gzip, deflate")]
    [InlineData(32, "cookie", "")]
    [InlineData(54, "server", "")]
    [InlineData(61, "www-authenticate", "")]
    public void Holds_the_entries_of_appendix_A(int index, string name, string value)
    {
        Assert.Equal(name, System.Text.Encoding.ASCII.GetString(HpackStaticTable.Name(index)));
        Assert.Equal(value, System.Text.Encoding.ASCII.GetString(HpackStaticTable.Value(index)));
    }

    [Fact]
    public void Rejects_index_0_and_62()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => HpackStaticTable.Name(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => HpackStaticTable.Value(62));
    }

    [Fact]
    public void Finds_every_name_at_its_lowest_index_and_every_full_entry()
    {
        for (int index = 1; index <= HpackStaticTable.Count; index++)
        {
            ReadOnlySpan<byte> name = HpackStaticTable.Name(index);
            int first = HpackStaticTable.FindName(name);
            Assert.True(first <= index);
            Assert.True(HpackStaticTable.Name(first).SequenceEqual(name));

            Assert.Equal(index, HpackStaticTable.Find(name, HpackStaticTable.Value(index), out bool full));
            Assert.True(full);
        }
    }

    [Theory]
    [InlineData(":status", "418", 8)]
    [InlineData(":path", "/x", 4)]
    [InlineData("content-type", "text/html", 31)]
    [InlineData("accept-encoding", "br", 16)]
    [InlineData("x-custom", "v", 0)]
    [InlineData("Content-Type", "text/html", 0)] // HTTP/2 names are lowercase; no case folding here
    [InlineData("", "", 0)]
    [InlineData("a-name-longer-than-any-in-the-table", "", 0)]
    public void Finds_a_name_match_without_the_value(string name, string value, int expected)
    {
        Assert.Equal(expected, HpackStaticTable.Find(HpackTestData.Latin1(name), HpackTestData.Latin1(value), out bool full));
        Assert.False(full);
    }
}

using System.Text;
using Appliance.Protocol.Headers;

namespace Appliance.Protocol.Tests.Headers;

public class HeaderCollectionTests
{
    [Fact]
    public void Adds_and_gets_fields_in_order()
    {
        using var headers = new HeaderCollection();
        headers.Add(KnownHeader.Host, "Host"u8, "example.com"u8);
        headers.Add(KnownHeader.None, "X-Custom"u8, "1"u8);
        headers.Add(KnownHeader.Accept, "text/html"u8);

        Assert.Equal(3, headers.Count);
        Assert.Equal(KnownHeader.Host, headers[0].Known);
        Assert.Equal("Host", Encoding.ASCII.GetString(headers[0].Name));
        Assert.Equal("example.com", Encoding.ASCII.GetString(headers[0].Value));
        Assert.Equal("X-Custom", Encoding.ASCII.GetString(headers[1].Name));
        Assert.Equal("Accept", Encoding.ASCII.GetString(headers[2].Name));
        Assert.Equal("Accept: text/html", headers.GetString(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => headers[3].Known);
    }

    [Fact]
    public void Gets_the_first_value_by_known_header_or_name()
    {
        using var headers = new HeaderCollection();
        headers.Add("cookie"u8, "a=1"u8);
        headers.Add("X-Trace"u8, "t1"u8);
        headers.Add("COOKIE"u8, "b=2"u8);
        headers.Add("x-trace"u8, "t2"u8);

        Assert.True(headers.TryGetValue(KnownHeader.Cookie, out ReadOnlySpan<byte> cookie));
        Assert.Equal("a=1", Encoding.ASCII.GetString(cookie));
        Assert.True(headers.TryGetValue("Cookie"u8, out cookie));
        Assert.Equal("a=1", Encoding.ASCII.GetString(cookie));
        Assert.True(headers.TryGetValue("X-TRACE"u8, out ReadOnlySpan<byte> trace));
        Assert.Equal("t1", Encoding.ASCII.GetString(trace));
        Assert.False(headers.TryGetValue(KnownHeader.Host, out _));
        Assert.False(headers.TryGetValue("X-Other"u8, out _));
        Assert.False(headers.TryGetValue(KnownHeader.None, out _));
        Assert.Equal("a=1", headers.GetValueString(KnownHeader.Cookie));
        Assert.Null(headers.GetValueString(KnownHeader.Host));
    }

    [Fact]
    public void Counts_fields()
    {
        using var headers = new HeaderCollection();
        headers.Add(KnownHeader.Via, "1.1 a"u8);
        headers.Add(KnownHeader.Via, "1.1 b"u8);
        headers.Add("X-A"u8, "1"u8);

        Assert.Equal(2, headers.CountOf(KnownHeader.Via));
        Assert.Equal(1, headers.CountOf(KnownHeader.None));
        Assert.Equal(0, headers.CountOf(KnownHeader.Host));
        Assert.True(headers.Contains(KnownHeader.Via));
    }

    [Fact]
    public void Removes_a_set_of_known_fields_in_one_pass_and_keeps_the_order_of_the_rest()
    {
        using var headers = new HeaderCollection();
        headers.Add(KnownHeader.Date, "d"u8);
        headers.Add("X-A"u8, "1"u8);
        headers.Add(KnownHeader.Connection, "keep-alive"u8);
        headers.Add(KnownHeader.Server, "s"u8);
        headers.Add(KnownHeader.ContentType, "text/plain"u8);
        headers.Add(KnownHeader.Connection, "close"u8);

        Assert.Equal(0, headers.Remove(KnownHeader.TE, KnownHeader.Trailer)); // none present: nothing scanned
        Assert.Equal(4, headers.Remove(KnownHeader.Connection, KnownHeader.Date, KnownHeader.Server, KnownHeader.Upgrade));
        Assert.Equal(["X-A: 1", "Content-Type: text/plain"], Enumerable.Range(0, headers.Count).Select(headers.GetString));
        Assert.False(headers.Contains(KnownHeader.Connection));
        Assert.False(headers.Contains(KnownHeader.Date));
        Assert.True(headers.Contains(KnownHeader.ContentType));
        headers.Add(KnownHeader.Server, "again"u8);
        Assert.True(headers.Contains(KnownHeader.Server)); // the presence bits follow later adds
        Assert.Equal(0, headers.Remove(ReadOnlySpan<KnownHeader>.Empty));
    }

    [Fact]
    public void Removes_fields_and_keeps_the_order_of_the_rest()
    {
        using var headers = new HeaderCollection();
        headers.Add(KnownHeader.Connection, "close"u8);
        headers.Add("X-A"u8, "1"u8);
        headers.Add(KnownHeader.Connection, "upgrade"u8);
        headers.Add("x-b"u8, "2"u8);
        headers.Add("X-B"u8, "3"u8);
        headers.Add(KnownHeader.Host, "h"u8);

        Assert.Equal(2, headers.Remove(KnownHeader.Connection));
        Assert.False(headers.Contains(KnownHeader.Connection));
        Assert.Equal(0, headers.Remove(KnownHeader.Connection));
        Assert.Equal(2, headers.Remove("X-b"u8));
        Assert.Equal(["X-A: 1", "Host: h"], Enumerable.Range(0, headers.Count).Select(headers.GetString));

        headers.RemoveAt(0);
        Assert.Equal(1, headers.Count);
        Assert.True(headers.TryGetValue(KnownHeader.Host, out _));
        headers.RemoveAt(0);
        Assert.False(headers.Contains(KnownHeader.Host));
    }

    [Fact]
    public void Clear_forgets_fields_and_allows_reuse()
    {
        using var headers = new HeaderCollection();
        headers.Add(KnownHeader.Host, "a"u8);
        headers.Clear();

        Assert.Equal(0, headers.Count);
        Assert.False(headers.Contains(KnownHeader.Host));
        headers.Add(KnownHeader.Host, "b"u8);
        Assert.Equal("b", headers.GetValueString(KnownHeader.Host));
    }

    [Fact]
    public void Grows_past_its_initial_arena_and_capacity()
    {
        using var headers = new HeaderCollection(initialArenaBytes: 16, initialCapacity: 2);
        for (int i = 0; i < 200; i++)
        {
            headers.Add(Encoding.ASCII.GetBytes($"X-Header-{i}"), Encoding.ASCII.GetBytes(new string((char)('a' + (i % 26)), i)));
        }

        Assert.Equal(200, headers.Count);
        for (int i = 0; i < 200; i++)
        {
            Assert.Equal($"X-Header-{i}", Encoding.ASCII.GetString(headers[i].Name));
            Assert.Equal(new string((char)('a' + (i % 26)), i), headers.GetValueString(i));
        }

        Assert.True(headers.ByteCount > 16);
    }

    [Fact]
    public void Enumerates_every_field()
    {
        using var headers = new HeaderCollection();
        headers.Add(KnownHeader.Host, "h"u8);
        headers.Add("X"u8, "y"u8);
        var seen = new List<string>();
        foreach (HeaderField field in headers)
        {
            seen.Add($"{field.Known}:{Encoding.ASCII.GetString(field.Name)}={Encoding.ASCII.GetString(field.Value)}");
        }

        Assert.Equal(["Host:Host=h", "None:X=y"], seen);
    }

    [Fact]
    public void Is_usable_again_after_dispose()
    {
        var headers = new HeaderCollection();
        headers.Add(KnownHeader.Host, "h"u8);
        headers.Dispose();

        Assert.Equal(0, headers.Count);
        headers.Add(KnownHeader.Host, "i"u8);
        Assert.Equal("i", headers.GetValueString(KnownHeader.Host));
        headers.Dispose();
    }

    [Fact]
    public void Adding_after_warm_up_does_not_allocate()
    {
        using var headers = new HeaderCollection();
        Fill();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            Fill();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        void Fill()
        {
            headers.Clear();
            for (int i = 0; i < 30; i++)
            {
                headers.Add("X-Some-Header"u8, "some value of moderate length"u8);
            }

            headers.TryGetValue("x-some-header"u8, out _);
            headers.Remove("x-other"u8);
            foreach (HeaderField field in headers)
            {
                _ = field.Value.Length;
            }
        }
    }

    [Fact]
    public void Dispose_gives_the_buffers_back_and_the_collection_works_again_after()
    {
        var headers = new HeaderCollection();
        Assert.False(headers.HoldsBuffers); // nothing rented before the first field
        headers.Add("Host"u8, "a"u8);
        Assert.True(headers.HoldsBuffers);
        headers.Clear();
        Assert.True(headers.HoldsBuffers); // Clear keeps them for the next message
        headers.Dispose();
        Assert.False(headers.HoldsBuffers);
        Assert.Equal(0, headers.Count);
        headers.Add("Host"u8, "b"u8);
        Assert.True(headers.TryGetValue(KnownHeader.Host, out ReadOnlySpan<byte> host));
        Assert.Equal("b"u8, host);
    }
}

using System.Buffers;
using System.Text;
using Appliance.Protocol.Http1;

namespace Appliance.Protocol.Tests.Http1;

/// <summary>
/// The status line of an upstream response (RFC 9112 §4), whole in one span and cut at every byte: what it yields,
/// what it leaves unread, and what garbage it refuses.
/// </summary>
public class Http1ResponseParserTests
{
    private sealed record Outcome(bool Done, int Status, HttpVersion Version, RequestRejection Rejection, long Consumed);

    /// <summary>Parses <paramref name="text"/> whole and split into segments of each size, and checks they agree.</summary>
    private static Outcome Parse(string text) => Parse(Encoding.Latin1.GetBytes(text));

    private static Outcome Parse(byte[] data)
    {
        Outcome whole = ParseOnce(new ReadOnlySequence<byte>(data));
        foreach (int size in new[] { 1, 2, 5, 9, 13 })
        {
            if (size >= data.Length)
            {
                continue;
            }

            var input = new SegmentedInput(data, size);
            Outcome split = ParseOnce(input.Slice(0, data.Length));
            Assert.Equal(whole, split);
        }

        return whole;
    }

    private static Outcome ParseOnce(ReadOnlySequence<byte> sequence)
    {
        var reader = new SequenceReader<byte>(sequence);
        bool done = Http1ResponseParser.TryParseStatusLine(ref reader, out int status, out HttpVersion version, out RequestRejection rejection);
        if (!done)
        {
            Assert.Equal(0, reader.Consumed); // nothing is taken from a line that was not accepted
        }

        return new Outcome(done, status, version, rejection, reader.Consumed);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\n", 200, HttpVersion.Http11)]
    [InlineData("HTTP/1.0 404 Not Found\r\n", 404, HttpVersion.Http10)]
    [InlineData("HTTP/1.1 204\r\n", 204, HttpVersion.Http11)] // no reason, no space (tolerated)
    [InlineData("HTTP/1.1 204 \r\n", 204, HttpVersion.Http11)] // empty reason
    [InlineData("HTTP/1.1 599 Custom\twith tab\r\n", 599, HttpVersion.Http11)]
    [InlineData("HTTP/1.1 100 Continue\r\n", 100, HttpVersion.Http11)]
    public void Accepts_a_status_line_and_consumes_it_alone(string line, int status, HttpVersion version)
    {
        Outcome o = Parse(line + "Server: x\r\n\r\n");

        Assert.Equal(new Outcome(true, status, version, RequestRejection.None, line.Length), o);
    }

    [Theory]
    [InlineData("")]
    [InlineData("HTTP/1.1 200 OK")]
    [InlineData("HTTP/1.1 200 OK\r")]
    [InlineData("HTTP/1.1 2")]
    public void Waits_for_the_rest_of_a_truncated_line(string partial)
    {
        Outcome o = Parse(partial);

        Assert.False(o.Done);
        Assert.Equal(RequestRejection.None, o.Rejection);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\n", RequestRejection.BareLf)]
    [InlineData("\n", RequestRejection.BareLf)]
    [InlineData("\r\n", RequestRejection.InvalidRequestLine)]
    [InlineData("HTTP/2.0 200 OK\r\n", RequestRejection.InvalidRequestLine)]
    [InlineData("HTTP/1.2 200 OK\r\n", RequestRejection.UnsupportedVersion)]
    [InlineData("http/1.1 200 OK\r\n", RequestRejection.InvalidRequestLine)]
    [InlineData("HTTP/1.1  200 OK\r\n", RequestRejection.InvalidRequestLine)]
    [InlineData("HTTP/1.1 20 OK\r\n", RequestRejection.InvalidRequestLine)]
    [InlineData("HTTP/1.1 2000 OK\r\n", RequestRejection.InvalidRequestLine)]
    [InlineData("HTTP/1.1 099 Low\r\n", RequestRejection.InvalidRequestLine)]
    [InlineData("HTTP/1.1 2x0 OK\r\n", RequestRejection.InvalidRequestLine)]
    [InlineData("HTTP/1.1 200 O\rK\r\n", RequestRejection.InvalidRequestLine)]
    [InlineData("HTTP/1.1 200 O\0K\r\n", RequestRejection.InvalidRequestLine)]
    [InlineData("HTTP/1.1 200 O\u007fK\r\n", RequestRejection.InvalidRequestLine)]
    [InlineData("HTTP/1.1 200 O\u0001K\r\n", RequestRejection.InvalidRequestLine)]
    [InlineData("ICY 200 OK\r\n", RequestRejection.InvalidRequestLine)]
    [InlineData("<html>garbage\r\n", RequestRejection.InvalidRequestLine)]
    public void Refuses_a_malformed_line(string line, RequestRejection expected)
    {
        Outcome o = Parse(line + "Server: x\r\n\r\n");

        Assert.False(o.Done);
        Assert.Equal(expected, o.Rejection);
    }

    [Fact]
    public void Takes_a_line_of_the_maximum_length_and_refuses_one_byte_more()
    {
        // The limit counts the bytes before the LF (the CR included).
        string head = "HTTP/1.1 200 ";
        string atLimit = head + new string('r', Http1ResponseParser.MaxStatusLineBytes - head.Length - 1) + "\r\n";
        string overLimit = head + new string('r', Http1ResponseParser.MaxStatusLineBytes - head.Length) + "\r\n";

        Assert.Equal(new Outcome(true, 200, HttpVersion.Http11, RequestRejection.None, atLimit.Length), Parse(atLimit));
        Assert.Equal(RequestRejection.RequestLineTooLong, Parse(overLimit).Rejection);
    }

    [Fact]
    public void Refuses_an_endless_line_once_it_passes_the_limit_without_waiting_for_its_end()
    {
        string endless = "HTTP/1.1 200 " + new string('r', Http1ResponseParser.MaxStatusLineBytes);

        Outcome o = Parse(endless);

        Assert.False(o.Done);
        Assert.Equal(RequestRejection.RequestLineTooLong, o.Rejection);
    }

    [Fact]
    public void Reads_two_lines_in_a_row_from_one_buffer()
    {
        byte[] data = Encoding.ASCII.GetBytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n\r\n");
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(data));

        Assert.True(Http1ResponseParser.TryParseStatusLine(ref reader, out int first, out _, out _));
        reader.Advance(2); // the empty field section
        Assert.True(Http1ResponseParser.TryParseStatusLine(ref reader, out int second, out _, out _));

        Assert.Equal((100, 201), (first, second));
        Assert.Equal(data.Length - 2, reader.Consumed);
    }
}

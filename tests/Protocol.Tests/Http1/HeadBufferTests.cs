using System.Buffers;
using System.Text;
using Appliance.Protocol.Http1;

namespace Appliance.Protocol.Tests.Http1;

public class HeadBufferTests
{
    [Fact]
    public void Field_lines_written_directly_or_through_the_buffer_writer_interface_are_the_same_bytes()
    {
        HeadBuffer head = HeadBuffer.Start();
        head.Write("HTTP/1.1 200 OK\r\n"u8);
        Http1FieldWriter.Write(head, "Content-Type"u8, "text/plain"u8);
        Http1FieldWriter.Write((IBufferWriter<byte>)head, "X-Empty"u8, ""u8);
        head.WriteField("X-Empty"u8, ""u8);
        Assert.Equal("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Empty: \r\nX-Empty: \r\n", Encoding.ASCII.GetString(head.Written));

        var pipe = new ArrayBufferWriter<byte>();
        head.CopyTo(pipe);
        Assert.Equal("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Empty: \r\nX-Empty: \r\n", Encoding.ASCII.GetString(pipe.WrittenSpan));
        Assert.True(HeadBuffer.Start().Written.IsEmpty);
    }

    [Fact]
    public void Pieces_of_every_length_up_to_past_the_inline_copies_land_byte_for_byte()
    {
        // The copies are word and vector moves by length (0-3, 4-7, 8-15, 16-32, then a block copy): every length,
        // at every alignment the pieces before leave, must give exactly the bytes.
        var expected = new List<byte>();
        HeadBuffer head = HeadBuffer.Start();
        for (int length = 0; length <= 70; length++)
        {
            byte[] name = Enumerable.Range(0, length).Select(i => (byte)('A' + ((i + length) % 26))).ToArray();
            byte[] value = Enumerable.Range(0, length).Select(i => (byte)('a' + ((i * 7 + length) % 26))).ToArray();
            head.Write(value);
            expected.AddRange(value);
            head.WriteField(name, value);
            expected.AddRange([.. name, (byte)':', (byte)' ', .. value, (byte)'\r', (byte)'\n']);
            Assert.Equal(expected.ToArray(), head.Written.ToArray());
        }

        head.CopyTo(new ArrayBufferWriter<byte>());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2027)] // the request line, then this field line fill the initial 2 KiB exactly
    [InlineData(5000)]
    [InlineData(70_000)] // past what the thread keeps: the next head starts small again
    public void A_field_longer_than_the_room_left_grows_the_buffer_and_keeps_what_was_written(int valueLength)
    {
        HeadBuffer head = HeadBuffer.Start();
        head.Write("GET / HTTP/1.1\r\n"u8);
        byte[] value = Enumerable.Repeat((byte)'v', valueLength).ToArray();
        head.WriteField("X"u8, value);
        head.WriteField("Host"u8, "a"u8);
        string text = Encoding.ASCII.GetString(head.Written);
        Assert.Equal("GET / HTTP/1.1\r\nX: " + new string('v', valueLength) + "\r\nHost: a\r\n", text);

        var pipe = new ArrayBufferWriter<byte>();
        head.CopyTo(pipe);
        Assert.Equal(text, Encoding.ASCII.GetString(pipe.WrittenSpan));
    }

    [Fact]
    public void Copying_from_an_offset_writes_only_the_rest_and_empties_the_buffer()
    {
        HeadBuffer head = HeadBuffer.Start();
        head.Write("GET / HTTP/1.1\r\nHost: a\r\n\r\n"u8);
        var pipe = new ArrayBufferWriter<byte>();
        head.CopyTo(pipe, 4);
        Assert.Equal("/ HTTP/1.1\r\nHost: a\r\n\r\n", Encoding.ASCII.GetString(pipe.WrittenSpan));
        Assert.True(head.Written.IsEmpty);

        head.Write("abc"u8);
        var none = new ArrayBufferWriter<byte>();
        head.CopyTo(none, 3); // all of it went another way
        Assert.Equal(0, none.WrittenCount);
        Assert.True(head.Written.IsEmpty);

        head.Write("abc"u8);
        Assert.Throws<ArgumentOutOfRangeException>(() => head.CopyTo(none, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => head.CopyTo(none, -1));
        Assert.Equal("abc", Encoding.ASCII.GetString(head.Written)); // a refused copy keeps the head
    }
}

using Appliance.Protocol.Headers;

namespace Appliance.Protocol.Tests.Headers;

public class HttpCharactersTests
{
    [Fact]
    public void Token_chars_are_exactly_tchar()
    {
        const string tchar = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        for (int b = 0; b < 256; b++)
        {
            Assert.Equal(tchar.Contains((char)b), HttpCharacters.IsTokenChar((byte)b));
        }
    }

    [Fact]
    public void Field_value_chars_are_vchar_obs_text_sp_and_htab()
    {
        for (int b = 0; b < 256; b++)
        {
            bool expected = b == '\t' || (b >= 0x20 && b <= 0x7E) || b >= 0x80;
            Assert.Equal(expected, HttpCharacters.IsFieldValueChar((byte)b));
        }
    }

    [Fact]
    public void The_class_table_agrees_with_the_sets()
    {
        for (int b = 0; b < 256; b++)
        {
            byte classes = HttpCharacters.Classes[b];
            Assert.Equal(HttpCharacters.IsTokenChar((byte)b), (classes & HttpCharacters.TokenClass) != 0);
            Assert.Equal(HttpCharacters.IsFieldValueChar((byte)b), (classes & HttpCharacters.FieldValueClass) != 0);
        }
    }

    [Fact]
    public void Token_and_field_value_lengths_stop_at_the_first_byte_outside_the_set()
    {
        // Every byte at every position of spans shorter and longer than the 16-byte steps.
        foreach (int length in new[] { 1, 15, 16, 17, 31, 32, 33, 40 })
        {
            for (int at = 0; at < length; at++)
            {
                for (int b = 0; b < 256; b++)
                {
                    byte[] token = Enumerable.Repeat((byte)'a', length).ToArray();
                    token[at] = (byte)b;
                    Assert.Equal(HttpCharacters.IsTokenChar((byte)b) ? length : at, HttpCharacters.TokenLength(token));
                    byte[] value = Enumerable.Repeat((byte)' ', length).ToArray();
                    value[at] = (byte)b;
                    Assert.Equal(HttpCharacters.IsFieldValueChar((byte)b) ? length : at, HttpCharacters.FieldValueLength(value));
                }
            }
        }

        Assert.Equal(0, HttpCharacters.TokenLength([]));
        Assert.Equal(0, HttpCharacters.FieldValueLength([]));
    }

    [Fact]
    public void Target_chars_are_visible_ascii()
    {
        for (int b = 0; b < 256; b++)
        {
            Assert.Equal(b >= 0x21 && b <= 0x7E, HttpCharacters.IsTargetChar((byte)b));
        }
    }

    [Fact]
    public void Span_scans_find_the_first_invalid_byte()
    {
        Assert.Equal(-1, HttpCharacters.IndexOfInvalidTokenChar("Content-Type"u8));
        Assert.Equal(7, HttpCharacters.IndexOfInvalidTokenChar("Content Type"u8));
        Assert.Equal(3, HttpCharacters.IndexOfInvalidFieldValueChar("abc\0def"u8));
        Assert.Equal(-1, HttpCharacters.IndexOfInvalidFieldValueChar("a b\tc\u00ff"u8));
        Assert.Equal(2, HttpCharacters.IndexOfInvalidTargetChar("/a b"u8));
        Assert.False(HttpCharacters.IsToken(""u8));
        Assert.True(HttpCharacters.IsToken("chunked"u8));
    }

    [Fact]
    public void Trims_only_sp_and_htab()
    {
        Assert.Equal("a b"u8.ToArray(), HttpCharacters.TrimWhitespace(" \t a b\t "u8).ToArray());
        Assert.Equal("\u000ba"u8.ToArray(), HttpCharacters.TrimWhitespace("\u000ba"u8).ToArray());
        Assert.True(HttpCharacters.TrimWhitespace(" \t "u8).IsEmpty);
    }
}

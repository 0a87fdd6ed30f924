using System.Buffers;

namespace Appliance.Protocol.Headers;

/// <summary>
/// Character classes of the HTTP grammar, shared by HTTP/1.1 and HTTP/2 validation. The span helpers use
/// vectorised <see cref="SearchValues{T}"/> scans and return the index of the first offending byte, or -1.
/// </summary>
public static class HttpCharacters
{
    // RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    private static readonly SearchValues<byte> s_token =
        SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);

    // RFC 9110 §5.5: field-value bytes are VCHAR, obs-text, SP and HTAB; CR, LF, NUL and other CTLs (and DEL) never.
    private static readonly SearchValues<byte> s_fieldValue = SearchValues.Create(Range(0x20, 0x7E, 0x80, 0xFF, extra: 0x09));

    // RFC 9112 §3.2: a request-target is made of visible ASCII; SP ends it, and controls, DEL and non-ASCII are invalid.
    private static readonly SearchValues<byte> s_target = SearchValues.Create(Range(0x21, 0x7E, 0, -1, extra: -1));

    // RFC 9110 §5.6.4: qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
    private static readonly SearchValues<byte> s_quotedText = SearchValues.Create(QuotedText());

    /// <summary>A bit of <see cref="Classes"/>: tchar.</summary>
    internal const byte TokenClass = 1;

    /// <summary>A bit of <see cref="Classes"/>: a byte a field value may hold (VCHAR, obs-text, SP, HTAB).</summary>
    internal const byte FieldValueClass = 2;

    /// <summary>
    /// The classes above as one table indexed by the byte, for scalar loops over short spans (a field name, most
    /// values), where a vectorised scan's setup costs more than the bytes. Must agree with the sets above (tested).
    /// </summary>
    internal static ReadOnlySpan<byte> Classes =>
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, // 0x00
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 0x10
        2, 3, 2, 3, 3, 3, 3, 3, 2, 2, 3, 3, 2, 3, 3, 2, // 0x20
        3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, // 0x30
        2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, // 0x40
        3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 3, 3, // 0x50
        3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, // 0x60
        3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 3, 2, 3, 0, // 0x70
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, // 0x80
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, // 0x90
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, // 0xA0
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, // 0xB0
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, // 0xC0
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, // 0xD0
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, // 0xE0
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, // 0xF0
    ];

    public static bool IsTokenChar(byte b) => s_token.Contains(b);

    public static bool IsFieldValueChar(byte b) => s_fieldValue.Contains(b);

    public static bool IsTargetChar(byte b) => s_target.Contains(b);

    /// <summary>True for qdtext inside a quoted-string (not DQUOTE, not backslash).</summary>
    public static bool IsQuotedTextChar(byte b) => s_quotedText.Contains(b);

    /// <summary>RFC 9110 §5.6.3: OWS/BWS/RWS are made of SP and HTAB only.</summary>
    public static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\t';

    public static bool IsToken(ReadOnlySpan<byte> value) => !value.IsEmpty && value.IndexOfAnyExcept(s_token) < 0;

    public static int IndexOfInvalidTokenChar(ReadOnlySpan<byte> value) => value.IndexOfAnyExcept(s_token);

    public static int IndexOfInvalidFieldValueChar(ReadOnlySpan<byte> value) => value.IndexOfAnyExcept(s_fieldValue);

    public static int IndexOfInvalidTargetChar(ReadOnlySpan<byte> value) => value.IndexOfAnyExcept(s_target);

    /// <summary>Removes leading and trailing OWS (SP, HTAB) (RFC 9110 §5.5: not part of the field value).</summary>
    public static ReadOnlySpan<byte> TrimWhitespace(ReadOnlySpan<byte> value)
    {
        int start = 0;
        while (start < value.Length && IsWhitespace(value[start])) start++;
        int end = value.Length;
        while (end > start && IsWhitespace(value[end - 1])) end--;
        return value[start..end];
    }

    private static byte[] Range(int from, int to, int from2, int to2, int extra)
    {
        var bytes = new List<byte>(256);
        for (int b = from; b <= to; b++) bytes.Add((byte)b);
        for (int b = from2; b <= to2; b++) bytes.Add((byte)b);
        if (extra >= 0) bytes.Add((byte)extra);
        return bytes.ToArray();
    }

    private static byte[] QuotedText()
    {
        var bytes = new List<byte>(256) { (byte)'\t', (byte)' ', 0x21 };
        for (int b = 0x23; b <= 0x5B; b++) bytes.Add((byte)b);
        for (int b = 0x5D; b <= 0x7E; b++) bytes.Add((byte)b);
        for (int b = 0x80; b <= 0xFF; b++) bytes.Add((byte)b);
        return bytes.ToArray();
    }
}

using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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

    // For TokenLength's 16-byte scan (SSSE3 nibble lookup): entry l has bit h set when byte (h << 4) | l is a tchar
    // (h < 8; bytes from 0x80 are never tchars).
    private static readonly Vector128<byte> s_tokenRows = TokenRows();

    /// <summary>
    /// How many bytes from the start are tchars: the index of the first one that is not, or the length. For short
    /// spans with bytes after them (a field name, its colon, the rest of the head): 16 bytes a step, inline, where
    /// <see cref="IndexOfInvalidTokenChar"/>'s general search costs more to set up than such a name has bytes.
    /// </summary>
    internal static int TokenLength(ReadOnlySpan<byte> span)
    {
        ref byte start = ref MemoryMarshal.GetReference(span);
        int i = 0;
        if (Ssse3.IsSupported)
        {
            Vector128<byte> rows = s_tokenRows;
            Vector128<byte> columns = Vector128.Create((byte)1, 2, 4, 8, 16, 32, 64, 128, 0, 0, 0, 0, 0, 0, 0, 0);
            Vector128<byte> nibble = Vector128.Create((byte)0x0F);
            for (; i <= span.Length - 16; i += 16)
            {
                Vector128<byte> v = Vector128.LoadUnsafe(ref start, (nuint)i);
                Vector128<byte> row = Ssse3.Shuffle(rows, v & nibble);
                Vector128<byte> column = Ssse3.Shuffle(columns, Vector128.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & nibble);
                uint outside = Vector128.Equals(row & column, Vector128<byte>.Zero).ExtractMostSignificantBits();
                if (outside != 0)
                {
                    return i + BitOperations.TrailingZeroCount(outside);
                }
            }
        }

        return ClassLength(span, i, TokenClass);
    }

    /// <summary>
    /// How many bytes from the start a field value may hold (VCHAR, obs-text, SP, HTAB): the index of the first that
    /// it may not (a line's CR), or the length. 16 bytes a step, inline, as <see cref="TokenLength"/>.
    /// </summary>
    internal static int FieldValueLength(ReadOnlySpan<byte> span)
    {
        ref byte start = ref MemoryMarshal.GetReference(span);
        int i = 0;
        if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= span.Length - 16; i += 16)
            {
                Vector128<byte> v = Vector128.LoadUnsafe(ref start, (nuint)i);
                // Not allowed: controls other than HTAB, and DEL.
                Vector128<byte> bad = Vector128.AndNot(Vector128.LessThan(v, Vector128.Create((byte)0x20)), Vector128.Equals(v, Vector128.Create((byte)'\t')))
                    | Vector128.Equals(v, Vector128.Create((byte)0x7F));
                uint mask = bad.ExtractMostSignificantBits();
                if (mask != 0)
                {
                    return i + BitOperations.TrailingZeroCount(mask);
                }
            }
        }

        return ClassLength(span, i, FieldValueClass);
    }

    /// <summary>The scalar tail of the scans above: from <paramref name="i"/>, bytes of <paramref name="byteClass"/>.</summary>
    private static int ClassLength(ReadOnlySpan<byte> span, int i, byte byteClass)
    {
        ReadOnlySpan<byte> classes = Classes;
        while ((uint)i < (uint)span.Length && (classes[span[i]] & byteClass) != 0)
        {
            i++;
        }

        return i;
    }

    private static Vector128<byte> TokenRows()
    {
        Span<byte> rows = stackalloc byte[16];
        for (int b = 0; b < 0x80; b++)
        {
            if ((Classes[b] & TokenClass) != 0)
            {
                rows[b & 0x0F] |= (byte)(1 << (b >> 4));
            }
        }

        return Vector128.Create((ReadOnlySpan<byte>)rows);
    }

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

namespace Appliance.Protocol.Headers;

/// <summary>Which of the four request-target forms a request used (RFC 9112 §3.2).</summary>
public enum RequestTargetForm : byte
{
    Origin,
    Absolute,
    Authority,
    Asterisk,
}

/// <summary>
/// Splits a request-target and normalises its path for matching: percent-decoding (except "%2F",
/// so an encoded slash never becomes a segment boundary) and dot-segment removal (RFC 3986 §5.2.4),
/// so that "/a/../admin" and "/%61dmin" route like "/admin". Shared by HTTP/1.1 and HTTP/2.
/// </summary>
public static class RequestTarget
{
    public enum Result : byte
    {
        Ok,
        Invalid,
        InvalidPercentEncoding,
        EncodedNul,
        TooLong,
    }

    /// <summary>
    /// Classifies <paramref name="target"/>; for origin and absolute forms, returns the path (raw) and query
    /// (including its leading '?', or empty) and, for absolute form, the authority.
    /// </summary>
    public static Result Split(ReadOnlySpan<byte> target, out RequestTargetForm form, out int authorityStart, out int authorityLength,
        out int pathStart, out int pathLength, out int queryStart)
    {
        authorityStart = authorityLength = pathStart = pathLength = 0;
        queryStart = target.Length;
        form = RequestTargetForm.Origin;
        if (target.IsEmpty)
        {
            return Result.Invalid;
        }

        if (target[0] == (byte)'/')
        {
            int q = target.IndexOf((byte)'?');
            pathLength = q < 0 ? target.Length : q;
            queryStart = q < 0 ? target.Length : q;
            return Result.Ok;
        }

        if (target.Length == 1 && target[0] == (byte)'*')
        {
            form = RequestTargetForm.Asterisk;
            return Result.Ok;
        }

        int schemeEnd = target.IndexOf("://"u8);
        if (schemeEnd > 0 && IsScheme(target[..schemeEnd]))
        {
            form = RequestTargetForm.Absolute;
            authorityStart = schemeEnd + 3;
            ReadOnlySpan<byte> rest = target[authorityStart..];
            int slash = rest.IndexOfAny((byte)'/', (byte)'?');
            authorityLength = slash < 0 ? rest.Length : slash;
            if (authorityLength == 0 || rest[..authorityLength].Contains((byte)'@'))
            {
                return Result.Invalid; // RFC 9110 §4.2.4: userinfo is not allowed in http(s) URIs sent as targets
            }

            pathStart = authorityStart + authorityLength;
            int q = target[pathStart..].IndexOf((byte)'?');
            pathLength = q < 0 ? target.Length - pathStart : q;
            queryStart = pathStart + pathLength;
            return Result.Ok;
        }

        // authority-form (CONNECT): host:port, no slash
        if (target.IndexOfAny((byte)'/', (byte)'?', (byte)'@') < 0 && target.IndexOf((byte)':') > 0)
        {
            form = RequestTargetForm.Authority;
            authorityLength = target.Length;
            return Result.Ok;
        }

        return Result.Invalid;
    }

    /// <summary>
    /// Writes the normalised form of <paramref name="rawPath"/> to <paramref name="destination"/> (which must be at
    /// least as long as the input; normalisation never grows a path). An empty path becomes "/".
    /// </summary>
    public static Result NormalizePath(ReadOnlySpan<byte> rawPath, Span<byte> destination, out int written)
    {
        written = 0;
        if (rawPath.IsEmpty)
        {
            if (destination.IsEmpty) return Result.TooLong;
            destination[0] = (byte)'/';
            written = 1;
            return Result.Ok;
        }

        if (destination.Length < rawPath.Length)
        {
            return Result.TooLong;
        }

        // 1) percent-decode (keeping %2F encoded)
        int n = 0;
        for (int i = 0; i < rawPath.Length; i++)
        {
            byte b = rawPath[i];
            if (b == (byte)'%')
            {
                if (i + 2 >= rawPath.Length)
                {
                    return Result.InvalidPercentEncoding;
                }

                int hi = HexValue(rawPath[i + 1]);
                int lo = HexValue(rawPath[i + 2]);
                if (hi < 0 || lo < 0)
                {
                    return Result.InvalidPercentEncoding;
                }

                int v = (hi << 4) | lo;
                if (v == 0)
                {
                    return Result.EncodedNul;
                }

                if (v == '/')
                {
                    destination[n++] = (byte)'%';
                    destination[n++] = (byte)'2';
                    destination[n++] = (byte)'F';
                }
                else
                {
                    destination[n++] = (byte)v;
                }

                i += 2;
            }
            else
            {
                destination[n++] = b;
            }
        }

        // 2) remove dot segments in place (RFC 3986 §5.2.4), operating on whole segments.
        written = RemoveDotSegments(destination[..n]);
        return Result.Ok;
    }

    /// <summary>In-place dot-segment removal over a path starting with '/'. Returns the new length.</summary>
    internal static int RemoveDotSegments(Span<byte> path)
    {
        if (path.IsEmpty || path[0] != (byte)'/')
        {
            return path.Length;
        }

        // Fast path: no "." segment at all.
        if (path.IndexOf("/."u8) < 0)
        {
            return path.Length;
        }

        int w = 0; // write index; output always starts with '/'
        int r = 0;
        while (r < path.Length)
        {
            // path[r] == '/'
            int segStart = r + 1;
            int segEnd = path[segStart..].IndexOf((byte)'/');
            segEnd = segEnd < 0 ? path.Length : segStart + segEnd;
            int len = segEnd - segStart;
            bool last = segEnd == path.Length;
            if (len == 1 && path[segStart] == (byte)'.')
            {
                // "/./" -> "/" ; trailing "/." -> "/"
                if (last)
                {
                    path[w++] = (byte)'/';
                }
            }
            else if (len == 2 && path[segStart] == (byte)'.' && path[segStart + 1] == (byte)'.')
            {
                // pop the last output segment
                int prev = w > 0 ? path[..w].LastIndexOf((byte)'/') : 0;
                w = prev < 0 ? 0 : prev;
                if (last)
                {
                    path[w++] = (byte)'/';
                }
            }
            else
            {
                path[w++] = (byte)'/';
                path.Slice(segStart, len).CopyTo(path[w..]);
                w += len;
            }

            r = segEnd;
        }

        if (w == 0)
        {
            path[w++] = (byte)'/';
        }

        return w;
    }

    private static bool IsScheme(ReadOnlySpan<byte> s)
    {
        // RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
        if (s.IsEmpty || !char.IsAsciiLetter((char)s[0])) return false;
        foreach (byte b in s)
        {
            if (!(char.IsAsciiLetterOrDigit((char)b) || b is (byte)'+' or (byte)'-' or (byte)'.')) return false;
        }

        return true;
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}

using System.Buffers;

namespace Appliance.Protocol.Http1;

/// <summary>
/// The status line of an upstream response (RFC 9112 §4): "HTTP/1.1 200 OK". Header fields after it use the
/// same syntax as requests and are parsed with <see cref="Http1RequestParser.TryParseHeaders"/>.
/// </summary>
public static class Http1ResponseParser
{
    public const int MaxStatusLineBytes = 8192;

    /// <summary>
    /// true: a status line was consumed. false with None: need more data (reader untouched). false otherwise: the
    /// upstream sent garbage (the proxy answers 502).
    /// </summary>
    public static bool TryParseStatusLine(ref SequenceReader<byte> reader, out int status, out HttpVersion version, out RequestRejection rejection)
    {
        status = 0;
        version = HttpVersion.Http11;
        rejection = RequestRejection.None;
        ReadOnlySpan<byte> unread = reader.UnreadSpan;
        int lf = unread.IndexOf((byte)'\n');
        if (lf >= 0 && lf <= MaxStatusLineBytes)
        {
            // The usual case: the whole line in the first span, parsed where it lies.
            if (!TryParseLine(unread[..(lf + 1)], out status, out version, out rejection))
            {
                return false;
            }

            reader.Advance(lf + 1);
            return true;
        }

        SequenceReader<byte> probe = reader;
        if (!probe.TryReadTo(out ReadOnlySequence<byte> lineSequence, (byte)'\n', advancePastDelimiter: true))
        {
            if (reader.Remaining > MaxStatusLineBytes)
            {
                rejection = RequestRejection.RequestLineTooLong;
            }

            return false;
        }

        if (lineSequence.Length > MaxStatusLineBytes)
        {
            rejection = RequestRejection.RequestLineTooLong;
            return false;
        }

        Span<byte> buffer = stackalloc byte[(int)lineSequence.Length + 1];
        lineSequence.CopyTo(buffer);
        buffer[^1] = (byte)'\n';
        if (!TryParseLine(buffer, out status, out version, out rejection))
        {
            return false;
        }

        reader = probe;
        return true;
    }

    /// <summary>One status line, its LF included.</summary>
    private static bool TryParseLine(ReadOnlySpan<byte> line, out int status, out HttpVersion version, out RequestRejection rejection)
    {
        status = 0;
        version = HttpVersion.Http11;
        rejection = RequestRejection.None;
        line = line[..^1];
        if (line.IsEmpty || line[^1] != (byte)'\r')
        {
            rejection = RequestRejection.BareLf;
            return false;
        }

        line = line[..^1];
        // HTTP-version SP 3DIGIT SP [ reason-phrase ]; tolerate a missing reason and its space (RFC 9112 §4).
        if (line.Length < 12 || !line.StartsWith("HTTP/1."u8) || line[8] != (byte)' ')
        {
            rejection = RequestRejection.InvalidRequestLine;
            return false;
        }

        version = line[7] switch
        {
            (byte)'1' => HttpVersion.Http11,
            (byte)'0' => HttpVersion.Http10,
            _ => (HttpVersion)255,
        };
        if ((byte)version == 255)
        {
            rejection = RequestRejection.UnsupportedVersion;
            return false;
        }

        ReadOnlySpan<byte> code = line.Slice(9, 3);
        if (!char.IsAsciiDigit((char)code[0]) || !char.IsAsciiDigit((char)code[1]) || !char.IsAsciiDigit((char)code[2])
            || (line.Length > 12 && line[12] != (byte)' ') || code[0] == (byte)'0')
        {
            rejection = RequestRejection.InvalidRequestLine;
            return false;
        }

        foreach (byte b in line[12..])
        {
            if (b is (byte)'\r' or 0 || (b < 0x20 && b != (byte)'\t') || b == 0x7F)
            {
                rejection = RequestRejection.InvalidRequestLine;
                return false;
            }
        }

        status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
        return true;
    }
}

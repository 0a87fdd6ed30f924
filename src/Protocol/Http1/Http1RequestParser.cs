using System.Buffers;
using System.Runtime.CompilerServices;
using Appliance.Protocol.Headers;

namespace Appliance.Protocol.Http1;

/// <summary>
/// Strict, allocation-free HTTP/1.1 request-line and field-section parser (RFC 9112 §2–§5) over
/// <see cref="SequenceReader{T}"/>. Generic over a struct handler so callbacks devirtualise. A line inside the
/// current span is parsed in place; a line that spans segments is first copied to the stack or a pooled buffer.
/// </summary>
/// <remarks>
/// Everything lenient parsers tolerate and smugglers exploit is rejected: bare CR, bare LF (LF-only line ends too),
/// obs-fold, whitespace before the colon, control bytes in values, extra spaces in the request-line.
/// </remarks>
[SkipLocalsInit]
public sealed class Http1RequestParser
{
    internal const byte CR = (byte)'\r';
    internal const byte LF = (byte)'\n';
    internal const byte SP = (byte)' ';
    internal const byte HTAB = (byte)'\t';

    // Lines spanning segments are copied; up to this many bytes onto the stack, larger ones into a pooled array.
    private const int StackLineBytes = 512;

    public Http1RequestParser(Http1ParserLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        limits.Validate();
        Limits = limits;
    }

    public Http1ParserLimits Limits { get; }

    /// <summary>
    /// Parses the request-line. True: the line and its CRLF were consumed and
    /// <see cref="IHttp1RequestHandler.OnRequestLine"/> was called. False with <see cref="RequestRejection.None"/>:
    /// more data is needed and the reader is back where it started. False otherwise: the request is bad.
    /// </summary>
    public bool TryParseRequestLine<THandler>(ref THandler handler, ref SequenceReader<byte> reader, out RequestRejection rejection)
        where THandler : struct, IHttp1RequestHandler
    {
        SequenceReader<byte> start = reader;
        int window = Limits.MaxRequestLineBytes + 2; // the line with its CRLF

        // RFC 9112 §2.2: empty lines before the request-line are ignored (clients may send CRLF after a body).
        // They count against the line limit so a CRLF flood cannot hold the connection forever.
        while (reader.TryPeek(out byte first) && (first == CR || first == LF))
        {
            if (first == LF)
            {
                rejection = RequestRejection.BareLf;
                return false;
            }

            if (!reader.TryPeek(1, out byte second))
            {
                reader = start;
                rejection = RequestRejection.None;
                return false;
            }

            if (second != LF)
            {
                rejection = RequestRejection.BareCr;
                return false;
            }

            reader.Advance(2);
            window -= 2;
            if (window <= 2)
            {
                rejection = RequestRejection.RequestLineTooLong;
                return false;
            }
        }

        int length = FindLineEnd(ref reader, window, out ReadOnlySpan<byte> line);
        if (length < 0)
        {
            // No LF yet. Refuse early what can no longer become valid (e.g. TLS bytes on a plain port).
            rejection = CheckPartialRequestLine(ref reader, window);
            if (rejection == RequestRejection.None && reader.Remaining >= window)
            {
                rejection = RequestRejection.RequestLineTooLong;
            }

            if (rejection == RequestRejection.None)
            {
                reader = start;
            }

            return false;
        }

        rejection = line.Length == length
            ? ParseRequestLine(ref handler, line)
            : ParseRequestLineCopied(ref handler, ref reader, length);
        if (rejection != RequestRejection.None)
        {
            return false;
        }

        reader.Advance(length);
        return true;
    }

    /// <summary>
    /// Parses field lines until the empty line that ends the section, calling
    /// <see cref="IHttp1RequestHandler.OnHeader"/> for each. Complete lines are consumed one by one, so a section
    /// that arrives in pieces resumes where it stopped; <paramref name="state"/> carries the counts across calls.
    /// True: the empty line was consumed. False with <see cref="RequestRejection.None"/>: more data is needed (the
    /// reader stands at the start of the incomplete line). False otherwise: the request is bad.
    /// </summary>
    public bool TryParseHeaders<THandler>(ref THandler handler, ref SequenceReader<byte> reader, ref Http1HeaderState state, out RequestRejection rejection)
        where THandler : struct, IHttp1RequestHandler
        => TryParseFieldSection(ref handler, ref reader, ref state.Count, ref state.Bytes, Limits.MaxHeaderCount, Limits.MaxHeaderBytes, out rejection);

    /// <summary>The field-section loop, shared with the trailer section of <see cref="ChunkedDecoder"/>.</summary>
    internal static bool TryParseFieldSection<THandler>(ref THandler handler, ref SequenceReader<byte> reader, ref int count, ref int bytes,
        int maxCount, int maxBytes, out RequestRejection rejection)
        where THandler : struct, IHttp1RequestHandler
    {
        while (true)
        {
            int budget = maxBytes - bytes;
            if (budget <= 0)
            {
                rejection = RequestRejection.HeadersTooLarge;
                return false;
            }

            if (count < maxCount)
            {
                ReadOnlySpan<byte> unread = reader.UnreadSpan;
                int fast = ParseFieldLineInPlace(ref handler, unread.Length > budget ? unread[..budget] : unread);
                if (fast > 0)
                {
                    reader.Advance(fast);
                    bytes += fast;
                    count++;
                    continue;
                }
            }

            int length = FindLineEnd(ref reader, budget, out ReadOnlySpan<byte> line);
            if (length < 0)
            {
                // Even if the next byte were LF, this line would not fit: do not wait for it.
                rejection = reader.Remaining >= budget ? RequestRejection.HeadersTooLarge : RequestRejection.None;
                return false;
            }

            if (length == 2 && (line.Length == 2 ? line[0] == CR : reader.IsNext("\r\n"u8)))
            {
                reader.Advance(2);
                bytes += 2;
                rejection = RequestRejection.None;
                return true;
            }

            if (count >= maxCount)
            {
                rejection = RequestRejection.TooManyHeaders;
                return false;
            }

            rejection = line.Length == length
                ? ParseFieldLine(ref handler, line)
                : ParseFieldLineCopied(ref handler, ref reader, length);
            if (rejection != RequestRejection.None)
            {
                return false;
            }

            reader.Advance(length);
            bytes += length;
            count++;
        }
    }

    /// <summary>
    /// Finds the LF ending the line that starts at the reader, within <paramref name="window"/> bytes. Returns the
    /// line's length including the LF, or -1 if no LF is buffered within the window. When the whole line lies in the
    /// current span, <paramref name="line"/> is that line; otherwise it is empty and the caller copies.
    /// </summary>
    internal static int FindLineEnd(scoped ref SequenceReader<byte> reader, int window, out ReadOnlySpan<byte> line)
    {
        ReadOnlySpan<byte> span = reader.UnreadSpan;
        int index = (span.Length > window ? span[..window] : span).IndexOf(LF);
        if (index >= 0)
        {
            line = span[..(index + 1)];
            return index + 1;
        }

        line = default;
        if (span.Length >= window || reader.Remaining == span.Length)
        {
            return -1;
        }

        ReadOnlySequence<byte> rest = reader.UnreadSequence.Slice(span.Length);
        if (rest.Length > window - span.Length)
        {
            rest = rest.Slice(0, window - span.Length);
        }

        SequencePosition? lf = rest.PositionOf(LF);
        return lf is null ? -1 : span.Length + (int)rest.Slice(0, lf.Value).Length + 1;
    }

    // RFC 9112 §3: request-line = method SP request-target SP HTTP-version CRLF. `line` ends with LF.
    private static RequestRejection ParseRequestLine<THandler>(ref THandler handler, ReadOnlySpan<byte> line)
        where THandler : struct, IHttp1RequestHandler
    {
        if (line.Length < 2 || line[^2] != CR)
        {
            return RequestRejection.BareLf;
        }

        ReadOnlySpan<byte> content = line[..^2];

        // method = token (RFC 9110 §9.1), ended by exactly one SP.
        int methodEnd = HttpCharacters.IndexOfInvalidTokenChar(content);
        if (methodEnd < 0)
        {
            return RequestRejection.InvalidRequestLine;
        }

        byte stop = content[methodEnd];
        if (stop != SP)
        {
            return stop == CR ? RequestRejection.BareCr : RequestRejection.InvalidMethod;
        }

        if (methodEnd == 0)
        {
            return RequestRejection.InvalidRequestLine;
        }

        ReadOnlySpan<byte> methodToken = content[..methodEnd];
        ReadOnlySpan<byte> rest = content[(methodEnd + 1)..];
        int targetEnd = rest.IndexOf(SP);
        if (targetEnd <= 0)
        {
            return Fail(rest, RequestRejection.InvalidRequestLine);
        }

        ReadOnlySpan<byte> target = rest[..targetEnd];
        ReadOnlySpan<byte> versionBytes = rest[(targetEnd + 1)..];

        // RFC 9112 §2.3: HTTP-version is case-sensitive "HTTP/" DIGIT "." DIGIT; we speak 1.0 and 1.1.
        HttpVersion version;
        if (versionBytes.SequenceEqual("HTTP/1.1"u8))
        {
            version = HttpVersion.Http11;
        }
        else if (versionBytes.SequenceEqual("HTTP/1.0"u8))
        {
            version = HttpVersion.Http10;
        }
        else
        {
            return RejectVersion(rest, versionBytes);
        }

        int bad = HttpCharacters.IndexOfInvalidTargetChar(target);
        if (bad >= 0)
        {
            return target[bad] == CR ? RequestRejection.BareCr : RequestRejection.InvalidTarget;
        }

        HttpMethod method = HttpMethods.FromBytes(methodToken);
        if (!IsAllowedTargetForm(method, target))
        {
            return RequestRejection.InvalidTarget;
        }

        handler.OnRequestLine(method, methodToken, target, version);
        return RequestRejection.None;
    }

    // RFC 9112 §5.1: field-line = field-name ":" OWS field-value OWS. `line` is not empty and ends with LF.
    private static RequestRejection ParseFieldLine<THandler>(ref THandler handler, ReadOnlySpan<byte> line)
        where THandler : struct, IHttp1RequestHandler
    {
        if (line.Length < 2 || line[^2] != CR)
        {
            return RequestRejection.BareLf;
        }

        ReadOnlySpan<byte> content = line[..^2];

        // RFC 9112 §5.2: obs-fold must be rejected outside message/http; RFC 9112 §2.2: so must whitespace before
        // the first field line.
        if (content[0] is SP or HTAB)
        {
            return RequestRejection.ObsFold;
        }

        int colon = content.IndexOf((byte)':');
        if (colon <= 0)
        {
            return colon < 0 ? Fail(content, RequestRejection.InvalidHeaderName) : RequestRejection.InvalidHeaderName;
        }

        ReadOnlySpan<byte> name = content[..colon];
        int bad = HttpCharacters.IndexOfInvalidTokenChar(name);
        if (bad >= 0)
        {
            return RejectFieldName(name, bad);
        }

        ReadOnlySpan<byte> value = HttpCharacters.TrimWhitespace(content[(colon + 1)..]);
        bad = HttpCharacters.IndexOfInvalidFieldValueChar(value);
        if (bad >= 0)
        {
            return value[bad] == CR ? RequestRejection.BareCr : RequestRejection.InvalidHeaderValue;
        }

        handler.OnHeader(KnownHeaders.Lookup(name), name, value);
        return RequestRejection.None;
    }

    /// <summary>
    /// The usual field line in one pass: a valid line that lies whole in <paramref name="span"/> is handed to the
    /// handler and its length (CRLF included) returned. Anything else returns 0 and is left to the line-by-line path
    /// (<see cref="FindLineEnd"/>, <see cref="ParseFieldLine{THandler}"/>), which accepts exactly the lines this
    /// accepts and names what is wrong with the others: so this path never rejects, and never accepts more.
    /// The separate vectorised scans there (LF, colon, name, whitespace, value) each cost more to set up than a short
    /// line's bytes; here the name and the value are one inline 16-byte scan each (<see cref="HttpCharacters.TokenLength"/>,
    /// <see cref="HttpCharacters.FieldValueLength"/>).
    /// </summary>
    private static int ParseFieldLineInPlace<THandler>(ref THandler handler, ReadOnlySpan<byte> span)
        where THandler : struct, IHttp1RequestHandler
    {
        // A name of at least one tchar, then the colon (RFC 9112 §5: no whitespace before it).
        int i = HttpCharacters.TokenLength(span);
        if (i == 0 || (uint)i >= (uint)span.Length || span[i] != (byte)':')
        {
            return 0;
        }

        ReadOnlySpan<byte> name = span[..i];
        int valueStart = i + 1;

        // The first byte no value may hold (OWS are value bytes) must be the CR of the line's CRLF.
        i = valueStart + HttpCharacters.FieldValueLength(span[valueStart..]);
        if ((uint)(i + 1) >= (uint)span.Length || span[i] != CR || span[i + 1] != LF)
        {
            return 0;
        }

        handler.OnHeader(KnownHeaders.Lookup(name), name, HttpCharacters.TrimWhitespace(span[valueStart..i]));
        return i + 2;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static RequestRejection ParseRequestLineCopied<THandler>(ref THandler handler, ref SequenceReader<byte> reader, int length)
        where THandler : struct, IHttp1RequestHandler
    {
        byte[]? rented = null;
        Span<byte> buffer = length <= StackLineBytes ? stackalloc byte[StackLineBytes] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            buffer = buffer[..length];
            reader.TryCopyTo(buffer);
            return ParseRequestLine(ref handler, buffer);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static RequestRejection ParseFieldLineCopied<THandler>(ref THandler handler, ref SequenceReader<byte> reader, int length)
        where THandler : struct, IHttp1RequestHandler
    {
        byte[]? rented = null;
        Span<byte> buffer = length <= StackLineBytes ? stackalloc byte[StackLineBytes] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            buffer = buffer[..length];
            reader.TryCopyTo(buffer);
            return ParseFieldLine(ref handler, buffer);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// Judges a request-line whose LF has not arrived. Only the method can be judged this early; the same rules as
    /// <see cref="ParseRequestLine"/> apply, so the outcome does not depend on how the bytes were split. A CR might
    /// be the line end, so it is left for the complete line.
    /// </summary>
    private static RequestRejection CheckPartialRequestLine(ref SequenceReader<byte> reader, int window)
    {
        ReadOnlySequence<byte> buffered = reader.UnreadSequence;
        if (buffered.Length > window)
        {
            buffered = buffered.Slice(0, window);
        }

        long position = 0;
        foreach (ReadOnlyMemory<byte> segment in buffered)
        {
            ReadOnlySpan<byte> span = segment.Span;
            int index = HttpCharacters.IndexOfInvalidTokenChar(span);
            if (index < 0)
            {
                position += span.Length;
                continue;
            }

            byte b = span[index];
            if (b == SP)
            {
                return position + index == 0 ? RequestRejection.InvalidRequestLine : RequestRejection.None;
            }

            return b == CR ? RequestRejection.None : RequestRejection.InvalidMethod;
        }

        return RequestRejection.None;
    }

    private static RequestRejection RejectVersion(ReadOnlySpan<byte> rest, ReadOnlySpan<byte> versionBytes)
    {
        if (rest.Contains(CR))
        {
            return RequestRejection.BareCr;
        }

        if (versionBytes.IsEmpty || versionBytes[0] == SP)
        {
            return RequestRejection.InvalidRequestLine; // "GET / " or two spaces before the version
        }

        int lastSpace = versionBytes.LastIndexOf(SP);
        if (lastSpace >= 0)
        {
            // "GET /a b HTTP/1.1": the target held a space.
            return IsWellFormedVersion(versionBytes[(lastSpace + 1)..]) ? RequestRejection.InvalidTarget : RequestRejection.InvalidRequestLine;
        }

        // RFC 9110 §15.6.6: a well-formed version we do not speak is 505.
        return IsWellFormedVersion(versionBytes) ? RequestRejection.UnsupportedVersion : RequestRejection.InvalidRequestLine;
    }

    private static bool IsWellFormedVersion(ReadOnlySpan<byte> version) =>
        version.Length == 8 && version.StartsWith("HTTP/"u8) && char.IsAsciiDigit((char)version[5]) && version[6] == (byte)'.' && char.IsAsciiDigit((char)version[7]);

    private static RequestRejection RejectFieldName(ReadOnlySpan<byte> name, int bad)
    {
        byte b = name[bad];
        if (b is SP or HTAB && HttpCharacters.TrimWhitespace(name[bad..]).IsEmpty)
        {
            // RFC 9112 §5.1: no whitespace is allowed between the field name and colon; MUST be a 400.
            return RequestRejection.WhitespaceBeforeColon;
        }

        return name.Contains(CR) ? RequestRejection.BareCr : RequestRejection.InvalidHeaderName;
    }

    private static RequestRejection Fail(ReadOnlySpan<byte> content, RequestRejection reason) =>
        content.Contains(CR) ? RequestRejection.BareCr : reason;

    /// <summary>
    /// RFC 9112 §3.2: origin-form for most methods, absolute-form for any (proxies), authority-form only for CONNECT
    /// (RFC 9110 §9.3.6) and asterisk-form only for OPTIONS (RFC 9112 §3.2.4).
    /// </summary>
    private static bool IsAllowedTargetForm(HttpMethod method, ReadOnlySpan<byte> target)
    {
        if (target[0] == (byte)'/')
        {
            return method != HttpMethod.Connect;
        }

        if (RequestTarget.Split(target, out RequestTargetForm form, out _, out _, out _, out _, out _) != RequestTarget.Result.Ok)
        {
            return false;
        }

        return form switch
        {
            RequestTargetForm.Absolute => method != HttpMethod.Connect,
            RequestTargetForm.Authority => method == HttpMethod.Connect,
            RequestTargetForm.Asterisk => method == HttpMethod.Options,
            _ => false,
        };
    }
}

using System.Buffers;
using System.Runtime.CompilerServices;
using Appliance.Protocol.Headers;

namespace Appliance.Protocol.Http1;

/// <summary>
/// Incremental decoder of the chunked transfer coding (RFC 9112 §7.1) over <see cref="SequenceReader{T}"/>. It
/// consumes framing itself and hands body bytes to the caller in place, so a body streams without copies:
/// <code>
/// status = decoder.Read(ref trailers, ref reader, out long n, out var rejection);
/// if (status == ChunkedStatus.Data) { use reader.UnreadSequence.Slice(0, n); reader.Advance(n); decoder.ConsumeData(n); }
/// </code>
/// Framing lines that are not complete are left unconsumed (the reader stays at their start).
/// </summary>
[SkipLocalsInit]
public struct ChunkedDecoder
{
    // A chunk-size beyond 16 hex digits cannot fit 63 bits; leading zeros are not worth allowing past that.
    private const int MaxSizeDigits = 16;
    private const int StackLineBytes = 512;

    private readonly Http1ParserLimits? _limits;
    private State _state;
    private RequestRejection _error;
    private long _remaining;
    private int _trailerCount;
    private int _trailerBytes;

    public ChunkedDecoder(Http1ParserLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        _limits = limits;
    }

    private enum State : byte
    {
        Size,
        Data,
        DataEnd,
        Trailers,
        Done,
        Error,
    }

    /// <summary>True once the last chunk, the trailer section and the final CRLF were consumed.</summary>
    public readonly bool IsDone => _state == State.Done;

    /// <summary>Body bytes of the current chunk not yet consumed.</summary>
    public readonly long RemainingInChunk => _state == State.Data ? _remaining : 0;

    /// <summary>
    /// Advances over framing until body bytes are available (<see cref="ChunkedStatus.Data"/>: <paramref name="dataLength"/>
    /// bytes at the reader's position, never more than the chunk's rest nor than is buffered), the body ends
    /// (<see cref="ChunkedStatus.Done"/>), more input is needed, or the framing is bad (<see cref="ChunkedStatus.Error"/>).
    /// Trailer fields go to <paramref name="trailerHandler"/>'s OnHeader after the same checks as header fields.
    /// </summary>
    public ChunkedStatus Read<THandler>(ref THandler trailerHandler, ref SequenceReader<byte> reader, out long dataLength, out RequestRejection rejection)
        where THandler : struct, IHttp1RequestHandler
    {
        dataLength = 0;
        rejection = RequestRejection.None;
        Http1ParserLimits limits = _limits ?? Http1ParserLimits.Default;
        while (true)
        {
            switch (_state)
            {
                case State.Size:
                {
                    RequestRejection r = ReadSizeLine(ref reader, limits.MaxChunkExtensionBytes, out bool complete, out long size);
                    if (r != RequestRejection.None)
                    {
                        return Fail(r, out rejection);
                    }

                    if (!complete)
                    {
                        return ChunkedStatus.NeedMoreData;
                    }

                    // RFC 9112 §7.1: last-chunk = 1*("0") [ chunk-ext ] CRLF, then the trailer section.
                    _remaining = size;
                    _state = size == 0 ? State.Trailers : State.Data;
                    break;
                }

                case State.Data:
                    if (reader.End)
                    {
                        return ChunkedStatus.NeedMoreData;
                    }

                    dataLength = Math.Min(_remaining, reader.Remaining);
                    return ChunkedStatus.Data;

                case State.DataEnd:
                {
                    // RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
                    if (!reader.TryPeek(out byte first))
                    {
                        return ChunkedStatus.NeedMoreData;
                    }

                    if (first != Http1RequestParser.CR)
                    {
                        return Fail(first == Http1RequestParser.LF ? RequestRejection.BareLf : RequestRejection.InvalidChunkTerminator, out rejection);
                    }

                    if (!reader.TryPeek(1, out byte second))
                    {
                        return ChunkedStatus.NeedMoreData;
                    }

                    if (second != Http1RequestParser.LF)
                    {
                        return Fail(RequestRejection.InvalidChunkTerminator, out rejection);
                    }

                    reader.Advance(2);
                    _state = State.Size;
                    break;
                }

                case State.Trailers:
                {
                    // RFC 9112 §7.1.2: trailer fields follow the header field rules; their section ends with CRLF.
                    if (Http1RequestParser.TryParseFieldSection(ref trailerHandler, ref reader, ref _trailerCount, ref _trailerBytes,
                            limits.MaxHeaderCount, limits.MaxTrailerBytes, out RequestRejection r))
                    {
                        _state = State.Done;
                        return ChunkedStatus.Done;
                    }

                    if (r == RequestRejection.None)
                    {
                        return ChunkedStatus.NeedMoreData;
                    }

                    return Fail(r is RequestRejection.HeadersTooLarge or RequestRejection.TooManyHeaders ? RequestRejection.TrailersTooLarge : r, out rejection);
                }

                case State.Done:
                    return ChunkedStatus.Done;

                default:
                    rejection = _error;
                    return ChunkedStatus.Error;
            }
        }
    }

    /// <summary>Records that <paramref name="count"/> body bytes (at most the last dataLength) were consumed.</summary>
    public void ConsumeData(long count)
    {
        if (count < 0 || count > RemainingInChunk)
        {
            throw new ArgumentOutOfRangeException(nameof(count));
        }

        _remaining -= count;
        if (_remaining == 0)
        {
            _state = State.DataEnd;
        }
    }

    private ChunkedStatus Fail(RequestRejection reason, out RequestRejection rejection)
    {
        _state = State.Error;
        _error = reason;
        rejection = reason;
        return ChunkedStatus.Error;
    }

    private static RequestRejection ReadSizeLine(ref SequenceReader<byte> reader, int maxExtension, out bool complete, out long size)
    {
        size = 0;
        complete = false;
        int window = MaxSizeDigits + maxExtension + 2;
        int length = Http1RequestParser.FindLineEnd(ref reader, window, out ReadOnlySpan<byte> line);
        if (length < 0)
        {
            return reader.Remaining >= window ? RejectLongSizeLine(reader) : RequestRejection.None;
        }

        RequestRejection r = line.Length == length
            ? ParseSizeLine(line, maxExtension, out size)
            : ParseSizeLineCopied(ref reader, length, maxExtension, out size);
        if (r == RequestRejection.None)
        {
            reader.Advance(length);
            complete = true;
        }

        return r;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static RequestRejection ParseSizeLineCopied(ref SequenceReader<byte> reader, int length, int maxExtension, out long size)
    {
        byte[]? rented = null;
        Span<byte> buffer = length <= StackLineBytes ? stackalloc byte[StackLineBytes] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            buffer = buffer[..length];
            reader.TryCopyTo(buffer);
            return ParseSizeLine(buffer, maxExtension, out size);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    // chunk-size = 1*HEXDIG; then [ chunk-ext ] CRLF. `line` ends with LF.
    private static RequestRejection ParseSizeLine(ReadOnlySpan<byte> line, int maxExtension, out long size)
    {
        size = 0;
        if (line.Length < 2 || line[^2] != Http1RequestParser.CR)
        {
            return RequestRejection.BareLf;
        }

        ReadOnlySpan<byte> content = line[..^2];
        int digits = 0;
        ulong value = 0;
        for (; digits < content.Length; digits++)
        {
            int hex = HexValue(content[digits]);
            if (hex < 0)
            {
                break;
            }

            if (digits == MaxSizeDigits)
            {
                return RequestRejection.ChunkSizeOverflow;
            }

            value = (value << 4) | (uint)hex;
        }

        if (digits == 0)
        {
            return RequestRejection.InvalidChunkSize; // empty, sign, "0x", leading whitespace
        }

        if (value > long.MaxValue)
        {
            return RequestRejection.ChunkSizeOverflow;
        }

        ReadOnlySpan<byte> extension = content[digits..];
        if (extension.Length > maxExtension)
        {
            return RequestRejection.ChunkExtensionTooLong;
        }

        if (!extension.IsEmpty && !IsValidExtension(extension))
        {
            if (extension.Contains(Http1RequestParser.CR))
            {
                return RequestRejection.BareCr;
            }

            // "5z", "0x10": the size itself is malformed, not an extension.
            return extension[0] is (byte)';' or Http1RequestParser.SP or Http1RequestParser.HTAB
                ? RequestRejection.InvalidChunkExtension
                : RequestRejection.InvalidChunkSize;
        }

        size = (long)value;
        return RequestRejection.None;
    }

    /// <summary>A size line with no LF within the limit: tell which part is at fault, looking only at its start.</summary>
    private static RequestRejection RejectLongSizeLine(SequenceReader<byte> probe)
    {
        int digits = 0;
        while (digits <= MaxSizeDigits && probe.TryRead(out byte b) && HexValue(b) >= 0)
        {
            digits++;
        }

        return digits switch
        {
            0 => RequestRejection.InvalidChunkSize,
            > MaxSizeDigits => RequestRejection.ChunkSizeOverflow,
            _ => RequestRejection.ChunkExtensionTooLong,
        };
    }

    /// <summary>
    /// RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), with
    /// chunk-ext-name = token and chunk-ext-val = token / quoted-string. Extensions are checked, then ignored.
    /// </summary>
    private static bool IsValidExtension(ReadOnlySpan<byte> ext)
    {
        int p = 0;
        while (p < ext.Length)
        {
            p = SkipWhitespace(ext, p);
            if (p == ext.Length || ext[p] != (byte)';')
            {
                return false;
            }

            p = SkipToken(ext, SkipWhitespace(ext, p + 1), out bool nameFound);
            if (!nameFound)
            {
                return false;
            }

            int afterName = p;
            p = SkipWhitespace(ext, p);
            if (p == ext.Length || ext[p] != (byte)'=')
            {
                p = afterName; // no value; whitespace must lead to the next ';'
                continue;
            }

            p = SkipWhitespace(ext, p + 1);
            if (p == ext.Length)
            {
                return false;
            }

            if (ext[p] == (byte)'"')
            {
                p = SkipQuotedString(ext, p);
                if (p < 0)
                {
                    return false;
                }
            }
            else
            {
                p = SkipToken(ext, p, out bool valueFound);
                if (!valueFound)
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static int SkipWhitespace(ReadOnlySpan<byte> s, int p)
    {
        while (p < s.Length && HttpCharacters.IsWhitespace(s[p])) p++;
        return p;
    }

    private static int SkipToken(ReadOnlySpan<byte> s, int p, out bool found)
    {
        int start = p;
        while (p < s.Length && HttpCharacters.IsTokenChar(s[p])) p++;
        found = p > start;
        return p;
    }

    // RFC 9110 §5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE; returns the index after it or -1.
    private static int SkipQuotedString(ReadOnlySpan<byte> s, int p)
    {
        for (p++; p < s.Length; p++)
        {
            byte b = s[p];
            if (b == (byte)'"')
            {
                return p + 1;
            }

            if (b == (byte)'\\')
            {
                // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                if (++p == s.Length || !(HttpCharacters.IsFieldValueChar(s[p])))
                {
                    return -1;
                }
            }
            else if (!HttpCharacters.IsQuotedTextChar(b))
            {
                return -1;
            }
        }

        return -1;
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}

using System.Buffers;

namespace Appliance.Protocol.Http2;

/// <summary>
/// The client connection preface (RFC 9113 §3.4): 24 fixed octets, then a SETTINGS frame. On a cleartext listener that
/// accepts both protocols, <see cref="Check"/> tells HTTP/2 with prior knowledge (§3.3) from HTTP/1.1 as bytes arrive:
/// the preface starts with "PRI", which is not a method an HTTP/1.1 server would answer, so any mismatch means HTTP/1.1.
/// </summary>
public static class Http2Preface
{
    /// <summary>Length of <see cref="ClientPreface"/>.</summary>
    public const int Length = 24;

    /// <summary>"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".</summary>
    public static ReadOnlySpan<byte> ClientPreface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    /// <summary>True when <paramref name="input"/> starts with the whole client preface.</summary>
    public static bool IsPreface(in ReadOnlySequence<byte> input) => Check(input) == PrefaceMatch.Match;

    /// <summary>Compares the start of <paramref name="input"/> with the preface, looking at no more than 24 bytes.</summary>
    public static PrefaceMatch Check(in ReadOnlySequence<byte> input)
    {
        ReadOnlySpan<byte> preface = ClientPreface;
        if (input.FirstSpan.Length >= Length)
        {
            return input.FirstSpan[..Length].SequenceEqual(preface) ? PrefaceMatch.Match : PrefaceMatch.NoMatch;
        }

        int matched = 0;
        foreach (ReadOnlyMemory<byte> segment in input)
        {
            ReadOnlySpan<byte> span = segment.Span;
            int n = Math.Min(span.Length, Length - matched);
            if (!span[..n].SequenceEqual(preface.Slice(matched, n)))
            {
                return PrefaceMatch.NoMatch;
            }

            matched += n;
            if (matched == Length)
            {
                return PrefaceMatch.Match;
            }
        }

        return PrefaceMatch.NeedMore;
    }

    /// <summary>
    /// Consumes the preface from <paramref name="reader"/> when it is all there. Returns <see cref="PrefaceMatch.NeedMore"/>
    /// or <see cref="PrefaceMatch.NoMatch"/> without advancing; an invalid preface is a PROTOCOL_ERROR connection
    /// error (§3.4).
    /// </summary>
    public static PrefaceMatch TryConsume(ref SequenceReader<byte> reader)
    {
        PrefaceMatch match = Check(reader.UnreadSequence);
        if (match == PrefaceMatch.Match)
        {
            reader.Advance(Length);
        }

        return match;
    }
}

using System.Buffers;

namespace Appliance.Protocol.Http2;

/// <summary>
/// A HEADERS frame (RFC 9113 §6.2) with padding and priority fields stripped, leaving the field block fragment that
/// goes to the HPACK decoder. When <see cref="EndHeaders"/> is false, CONTINUATION frames of the same stream follow.
/// </summary>
public readonly struct Http2HeadersFrame
{
    public Http2HeadersFrame(
        int streamId,
        ReadOnlySequence<byte> fragment,
        int paddingLength,
        bool endStream,
        bool endHeaders,
        bool hasPriority,
        Http2Priority priority)
    {
        StreamId = streamId;
        Fragment = fragment;
        PaddingLength = paddingLength;
        EndStream = endStream;
        EndHeaders = endHeaders;
        HasPriority = hasPriority;
        Priority = priority;
    }

    public int StreamId { get; }

    /// <summary>The field block fragment, a slice of the frame payload.</summary>
    public ReadOnlySequence<byte> Fragment { get; }

    public int PaddingLength { get; }

    public bool EndStream { get; }

    public bool EndHeaders { get; }

    public bool HasPriority { get; }

    /// <summary>Meaningful only when <see cref="HasPriority"/>.</summary>
    public Http2Priority Priority { get; }
}

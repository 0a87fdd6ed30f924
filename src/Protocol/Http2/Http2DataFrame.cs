using System.Buffers;

namespace Appliance.Protocol.Http2;

/// <summary>
/// A DATA frame (RFC 9113 §6.1) with its padding stripped. Flow control counts the whole payload, padding and the
/// Pad Length octet included (§6.9.1), so the connection debits <see cref="FlowControlledLength"/>, not
/// <see cref="Data"/>.Length, from both windows.
/// </summary>
public readonly struct Http2DataFrame
{
    public Http2DataFrame(int streamId, ReadOnlySequence<byte> data, int paddingLength, int flowControlledLength, bool endStream)
    {
        StreamId = streamId;
        Data = data;
        PaddingLength = paddingLength;
        FlowControlledLength = flowControlledLength;
        EndStream = endStream;
    }

    public int StreamId { get; }

    /// <summary>The application data, a slice of the frame payload (valid as long as the payload buffer is).</summary>
    public ReadOnlySequence<byte> Data { get; }

    /// <summary>Number of padding octets (the Pad Length field; 0 when not padded).</summary>
    public int PaddingLength { get; }

    /// <summary>The frame's payload length: what DATA costs in the flow-control windows.</summary>
    public int FlowControlledLength { get; }

    public bool EndStream { get; }
}

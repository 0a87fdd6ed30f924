using System.Buffers;

namespace Appliance.Protocol.Http2;

/// <summary>A GOAWAY frame (RFC 9113 §6.8).</summary>
public readonly struct Http2GoAwayFrame
{
    public Http2GoAwayFrame(int lastStreamId, Http2ErrorCode errorCode, ReadOnlySequence<byte> debugData)
    {
        LastStreamId = lastStreamId;
        ErrorCode = errorCode;
        DebugData = debugData;
    }

    /// <summary>The highest stream the sender might have processed (reserved bit cleared).</summary>
    public int LastStreamId { get; }

    /// <summary>May be a code this server does not know (§7).</summary>
    public Http2ErrorCode ErrorCode { get; }

    /// <summary>Opaque diagnostic bytes; log them at most, never interpret them (§6.8).</summary>
    public ReadOnlySequence<byte> DebugData { get; }
}

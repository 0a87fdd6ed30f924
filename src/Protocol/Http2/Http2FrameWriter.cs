using System.Buffers;
using System.Buffers.Binary;

namespace Appliance.Protocol.Http2;

/// <summary>
/// Serializes the frames a server sends. Each frame has a <see cref="Span{T}"/> form that returns the bytes written
/// and an <see cref="IBufferWriter{T}"/> form (a <c>PipeWriter</c>) that advances it. Arguments that no well-behaved
/// caller passes (a stream id of 0 on DATA, a payload over 2^24-1) throw: they are bugs, not peer input.
/// The caller is the connection's single writer; flow control and frame sizing decisions happen before these calls.
/// </summary>
public static class Http2FrameWriter
{
    /// <summary>Bytes of a SETTINGS ACK frame.</summary>
    public const int SettingsAckLength = Http2FrameHeader.Size;

    /// <summary>Bytes of a PING frame.</summary>
    public const int PingLength = Http2FrameHeader.Size + 8;

    /// <summary>Bytes of a RST_STREAM frame.</summary>
    public const int RstStreamLength = Http2FrameHeader.Size + 4;

    /// <summary>Bytes of a WINDOW_UPDATE frame.</summary>
    public const int WindowUpdateLength = Http2FrameHeader.Size + 4;

    // SETTINGS (§6.5)

    /// <summary>Bytes of a SETTINGS frame carrying <paramref name="count"/> pairs.</summary>
    public static int GetSettingsLength(int count) => Http2FrameHeader.Size + (count * Http2Setting.Size);

    public static int WriteSettings(Span<byte> destination, ReadOnlySpan<Http2Setting> settings)
    {
        int length = settings.Length * Http2Setting.Size;
        new Http2FrameHeader(length, Http2FrameType.Settings, Http2FrameFlags.None, 0).Write(destination);
        Span<byte> pairs = destination.Slice(Http2FrameHeader.Size, length);
        for (int i = 0; i < settings.Length; i++)
        {
            Span<byte> pair = pairs.Slice(i * Http2Setting.Size, Http2Setting.Size);
            BinaryPrimitives.WriteUInt16BigEndian(pair, (ushort)settings[i].Id);
            BinaryPrimitives.WriteUInt32BigEndian(pair.Slice(2), settings[i].Value);
        }

        return Http2FrameHeader.Size + length;
    }

    public static void WriteSettings(IBufferWriter<byte> output, ReadOnlySpan<Http2Setting> settings)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Advance(WriteSettings(output.GetSpan(GetSettingsLength(settings.Length)), settings));
    }

    /// <summary>SETTINGS with ACK, owed for every SETTINGS the peer sends (§6.5.3).</summary>
    public static int WriteSettingsAck(Span<byte> destination)
    {
        new Http2FrameHeader(0, Http2FrameType.Settings, Http2FrameFlags.Ack, 0).Write(destination);
        return SettingsAckLength;
    }

    public static void WriteSettingsAck(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Advance(WriteSettingsAck(output.GetSpan(SettingsAckLength)));
    }

    // PING (§6.7)

    /// <summary>
    /// PING with the 8 opaque octets; <paramref name="ack"/> true answers a peer's PING with the same data (§6.7),
    /// false sends one of the server's own (liveness or RTT).
    /// </summary>
    public static int WritePing(Span<byte> destination, ulong opaqueData, bool ack)
    {
        new Http2FrameHeader(8, Http2FrameType.Ping, ack ? Http2FrameFlags.Ack : Http2FrameFlags.None, 0).Write(destination);
        BinaryPrimitives.WriteUInt64BigEndian(destination.Slice(Http2FrameHeader.Size), opaqueData);
        return PingLength;
    }

    public static void WritePing(IBufferWriter<byte> output, ulong opaqueData, bool ack)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Advance(WritePing(output.GetSpan(PingLength), opaqueData, ack));
    }

    public static int WritePingAck(Span<byte> destination, ulong opaqueData) => WritePing(destination, opaqueData, ack: true);

    public static void WritePingAck(IBufferWriter<byte> output, ulong opaqueData) => WritePing(output, opaqueData, ack: true);

    // GOAWAY (§6.8)

    public static int GetGoAwayLength(int debugDataLength) => Http2FrameHeader.Size + 8 + debugDataLength;

    /// <summary>
    /// GOAWAY naming the highest client stream that was or may still be processed (§6.8); debug data is for people,
    /// keep it short and free of secrets.
    /// </summary>
    public static int WriteGoAway(Span<byte> destination, int lastStreamId, Http2ErrorCode errorCode, ReadOnlySpan<byte> debugData)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(lastStreamId);
        int length = 8 + debugData.Length;
        new Http2FrameHeader(length, Http2FrameType.GoAway, Http2FrameFlags.None, 0).Write(destination);
        Span<byte> payload = destination.Slice(Http2FrameHeader.Size, length);
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)lastStreamId);
        BinaryPrimitives.WriteUInt32BigEndian(payload.Slice(4), (uint)errorCode);
        debugData.CopyTo(payload.Slice(8));
        return Http2FrameHeader.Size + length;
    }

    public static void WriteGoAway(IBufferWriter<byte> output, int lastStreamId, Http2ErrorCode errorCode, ReadOnlySpan<byte> debugData)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Advance(WriteGoAway(output.GetSpan(GetGoAwayLength(debugData.Length)), lastStreamId, errorCode, debugData));
    }

    // RST_STREAM (§6.4)

    public static int WriteRstStream(Span<byte> destination, int streamId, Http2ErrorCode errorCode)
    {
        ThrowIfNotStream(streamId);
        new Http2FrameHeader(4, Http2FrameType.RstStream, Http2FrameFlags.None, streamId).Write(destination);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(Http2FrameHeader.Size), (uint)errorCode);
        return RstStreamLength;
    }

    public static void WriteRstStream(IBufferWriter<byte> output, int streamId, Http2ErrorCode errorCode)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Advance(WriteRstStream(output.GetSpan(RstStreamLength), streamId, errorCode));
    }

    // WINDOW_UPDATE (§6.9)

    /// <summary>WINDOW_UPDATE for a stream, or for the connection when <paramref name="streamId"/> is 0.</summary>
    public static int WriteWindowUpdate(Span<byte> destination, int streamId, int increment)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(streamId);
        ArgumentOutOfRangeException.ThrowIfLessThan(increment, 1); // §6.9: 0 is a PROTOCOL_ERROR at the peer
        new Http2FrameHeader(4, Http2FrameType.WindowUpdate, Http2FrameFlags.None, streamId).Write(destination);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(Http2FrameHeader.Size), (uint)increment);
        return WindowUpdateLength;
    }

    public static void WriteWindowUpdate(IBufferWriter<byte> output, int streamId, int increment)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Advance(WriteWindowUpdate(output.GetSpan(WindowUpdateLength), streamId, increment));
    }

    // DATA (§6.1)

    /// <summary>
    /// Only the 9-byte header of a DATA frame of <paramref name="length"/> payload bytes, for a caller that copies the
    /// payload itself (from a pipe, say). The caller has already taken <paramref name="length"/> from both send windows
    /// and kept it within the peer's SETTINGS_MAX_FRAME_SIZE.
    /// </summary>
    public static int WriteDataHeader(Span<byte> destination, int streamId, int length, bool endStream)
    {
        ThrowIfNotStream(streamId);
        new Http2FrameHeader(length, Http2FrameType.Data, endStream ? Http2FrameFlags.EndStream : Http2FrameFlags.None, streamId).Write(destination);
        return Http2FrameHeader.Size;
    }

    /// <summary>One DATA frame, never padded (padding only costs window and bandwidth here).</summary>
    public static int WriteData(Span<byte> destination, int streamId, ReadOnlySpan<byte> data, bool endStream)
    {
        WriteDataHeader(destination, streamId, data.Length, endStream);
        data.CopyTo(destination.Slice(Http2FrameHeader.Size));
        return Http2FrameHeader.Size + data.Length;
    }

    public static void WriteData(IBufferWriter<byte> output, int streamId, ReadOnlySpan<byte> data, bool endStream)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Advance(WriteDataHeader(output.GetSpan(Http2FrameHeader.Size), streamId, data.Length, endStream));
        output.Write(data);
    }

    public static void WriteData(IBufferWriter<byte> output, int streamId, in ReadOnlySequence<byte> data, bool endStream)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (data.Length > Http2FrameHeader.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(data), "A DATA payload cannot exceed 2^24-1 bytes.");
        }

        output.Advance(WriteDataHeader(output.GetSpan(Http2FrameHeader.Size), streamId, (int)data.Length, endStream));
        foreach (ReadOnlyMemory<byte> segment in data)
        {
            output.Write(segment.Span);
        }
    }

    // HEADERS + CONTINUATION (§6.2, §6.10)

    /// <summary>Bytes that <see cref="WriteHeaders(Span{byte}, int, ReadOnlySpan{byte}, bool, int)"/> writes.</summary>
    public static int GetHeadersLength(int headerBlockLength, int maxFrameSize)
    {
        ThrowIfBadFrameSize(maxFrameSize);
        int frames = headerBlockLength == 0 ? 1 : (int)(((long)headerBlockLength + maxFrameSize - 1) / maxFrameSize);
        return checked((frames * Http2FrameHeader.Size) + headerBlockLength);
    }

    /// <summary>
    /// An encoded field block as one HEADERS frame, followed by CONTINUATION frames when it is longer than the peer's
    /// <paramref name="maxFrameSize"/> (§4.3: the frames go out back to back, nothing may come between them). END_STREAM
    /// goes on HEADERS only (CONTINUATION has no such flag), END_HEADERS on the last frame.
    /// </summary>
    public static int WriteHeaders(Span<byte> destination, int streamId, ReadOnlySpan<byte> headerBlock, bool endStream, int maxFrameSize)
    {
        ThrowIfNotStream(streamId);
        ThrowIfBadFrameSize(maxFrameSize);
        int written = 0;
        Http2FrameType type = Http2FrameType.Headers;
        Http2FrameFlags flags = endStream ? Http2FrameFlags.EndStream : Http2FrameFlags.None;
        do
        {
            int take = Math.Min(headerBlock.Length, maxFrameSize);
            bool last = take == headerBlock.Length;
            Span<byte> frame = destination.Slice(written, Http2FrameHeader.Size + take);
            new Http2FrameHeader(take, type, last ? flags | Http2FrameFlags.EndHeaders : flags, streamId).Write(frame);
            headerBlock[..take].CopyTo(frame.Slice(Http2FrameHeader.Size));
            written += frame.Length;
            headerBlock = headerBlock.Slice(take);
            type = Http2FrameType.Continuation;
            flags = Http2FrameFlags.None;
        }
        while (!headerBlock.IsEmpty);

        return written;
    }

    /// <summary>As the span form, asking the writer for one frame header at a time so a large block needs no large buffer.</summary>
    public static void WriteHeaders(IBufferWriter<byte> output, int streamId, ReadOnlySpan<byte> headerBlock, bool endStream, int maxFrameSize)
    {
        ArgumentNullException.ThrowIfNull(output);
        ThrowIfNotStream(streamId);
        ThrowIfBadFrameSize(maxFrameSize);
        Http2FrameType type = Http2FrameType.Headers;
        Http2FrameFlags flags = endStream ? Http2FrameFlags.EndStream : Http2FrameFlags.None;
        do
        {
            int take = Math.Min(headerBlock.Length, maxFrameSize);
            bool last = take == headerBlock.Length;
            // The frame header alone needs contiguous room; the block may span the writer's segments, as DATA does.
            new Http2FrameHeader(take, type, last ? flags | Http2FrameFlags.EndHeaders : flags, streamId).Write(output.GetSpan(Http2FrameHeader.Size));
            output.Advance(Http2FrameHeader.Size);
            output.Write(headerBlock[..take]);
            headerBlock = headerBlock.Slice(take);
            type = Http2FrameType.Continuation;
            flags = Http2FrameFlags.None;
        }
        while (!headerBlock.IsEmpty);
    }

    private static void ThrowIfNotStream(int streamId)
    {
        if (streamId <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(streamId), streamId, "A stream frame needs a stream id above 0.");
        }
    }

    private static void ThrowIfBadFrameSize(int maxFrameSize)
    {
        if (maxFrameSize is < Http2Settings.DefaultMaxFrameSize or > Http2Settings.MaxAllowedFrameSize)
        {
            throw new ArgumentOutOfRangeException(nameof(maxFrameSize), maxFrameSize, "SETTINGS_MAX_FRAME_SIZE is 16384..16777215.");
        }
    }
}

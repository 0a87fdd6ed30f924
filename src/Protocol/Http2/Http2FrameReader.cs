using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;

namespace Appliance.Protocol.Http2;

/// <summary>
/// Cuts frames out of the connection's input and turns each payload into a typed view, checking the rules RFC 9113 §6
/// sets for each type. Nothing throws and nothing is copied: a violation comes back as an <see cref="Http2FrameError"/>
/// and views slice the payload, so they live as long as the input buffer is not advanced past.
/// <para>
/// Every TryReadX expects a header of its type (the connection dispatches on <see cref="Http2FrameHeader.Type"/> and
/// ignores unknown types, §5.5). Stream-state rules are not checked here: see <see cref="Http2StreamStateMachine"/>.
/// </para>
/// </summary>
public static class Http2FrameReader
{
    private const uint ReservedBitMask = 0x7FFF_FFFF;

    /// <summary>
    /// Takes one whole frame from <paramref name="reader"/>. Returns false with no error when the frame is not all
    /// there yet (the reader is left at its start), and false with a FRAME_SIZE_ERROR connection error as soon as a
    /// header announces more than <paramref name="maxFrameSize"/> (the SETTINGS_MAX_FRAME_SIZE this server advertised,
    /// §4.2) — without waiting for the oversized payload.
    /// </summary>
    public static bool TryReadFrame(
        ref SequenceReader<byte> reader,
        int maxFrameSize,
        out Http2FrameHeader header,
        out ReadOnlySequence<byte> payload,
        out Http2FrameError error)
    {
        error = default;
        payload = default;
        if (!Http2FrameHeader.TryPeek(ref reader, out header))
        {
            return false;
        }

        if (header.Length > maxFrameSize)
        {
            // §4.2: always a connection error here; the frame may carry a field block whose loss would desync HPACK.
            error = Http2FrameError.Connection(Http2ErrorCode.FrameSizeError, "frame larger than SETTINGS_MAX_FRAME_SIZE");
            return false;
        }

        if (reader.Remaining < Http2FrameHeader.Size + header.Length)
        {
            return false;
        }

        reader.Advance(Http2FrameHeader.Size);
        payload = reader.UnreadSequence.Slice(0, header.Length);
        reader.Advance(header.Length);
        return true;
    }

    /// <summary>DATA (§6.1): padding stripped; the flow-control cost is the whole payload.</summary>
    public static bool TryReadData(in Http2FrameHeader header, in ReadOnlySequence<byte> payload, out Http2DataFrame frame, out Http2FrameError error)
    {
        Debug.Assert(header.Type == Http2FrameType.Data);
        frame = default;
        if (header.StreamId == 0)
        {
            error = Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "DATA on stream 0");
            return false;
        }

        if (!TryStripPadding(header, payload, fixedLength: 0, out ReadOnlySequence<byte> data, out int padding, out error))
        {
            return false;
        }

        frame = new Http2DataFrame(header.StreamId, data, padding, header.Length, header.HasFlag(Http2FrameFlags.EndStream));
        return true;
    }

    /// <summary>
    /// HEADERS (§6.2): padding and priority fields stripped. A stream that depends on itself is a stream error (§5.3.1);
    /// <paramref name="frame"/> is still filled then, because the fragment must still go through the HPACK decoder to
    /// keep the connection's compression state in step (§4.3) before the stream is reset.
    /// </summary>
    public static bool TryReadHeaders(in Http2FrameHeader header, in ReadOnlySequence<byte> payload, out Http2HeadersFrame frame, out Http2FrameError error)
    {
        Debug.Assert(header.Type == Http2FrameType.Headers);
        frame = default;
        if (header.StreamId == 0)
        {
            error = Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "HEADERS on stream 0");
            return false;
        }

        bool hasPriority = header.HasFlag(Http2FrameFlags.Priority);
        int fixedLength = hasPriority ? Http2Priority.Size : 0;
        if (!TryStripPadding(header, payload, fixedLength, out ReadOnlySequence<byte> rest, out int padding, out error))
        {
            return false;
        }

        Http2Priority priority = default;
        ReadOnlySequence<byte> fragment = rest;
        if (hasPriority)
        {
            priority = ParsePriority(rest);
            fragment = rest.Slice(Http2Priority.Size);
        }

        frame = new Http2HeadersFrame(
            header.StreamId,
            fragment,
            padding,
            header.HasFlag(Http2FrameFlags.EndStream),
            header.HasFlag(Http2FrameFlags.EndHeaders),
            hasPriority,
            priority);

        if (hasPriority && priority.StreamDependency == header.StreamId)
        {
            error = Http2FrameError.Stream(Http2ErrorCode.ProtocolError, "stream depends on itself");
            return false;
        }

        return true;
    }

    /// <summary>PRIORITY (§6.3): only validated; the server does not act on priorities.</summary>
    public static bool TryReadPriority(in Http2FrameHeader header, in ReadOnlySequence<byte> payload, out Http2Priority priority, out Http2FrameError error)
    {
        Debug.Assert(header.Type == Http2FrameType.Priority);
        priority = default;
        if (header.StreamId == 0)
        {
            error = Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "PRIORITY on stream 0");
            return false;
        }

        if (header.Length != Http2Priority.Size)
        {
            // §6.3: a stream error, unlike most size errors, since PRIORITY changes no connection state.
            error = Http2FrameError.Stream(Http2ErrorCode.FrameSizeError, "PRIORITY length is not 5");
            return false;
        }

        priority = ParsePriority(payload);
        if (priority.StreamDependency == header.StreamId)
        {
            error = Http2FrameError.Stream(Http2ErrorCode.ProtocolError, "stream depends on itself");
            return false;
        }

        error = default;
        return true;
    }

    /// <summary>RST_STREAM (§6.4). The code may be one this server does not know (§7).</summary>
    public static bool TryReadRstStream(in Http2FrameHeader header, in ReadOnlySequence<byte> payload, out Http2ErrorCode errorCode, out Http2FrameError error)
    {
        Debug.Assert(header.Type == Http2FrameType.RstStream);
        errorCode = default;
        if (header.StreamId == 0)
        {
            error = Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "RST_STREAM on stream 0");
            return false;
        }

        if (header.Length != 4)
        {
            error = Http2FrameError.Connection(Http2ErrorCode.FrameSizeError, "RST_STREAM length is not 4");
            return false;
        }

        errorCode = (Http2ErrorCode)ReadUInt32(payload);
        error = default;
        return true;
    }

    /// <summary>
    /// SETTINGS (§6.5): framing and every known value are checked here, so applying the pairs in order afterwards
    /// cannot fail half-way. Unknown identifiers are left in the frame and must be skipped (§6.5.2).
    /// </summary>
    public static bool TryReadSettings(in Http2FrameHeader header, in ReadOnlySequence<byte> payload, out Http2SettingsFrame frame, out Http2FrameError error)
    {
        Debug.Assert(header.Type == Http2FrameType.Settings);
        frame = default;
        if (header.StreamId != 0)
        {
            error = Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "SETTINGS on a stream");
            return false;
        }

        bool isAck = header.HasFlag(Http2FrameFlags.Ack);
        if (isAck && header.Length != 0)
        {
            error = Http2FrameError.Connection(Http2ErrorCode.FrameSizeError, "SETTINGS ACK with a payload");
            return false;
        }

        if (header.Length % Http2Setting.Size != 0)
        {
            error = Http2FrameError.Connection(Http2ErrorCode.FrameSizeError, "SETTINGS length is not a multiple of 6");
            return false;
        }

        frame = new Http2SettingsFrame(isAck, payload);
        foreach (Http2Setting setting in frame)
        {
            error = Http2Settings.Validate(setting.Id, setting.Value);
            if (error.IsError)
            {
                frame = default;
                return false;
            }
        }

        error = default;
        return true;
    }

    /// <summary>
    /// PUSH_PROMISE (§6.6): only a server may push, so one from a client is always a PROTOCOL_ERROR connection error
    /// (§8.4). Always returns false.
    /// </summary>
    public static bool TryReadPushPromise(in Http2FrameHeader header, out Http2FrameError error)
    {
        Debug.Assert(header.Type == Http2FrameType.PushPromise);
        error = Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "PUSH_PROMISE from a client");
        return false;
    }

    /// <summary>PING (§6.7): the 8 opaque octets as a big-endian number, to echo with ACK when the flag is clear.</summary>
    public static bool TryReadPing(in Http2FrameHeader header, in ReadOnlySequence<byte> payload, out ulong opaqueData, out Http2FrameError error)
    {
        Debug.Assert(header.Type == Http2FrameType.Ping);
        opaqueData = 0;
        if (header.StreamId != 0)
        {
            error = Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "PING on a stream");
            return false;
        }

        if (header.Length != 8)
        {
            error = Http2FrameError.Connection(Http2ErrorCode.FrameSizeError, "PING length is not 8");
            return false;
        }

        Span<byte> bytes = stackalloc byte[8];
        payload.CopyTo(bytes);
        opaqueData = BinaryPrimitives.ReadUInt64BigEndian(bytes);
        error = default;
        return true;
    }

    /// <summary>GOAWAY (§6.8).</summary>
    public static bool TryReadGoAway(in Http2FrameHeader header, in ReadOnlySequence<byte> payload, out Http2GoAwayFrame frame, out Http2FrameError error)
    {
        Debug.Assert(header.Type == Http2FrameType.GoAway);
        frame = default;
        if (header.StreamId != 0)
        {
            error = Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "GOAWAY on a stream");
            return false;
        }

        if (header.Length < 8)
        {
            error = Http2FrameError.Connection(Http2ErrorCode.FrameSizeError, "GOAWAY shorter than 8");
            return false;
        }

        Span<byte> bytes = stackalloc byte[8];
        payload.Slice(0, 8).CopyTo(bytes);
        int lastStreamId = (int)(BinaryPrimitives.ReadUInt32BigEndian(bytes) & ReservedBitMask);
        var code = (Http2ErrorCode)BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(4));
        frame = new Http2GoAwayFrame(lastStreamId, code, payload.Slice(8));
        error = default;
        return true;
    }

    /// <summary>
    /// WINDOW_UPDATE (§6.9): the 31-bit increment (reserved bit ignored). An increment of 0 is a PROTOCOL_ERROR, a
    /// stream error on a stream and a connection error on stream 0 (§6.9).
    /// </summary>
    public static bool TryReadWindowUpdate(in Http2FrameHeader header, in ReadOnlySequence<byte> payload, out int increment, out Http2FrameError error)
    {
        Debug.Assert(header.Type == Http2FrameType.WindowUpdate);
        increment = 0;
        if (header.Length != 4)
        {
            error = Http2FrameError.Connection(Http2ErrorCode.FrameSizeError, "WINDOW_UPDATE length is not 4");
            return false;
        }

        int value = (int)(ReadUInt32(payload) & ReservedBitMask);
        if (value == 0)
        {
            error = header.StreamId == 0
                ? Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "WINDOW_UPDATE increment of 0")
                : Http2FrameError.Stream(Http2ErrorCode.ProtocolError, "WINDOW_UPDATE increment of 0");
            return false;
        }

        increment = value;
        error = default;
        return true;
    }

    /// <summary>
    /// CONTINUATION (§6.10): the whole payload is a field block fragment. Whether one may arrive now is the
    /// connection's rule (only right after HEADERS or CONTINUATION of the same stream without END_HEADERS).
    /// </summary>
    public static bool TryReadContinuation(in Http2FrameHeader header, in ReadOnlySequence<byte> payload, out ReadOnlySequence<byte> fragment, out Http2FrameError error)
    {
        Debug.Assert(header.Type == Http2FrameType.Continuation);
        if (header.StreamId == 0)
        {
            fragment = default;
            error = Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "CONTINUATION on stream 0");
            return false;
        }

        fragment = payload;
        error = default;
        return true;
    }

    // §6.1, §6.2: the Pad Length octet and `fixedLength` octets of fields must fit; padding must leave a fragment of
    // zero octets or more. The result starts after Pad Length and keeps the fixed fields.
    private static bool TryStripPadding(
        in Http2FrameHeader header,
        in ReadOnlySequence<byte> payload,
        int fixedLength,
        out ReadOnlySequence<byte> content,
        out int padding,
        out Http2FrameError error)
    {
        padding = 0;
        if (!header.HasFlag(Http2FrameFlags.Padded))
        {
            if (header.Length < fixedLength)
            {
                content = default;
                error = Http2FrameError.Connection(Http2ErrorCode.FrameSizeError, "frame too short for its fields");
                return false;
            }

            content = payload;
            error = default;
            return true;
        }

        if (header.Length < 1 + fixedLength)
        {
            content = default;
            error = Http2FrameError.Connection(Http2ErrorCode.FrameSizeError, "frame too short for its fields");
            return false;
        }

        padding = FirstByte(payload);
        if (padding > header.Length - 1 - fixedLength)
        {
            // §6.1: padding as long as the payload or longer is a PROTOCOL_ERROR connection error.
            content = default;
            error = Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "padding exceeds the payload");
            padding = 0;
            return false;
        }

        content = payload.Slice(1, header.Length - 1 - padding);
        error = default;
        return true;
    }

    private static Http2Priority ParsePriority(in ReadOnlySequence<byte> fields)
    {
        Span<byte> bytes = stackalloc byte[Http2Priority.Size];
        fields.Slice(0, Http2Priority.Size).CopyTo(bytes);
        uint dependency = BinaryPrimitives.ReadUInt32BigEndian(bytes);
        return new Http2Priority((int)(dependency & ReservedBitMask), (dependency & ~ReservedBitMask) != 0, bytes[4]);
    }

    private static uint ReadUInt32(in ReadOnlySequence<byte> payload)
    {
        ReadOnlySpan<byte> first = payload.FirstSpan;
        if (first.Length >= 4)
        {
            return BinaryPrimitives.ReadUInt32BigEndian(first);
        }

        Span<byte> bytes = stackalloc byte[4];
        payload.Slice(0, 4).CopyTo(bytes);
        return BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }

    private static byte FirstByte(in ReadOnlySequence<byte> payload)
    {
        ReadOnlySpan<byte> first = payload.FirstSpan;
        if (!first.IsEmpty)
        {
            return first[0];
        }

        Span<byte> one = stackalloc byte[1];
        payload.Slice(0, 1).CopyTo(one);
        return one[0];
    }
}

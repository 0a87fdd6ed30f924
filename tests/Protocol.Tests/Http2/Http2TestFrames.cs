using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Appliance.Protocol.Http2;

namespace Appliance.Protocol.Tests.Http2;

/// <summary>Raw frame bytes for tests, and a dispatcher that runs the typed reader matching a frame's type.</summary>
internal static class Http2TestFrames
{
    public static byte[] Build(Http2FrameType type, Http2FrameFlags flags, int streamId, params byte[] payload) =>
        Build((byte)type, (byte)flags, (uint)streamId, payload);

    /// <summary>A frame with any type byte and a raw 32-bit stream field (reserved bit included).</summary>
    public static byte[] Build(byte type, byte flags, uint rawStreamId, byte[] payload)
    {
        byte[] frame = new byte[Http2FrameHeader.Size + payload.Length];
        frame[0] = (byte)(payload.Length >> 16);
        frame[1] = (byte)(payload.Length >> 8);
        frame[2] = (byte)payload.Length;
        frame[3] = type;
        frame[4] = flags;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(5), rawStreamId);
        payload.CopyTo(frame, Http2FrameHeader.Size);
        return frame;
    }

    /// <summary>Only a 9-byte header announcing <paramref name="length"/> payload bytes.</summary>
    public static byte[] HeaderOnly(int length, Http2FrameType type, Http2FrameFlags flags, int streamId)
    {
        byte[] header = new byte[Http2FrameHeader.Size];
        new Http2FrameHeader(length, type, flags, streamId).Write(header);
        return header;
    }

    public static byte[] U32(uint value)
    {
        byte[] bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return bytes;
    }

    public static byte[] Setting(ushort id, uint value)
    {
        byte[] bytes = new byte[6];
        BinaryPrimitives.WriteUInt16BigEndian(bytes, id);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(2), value);
        return bytes;
    }

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    public static byte[] Bytes(int count, byte value = 0x61) => Enumerable.Repeat(value, count).ToArray();

    /// <summary>Runs the typed reader for the frame's type; unknown types are accepted as the connection ignores them.</summary>
    public static Http2FrameError Validate(in Http2FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        Describe(header, payload, out Http2FrameError error);
        return error;
    }

    /// <summary>Everything the typed reader reports about a frame, as text, so two parses can be compared.</summary>
    public static string Describe(in Http2FrameHeader header, in ReadOnlySequence<byte> payload, out Http2FrameError error)
    {
        var text = new StringBuilder();
        text.Append($"{header.Type} s={header.StreamId} f=0x{(byte)header.Flags:x2} len={header.Length}: ");
        switch (header.Type)
        {
            case Http2FrameType.Data:
                if (Http2FrameReader.TryReadData(header, payload, out Http2DataFrame data, out error))
                {
                    text.Append($"end={data.EndStream} pad={data.PaddingLength} flow={data.FlowControlledLength} data={Hex(data.Data)}");
                }

                break;
            case Http2FrameType.Headers:
                if (Http2FrameReader.TryReadHeaders(header, payload, out Http2HeadersFrame headers, out error) || error.IsStreamError)
                {
                    text.Append($"end={headers.EndStream} eh={headers.EndHeaders} pad={headers.PaddingLength} ");
                    if (headers.HasPriority)
                    {
                        text.Append($"dep={headers.Priority.StreamDependency} x={headers.Priority.IsExclusive} w={headers.Priority.Weight} ");
                    }

                    text.Append($"frag={Hex(headers.Fragment)}");
                }

                break;
            case Http2FrameType.Priority:
                if (Http2FrameReader.TryReadPriority(header, payload, out Http2Priority priority, out error))
                {
                    text.Append($"dep={priority.StreamDependency} x={priority.IsExclusive} w={priority.EffectiveWeight}");
                }

                break;
            case Http2FrameType.RstStream:
                if (Http2FrameReader.TryReadRstStream(header, payload, out Http2ErrorCode code, out error))
                {
                    text.Append($"code={code}");
                }

                break;
            case Http2FrameType.Settings:
                if (Http2FrameReader.TryReadSettings(header, payload, out Http2SettingsFrame settings, out error))
                {
                    text.Append($"ack={settings.IsAck} n={settings.Count}");
                    foreach (Http2Setting setting in settings)
                    {
                        text.Append($" {setting}");
                    }
                }

                break;
            case Http2FrameType.PushPromise:
                Http2FrameReader.TryReadPushPromise(header, out error);
                break;
            case Http2FrameType.Ping:
                if (Http2FrameReader.TryReadPing(header, payload, out ulong opaque, out error))
                {
                    text.Append($"data={opaque:x16}");
                }

                break;
            case Http2FrameType.GoAway:
                if (Http2FrameReader.TryReadGoAway(header, payload, out Http2GoAwayFrame goAway, out error))
                {
                    text.Append($"last={goAway.LastStreamId} code={goAway.ErrorCode} debug={Hex(goAway.DebugData)}");
                }

                break;
            case Http2FrameType.WindowUpdate:
                if (Http2FrameReader.TryReadWindowUpdate(header, payload, out int increment, out error))
                {
                    text.Append($"inc={increment}");
                }

                break;
            case Http2FrameType.Continuation:
                if (Http2FrameReader.TryReadContinuation(header, payload, out ReadOnlySequence<byte> fragment, out error))
                {
                    text.Append($"frag={Hex(fragment)}");
                }

                break;
            default:
                error = default;
                text.Append($"ignored payload={Hex(payload)}");
                break;
        }

        if (error.IsError)
        {
            text.Append($" [{error}]");
        }

        return text.ToString();
    }

    public static string Hex(in ReadOnlySequence<byte> bytes) => Convert.ToHexString(bytes.ToArray());
}

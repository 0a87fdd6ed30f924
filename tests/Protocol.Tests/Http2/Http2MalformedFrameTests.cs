using System.Buffers;
using Appliance.Protocol.Http2;
using Appliance.Protocol.Tests.Http1;
using static Appliance.Protocol.Tests.Http2.Http2TestFrames;

namespace Appliance.Protocol.Tests.Http2;

/// <summary>
/// Frames that break a per-type rule of RFC 9113 §4-§6, each with the error code and scope it must get, whichever way
/// its bytes arrive.
/// </summary>
public class Http2MalformedFrameTests
{
    private const int MaxFrame = 16_384;
    private const bool Conn = true;
    private const bool Strm = false;

    private static readonly Http2FrameType D = Http2FrameType.Data;
    private static readonly Http2FrameType H = Http2FrameType.Headers;
    private static readonly Http2FrameFlags Padded = Http2FrameFlags.Padded;
    private static readonly Http2FrameFlags Prio = Http2FrameFlags.Priority;
    private static readonly Http2FrameFlags EndHeaders = Http2FrameFlags.EndHeaders;

    private static readonly Dictionary<string, (byte[] Input, int MaxFrameSize, Http2ErrorCode Code, bool Connection)> s_cases = new()
    {
        // §4.2 frame size
        ["frame one byte over the default max frame size"] = (Build(D, 0, 1, Bytes(MaxFrame + 1)), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["oversized frame is refused from its header alone"] = (HeaderOnly(1_000_000, D, 0, 1), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["oversized settings frame"] = (HeaderOnly(MaxFrame + 6, Http2FrameType.Settings, 0, 0), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["frame over a raised max frame size"] = (HeaderOnly(20_001, H, EndHeaders, 1), 20_000, Http2ErrorCode.FrameSizeError, Conn),
        ["unknown frame type over max frame size"] = (HeaderOnly(MaxFrame + 1, (Http2FrameType)0xBB, 0, 1), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),

        // §6.1 DATA
        ["DATA on stream 0"] = (Build(D, 0, 0, Bytes(3)), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["padded DATA with no pad length octet"] = (Build(D, Padded, 1), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["DATA pad length equal to payload length"] = (Build(D, Padded, 1, [4, 0, 0, 0]), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["DATA pad length beyond payload length"] = (Build(D, Padded, 1, [9, 0, 0, 0]), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["DATA pad length 255 in a 1-byte payload"] = (Build(D, Padded, 1, [255]), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["DATA padded on stream 0"] = (Build(D, Padded, 0, [0]), MaxFrame, Http2ErrorCode.ProtocolError, Conn),

        // §6.2 HEADERS
        ["HEADERS on stream 0"] = (Build(H, EndHeaders, 0, [0x82]), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["padded HEADERS with no pad length octet"] = (Build(H, Padded | EndHeaders, 1), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["HEADERS with PRIORITY flag and 4 bytes"] = (Build(H, Prio | EndHeaders, 1, [0, 0, 0, 0]), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["padded HEADERS with PRIORITY flag and 5 bytes"] = (Build(H, Padded | Prio | EndHeaders, 1, [0, 0, 0, 0, 0]), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["HEADERS pad length equal to payload length"] = (Build(H, Padded | EndHeaders, 1, [3, 0x82, 0]), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["HEADERS padding eating the priority fields"] = (Build(H, Padded | Prio | EndHeaders, 1, [1, 0, 0, 0, 0, 16]), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["HEADERS depending on itself"] = (Build(H, Prio | EndHeaders, 3, [0, 0, 0, 3, 16, 0x82]), MaxFrame, Http2ErrorCode.ProtocolError, Strm),
        ["HEADERS depending on itself exclusively"] = (Build(H, Prio | EndHeaders, 3, [0x80, 0, 0, 3, 16, 0x82]), MaxFrame, Http2ErrorCode.ProtocolError, Strm),
        ["padded HEADERS depending on itself"] = (Build(H, Padded | Prio | EndHeaders, 5, [1, 0, 0, 0, 5, 16, 0x82, 0]), MaxFrame, Http2ErrorCode.ProtocolError, Strm),

        // §6.3 PRIORITY
        ["PRIORITY on stream 0"] = (Build(Http2FrameType.Priority, 0, 0, [0, 0, 0, 1, 16]), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["PRIORITY of 4 bytes"] = (Build(Http2FrameType.Priority, 0, 1, [0, 0, 0, 0]), MaxFrame, Http2ErrorCode.FrameSizeError, Strm),
        ["PRIORITY of 6 bytes"] = (Build(Http2FrameType.Priority, 0, 1, [0, 0, 0, 0, 16, 0]), MaxFrame, Http2ErrorCode.FrameSizeError, Strm),
        ["PRIORITY depending on its own stream"] = (Build(Http2FrameType.Priority, 0, 7, [0, 0, 0, 7, 16]), MaxFrame, Http2ErrorCode.ProtocolError, Strm),

        // §6.4 RST_STREAM
        ["RST_STREAM on stream 0"] = (Build(Http2FrameType.RstStream, 0, 0, U32(8)), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["RST_STREAM of 3 bytes"] = (Build(Http2FrameType.RstStream, 0, 1, [0, 0, 8]), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["RST_STREAM of 5 bytes"] = (Build(Http2FrameType.RstStream, 0, 1, [0, 0, 0, 8, 0]), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),

        // §6.5 SETTINGS
        ["SETTINGS on stream 1"] = (Build(Http2FrameType.Settings, 0, 1), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["SETTINGS ACK on stream 1"] = (Build(Http2FrameType.Settings, Http2FrameFlags.Ack, 1), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["SETTINGS ACK with a payload"] = (Build(Http2FrameType.Settings, Http2FrameFlags.Ack, 0, Setting(1, 0)), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["SETTINGS of 5 bytes"] = (Build(Http2FrameType.Settings, 0, 0, [0, 1, 0, 0, 0]), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["SETTINGS of 7 bytes"] = (Build(Http2FrameType.Settings, 0, 0, Concat(Setting(3, 100), [0])), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["SETTINGS_ENABLE_PUSH of 2"] = (Build(Http2FrameType.Settings, 0, 0, Setting(2, 2)), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["SETTINGS_ENABLE_PUSH of 2^32-1"] = (Build(Http2FrameType.Settings, 0, 0, Setting(2, uint.MaxValue)), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["SETTINGS_INITIAL_WINDOW_SIZE of 2^31"] = (Build(Http2FrameType.Settings, 0, 0, Setting(4, 0x8000_0000)), MaxFrame, Http2ErrorCode.FlowControlError, Conn),
        ["SETTINGS_INITIAL_WINDOW_SIZE of 2^32-1"] = (Build(Http2FrameType.Settings, 0, 0, Setting(4, uint.MaxValue)), MaxFrame, Http2ErrorCode.FlowControlError, Conn),
        ["SETTINGS_MAX_FRAME_SIZE of 16383"] = (Build(Http2FrameType.Settings, 0, 0, Setting(5, 16_383)), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["SETTINGS_MAX_FRAME_SIZE of 2^24"] = (Build(Http2FrameType.Settings, 0, 0, Setting(5, 16_777_216)), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["SETTINGS_MAX_FRAME_SIZE of 0"] = (Build(Http2FrameType.Settings, 0, 0, Setting(5, 0)), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["bad value after good ones in SETTINGS"] = (Build(Http2FrameType.Settings, 0, 0, Concat(Setting(3, 10), Setting(0xFF, 7), Setting(5, 1))), MaxFrame, Http2ErrorCode.ProtocolError, Conn),

        // §6.6, §8.4 PUSH_PROMISE
        ["PUSH_PROMISE from a client"] = (Build(Http2FrameType.PushPromise, EndHeaders, 1, Concat(U32(2), [0x82])), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["PUSH_PROMISE on stream 0"] = (Build(Http2FrameType.PushPromise, EndHeaders, 0, U32(2)), MaxFrame, Http2ErrorCode.ProtocolError, Conn),

        // §6.7 PING
        ["PING of 7 bytes"] = (Build(Http2FrameType.Ping, 0, 0, Bytes(7)), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["PING of 9 bytes"] = (Build(Http2FrameType.Ping, 0, 0, Bytes(9)), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["PING ACK of 0 bytes"] = (Build(Http2FrameType.Ping, Http2FrameFlags.Ack, 0), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["PING on stream 1"] = (Build(Http2FrameType.Ping, 0, 1, Bytes(8)), MaxFrame, Http2ErrorCode.ProtocolError, Conn),

        // §6.8 GOAWAY
        ["GOAWAY on stream 1"] = (Build(Http2FrameType.GoAway, 0, 1, Concat(U32(0), U32(0))), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["GOAWAY of 7 bytes"] = (Build(Http2FrameType.GoAway, 0, 0, Bytes(7)), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["GOAWAY of 0 bytes"] = (Build(Http2FrameType.GoAway, 0, 0), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),

        // §6.9 WINDOW_UPDATE
        ["WINDOW_UPDATE of 3 bytes"] = (Build(Http2FrameType.WindowUpdate, 0, 0, [0, 0, 1]), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["WINDOW_UPDATE of 5 bytes on a stream"] = (Build(Http2FrameType.WindowUpdate, 0, 1, [0, 0, 0, 1, 0]), MaxFrame, Http2ErrorCode.FrameSizeError, Conn),
        ["WINDOW_UPDATE increment 0 on a stream"] = (Build(Http2FrameType.WindowUpdate, 0, 1, U32(0)), MaxFrame, Http2ErrorCode.ProtocolError, Strm),
        ["WINDOW_UPDATE increment 0 on the connection"] = (Build(Http2FrameType.WindowUpdate, 0, 0, U32(0)), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
        ["WINDOW_UPDATE increment 0 with only the reserved bit set"] = (Build(Http2FrameType.WindowUpdate, 0, 3, U32(0x8000_0000)), MaxFrame, Http2ErrorCode.ProtocolError, Strm),

        // §6.10 CONTINUATION
        ["CONTINUATION on stream 0"] = (Build(Http2FrameType.Continuation, EndHeaders, 0, [0x82]), MaxFrame, Http2ErrorCode.ProtocolError, Conn),
    };

    public static TheoryData<string> Cases => new(s_cases.Keys);

    [Fact]
    public void Table_has_at_least_40_cases() => Assert.True(s_cases.Count >= 40, $"{s_cases.Count} cases");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Malformed_frame_gets_its_error_code_and_scope(string name)
    {
        (byte[] input, int maxFrameSize, Http2ErrorCode code, bool connection) = s_cases[name];

        Http2FrameError error = ReadOne(new ReadOnlySequence<byte>(input), maxFrameSize);

        AssertError(error, code, connection);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Malformed_frame_gets_the_same_error_in_one_byte_segments(string name)
    {
        (byte[] input, int maxFrameSize, Http2ErrorCode code, bool connection) = s_cases[name];

        Http2FrameError error = ReadOne(new SegmentedInput(input, 1).Slice(0, input.Length), maxFrameSize);

        AssertError(error, code, connection);
    }

    [Fact]
    public void Errors_carry_a_reason()
    {
        foreach ((byte[] input, int maxFrameSize, _, _) in s_cases.Values)
        {
            Http2FrameError error = ReadOne(new ReadOnlySequence<byte>(input), maxFrameSize);
            Assert.False(string.IsNullOrEmpty(error.Reason));
            Assert.NotEqual("none", error.Reason);
        }
    }

    private static void AssertError(Http2FrameError error, Http2ErrorCode code, bool connection)
    {
        Assert.True(error.IsError, "no error reported");
        Assert.Equal(code, error.ErrorCode);
        Assert.Equal(connection, error.IsConnectionError);
        Assert.Equal(!connection, error.IsStreamError);
    }

    private static Http2FrameError ReadOne(ReadOnlySequence<byte> input, int maxFrameSize)
    {
        var reader = new SequenceReader<byte>(input);
        if (!Http2FrameReader.TryReadFrame(ref reader, maxFrameSize, out Http2FrameHeader header, out ReadOnlySequence<byte> payload, out Http2FrameError error))
        {
            Assert.True(error.IsError, "frame reported incomplete");
            return error;
        }

        return Validate(header, payload);
    }
}

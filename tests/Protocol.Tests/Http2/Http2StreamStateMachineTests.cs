using Appliance.Protocol.Http2;
using static Appliance.Protocol.Http2.Http2StreamState;

namespace Appliance.Protocol.Tests.Http2;

/// <summary>RFC 9113 §5.1 for the server: every frame type received (and sent) in every stream state.</summary>
public class Http2StreamStateMachineTests
{
    private const Http2FrameFlags None = Http2FrameFlags.None;
    private const Http2FrameFlags Es = Http2FrameFlags.EndStream;
    private const Http2FrameType Data = Http2FrameType.Data;
    private const Http2FrameType Headers = Http2FrameType.Headers;
    private const Http2FrameType Priority = Http2FrameType.Priority;
    private const Http2FrameType Rst = Http2FrameType.RstStream;
    private const Http2FrameType Settings = Http2FrameType.Settings;
    private const Http2FrameType Push = Http2FrameType.PushPromise;
    private const Http2FrameType Ping = Http2FrameType.Ping;
    private const Http2FrameType GoAway = Http2FrameType.GoAway;
    private const Http2FrameType WindowUpdate = Http2FrameType.WindowUpdate;
    private const Http2FrameType Continuation = Http2FrameType.Continuation;
    private const Http2FrameType Unknown = (Http2FrameType)0x0a;
    private const Http2FrameType Unknown2 = (Http2FrameType)0xff;

    private const Http2ErrorCode Protocol = Http2ErrorCode.ProtocolError;
    private const Http2ErrorCode StreamClosed = Http2ErrorCode.StreamClosed;

    private static readonly Http2StreamState[] s_states = Enum.GetValues<Http2StreamState>();

    private static readonly Http2FrameType[] s_types =
        [Data, Headers, Priority, Rst, Settings, Push, Ping, GoAway, WindowUpdate, Continuation, Unknown, Unknown2];

    // (state, frame, flags) → next state, or the error (code, connection scope?).
    private static readonly ReceiveRow[] s_receive =
    [
        // idle: only HEADERS and PRIORITY; anything else is a PROTOCOL_ERROR connection error (§5.1).
        Ok(Idle, Headers, None, Open),
        Ok(Idle, Headers, Es, HalfClosedRemote),
        Ok(Idle, Priority, None, Idle),
        Conn(Idle, Data, None, Protocol),
        Conn(Idle, Data, Es, Protocol),
        Conn(Idle, Rst, None, Protocol),
        Conn(Idle, WindowUpdate, None, Protocol),
        Conn(Idle, Continuation, None, Protocol),
        Conn(Idle, Push, None, Protocol),
        Conn(Idle, Settings, None, Protocol),
        Conn(Idle, Ping, None, Protocol),
        Conn(Idle, GoAway, None, Protocol),
        Ok(Idle, Unknown, None, Idle),
        Ok(Idle, Unknown2, Es, Idle),

        // open
        Ok(Open, Data, None, Open),
        Ok(Open, Data, Es, HalfClosedRemote),
        Ok(Open, Headers, Es, HalfClosedRemote),
        Strm(Open, Headers, None, Protocol),
        Ok(Open, Priority, None, Open),
        Ok(Open, Rst, None, Closed),
        Ok(Open, WindowUpdate, None, Open),
        Ok(Open, Continuation, None, Open),
        Conn(Open, Push, None, Protocol),
        Conn(Open, Settings, None, Protocol),
        Conn(Open, Ping, None, Protocol),
        Conn(Open, GoAway, None, Protocol),
        Ok(Open, Unknown, None, Open),
        Ok(Open, Unknown2, Es, Open),

        // half-closed (remote): only WINDOW_UPDATE, PRIORITY, RST_STREAM; else STREAM_CLOSED stream error.
        Strm(HalfClosedRemote, Data, None, StreamClosed),
        Strm(HalfClosedRemote, Data, Es, StreamClosed),
        Strm(HalfClosedRemote, Headers, None, StreamClosed),
        Strm(HalfClosedRemote, Headers, Es, StreamClosed),
        Ok(HalfClosedRemote, Priority, None, HalfClosedRemote),
        Ok(HalfClosedRemote, Rst, None, Closed),
        Ok(HalfClosedRemote, WindowUpdate, None, HalfClosedRemote),
        Ok(HalfClosedRemote, Continuation, None, HalfClosedRemote),
        Conn(HalfClosedRemote, Push, None, Protocol),
        Conn(HalfClosedRemote, Settings, None, Protocol),
        Conn(HalfClosedRemote, Ping, None, Protocol),
        Conn(HalfClosedRemote, GoAway, None, Protocol),
        Ok(HalfClosedRemote, Unknown, None, HalfClosedRemote),
        Ok(HalfClosedRemote, Unknown2, Es, HalfClosedRemote),

        // half-closed (local): the client still sends.
        Ok(HalfClosedLocal, Data, None, HalfClosedLocal),
        Ok(HalfClosedLocal, Data, Es, Closed),
        Ok(HalfClosedLocal, Headers, Es, Closed),
        Strm(HalfClosedLocal, Headers, None, Protocol),
        Ok(HalfClosedLocal, Priority, None, HalfClosedLocal),
        Ok(HalfClosedLocal, Rst, None, Closed),
        Ok(HalfClosedLocal, WindowUpdate, None, HalfClosedLocal),
        Ok(HalfClosedLocal, Continuation, None, HalfClosedLocal),
        Conn(HalfClosedLocal, Push, None, Protocol),
        Conn(HalfClosedLocal, Settings, None, Protocol),
        Conn(HalfClosedLocal, Ping, None, Protocol),
        Conn(HalfClosedLocal, GoAway, None, Protocol),
        Ok(HalfClosedLocal, Unknown, None, HalfClosedLocal),
        Ok(HalfClosedLocal, Unknown2, Es, HalfClosedLocal),

        // closed: PRIORITY always; WINDOW_UPDATE and RST_STREAM may cross our END_STREAM; DATA and HEADERS are
        // STREAM_CLOSED (§6.1 stream error; HEADERS reusing a stream ends the connection).
        Strm(Closed, Data, None, StreamClosed),
        Strm(Closed, Data, Es, StreamClosed),
        Conn(Closed, Headers, None, StreamClosed),
        Conn(Closed, Headers, Es, StreamClosed),
        Ok(Closed, Priority, None, Closed),
        Ok(Closed, Rst, None, Closed),
        Ok(Closed, WindowUpdate, None, Closed),
        Ok(Closed, Continuation, None, Closed),
        Conn(Closed, Push, None, Protocol),
        Conn(Closed, Settings, None, Protocol),
        Conn(Closed, Ping, None, Protocol),
        Conn(Closed, GoAway, None, Protocol),
        Ok(Closed, Unknown, None, Closed),
        Ok(Closed, Unknown2, Es, Closed),

        // closed after our RST_STREAM: whatever the client sent before it saw the reset is discarded quietly.
        Ok(ResetSent, Data, None, ResetSent),
        Ok(ResetSent, Data, Es, ResetSent),
        Ok(ResetSent, Headers, None, ResetSent),
        Ok(ResetSent, Headers, Es, ResetSent),
        Ok(ResetSent, Priority, None, ResetSent),
        Ok(ResetSent, Rst, None, ResetSent),
        Ok(ResetSent, WindowUpdate, None, ResetSent),
        Ok(ResetSent, Continuation, None, ResetSent),
        Conn(ResetSent, Push, None, Protocol),
        Conn(ResetSent, Settings, None, Protocol),
        Conn(ResetSent, Ping, None, Protocol),
        Conn(ResetSent, GoAway, None, Protocol),
        Ok(ResetSent, Unknown, None, ResetSent),
        Ok(ResetSent, Unknown2, Es, ResetSent),
    ];

    // (state, frame, flags) → next state, or null when the server must not send it.
    private static readonly (Http2StreamState State, Http2FrameType Type, Http2FrameFlags Flags, Http2StreamState? Next)[] s_send =
    [
        (Idle, Headers, None, null),
        (Idle, Data, None, null),
        (Idle, Rst, None, null),
        (Idle, WindowUpdate, None, null),
        (Idle, Continuation, None, null),
        (Idle, Priority, None, Idle),
        (Open, Headers, None, Open),
        (Open, Headers, Es, HalfClosedLocal),
        (Open, Data, None, Open),
        (Open, Data, Es, HalfClosedLocal),
        (Open, Rst, None, ResetSent),
        (Open, WindowUpdate, None, Open),
        (Open, Continuation, None, Open),
        (HalfClosedRemote, Headers, None, HalfClosedRemote),
        (HalfClosedRemote, Headers, Es, Closed),
        (HalfClosedRemote, Data, Es, Closed),
        (HalfClosedRemote, Rst, None, ResetSent),
        (HalfClosedRemote, WindowUpdate, None, HalfClosedRemote),
        (HalfClosedLocal, Data, None, null),
        (HalfClosedLocal, Headers, Es, null),
        (HalfClosedLocal, WindowUpdate, None, HalfClosedLocal),
        (HalfClosedLocal, Rst, None, ResetSent),
        (HalfClosedLocal, Priority, None, HalfClosedLocal),
        (Closed, Data, None, null),
        (Closed, Headers, Es, null),
        (Closed, WindowUpdate, None, null),
        (Closed, Priority, None, Closed),
        (Closed, Continuation, None, Closed),
        (Closed, Rst, None, ResetSent),
        (ResetSent, Data, None, null),
        (ResetSent, Rst, None, ResetSent),
        (ResetSent, WindowUpdate, None, null),
        (Open, Push, None, null),
        (Open, Settings, None, null),
        (Open, Ping, None, null),
        (Open, GoAway, None, null),
        (Open, Unknown, None, Open),
    ];

    public static TheoryData<int> ReceiveRows => new(Enumerable.Range(0, s_receive.Length));

    public static TheoryData<int> SendRows => new(Enumerable.Range(0, s_send.Length));

    [Fact]
    public void Receive_table_covers_every_state_and_frame_type()
    {
        foreach (Http2StreamState state in s_states)
        {
            foreach (Http2FrameType type in s_types)
            {
                Assert.True(s_receive.Any(r => r.State == state && r.Type == type), $"no row for {state} + {type}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(ReceiveRows))]
    public void Received_frame_moves_the_state_or_gets_the_RFC_error(int row)
    {
        ReceiveRow expected = s_receive[row];
        Http2StreamState state = expected.State;

        Http2FrameError error = Http2StreamStateMachine.OnReceive(ref state, expected.Type, expected.Flags);

        if (expected.Code is { } code)
        {
            Assert.True(error.IsError, $"{expected}: no error");
            Assert.Equal(code, error.ErrorCode);
            Assert.Equal(expected.Connection, error.IsConnectionError);
            Assert.Equal(!expected.Connection, error.IsStreamError);
            Assert.Equal(expected.State, state); // an error leaves the state alone
        }
        else
        {
            Assert.False(error.IsError, $"{expected}: {error}");
            Assert.Equal(expected.Next, state);
        }
    }

    [Theory]
    [MemberData(nameof(SendRows))]
    public void Sent_frame_moves_the_state_or_is_refused(int row)
    {
        (Http2StreamState initial, Http2FrameType type, Http2FrameFlags flags, Http2StreamState? next) = s_send[row];
        Http2StreamState state = initial;

        bool allowed = Http2StreamStateMachine.OnSend(ref state, type, flags);

        Assert.Equal(next is not null, allowed);
        Assert.Equal(next ?? initial, state);
    }

    [Fact]
    public void Request_with_body_and_response_walks_to_closed()
    {
        Http2StreamState state = Idle;

        Assert.False(Http2StreamStateMachine.OnReceive(ref state, Headers, None).IsError);
        Assert.False(Http2StreamStateMachine.OnReceive(ref state, Data, None).IsError);
        Assert.True(Http2StreamStateMachine.OnSend(ref state, Headers, None));
        Assert.False(Http2StreamStateMachine.OnReceive(ref state, Data, Es).IsError);
        Assert.Equal(HalfClosedRemote, state);
        Assert.True(Http2StreamStateMachine.OnSend(ref state, Data, None));
        Assert.True(Http2StreamStateMachine.OnSend(ref state, Data, Es));
        Assert.Equal(Closed, state);
        Assert.False(Http2StreamStateMachine.OnReceive(ref state, WindowUpdate, None).IsError);
    }

    [Fact]
    public void Stream_error_then_reset_discards_frames_still_in_flight()
    {
        Http2StreamState state = HalfClosedRemote;

        Http2FrameError error = Http2StreamStateMachine.OnReceive(ref state, Data, None);
        Assert.True(error.IsStreamError);
        Assert.True(Http2StreamStateMachine.OnSend(ref state, Rst, None));
        Assert.Equal(ResetSent, state);

        Assert.False(Http2StreamStateMachine.OnReceive(ref state, Data, None).IsError);
        Assert.False(Http2StreamStateMachine.OnReceive(ref state, Headers, Es).IsError);
        Assert.Equal(ResetSent, state);
    }

    private static ReceiveRow Ok(Http2StreamState state, Http2FrameType type, Http2FrameFlags flags, Http2StreamState next) =>
        new(state, type, flags, next, null, false);

    private static ReceiveRow Conn(Http2StreamState state, Http2FrameType type, Http2FrameFlags flags, Http2ErrorCode code) =>
        new(state, type, flags, state, code, true);

    private static ReceiveRow Strm(Http2StreamState state, Http2FrameType type, Http2FrameFlags flags, Http2ErrorCode code) =>
        new(state, type, flags, state, code, false);

    private sealed record ReceiveRow(
        Http2StreamState State,
        Http2FrameType Type,
        Http2FrameFlags Flags,
        Http2StreamState Next,
        Http2ErrorCode? Code,
        bool Connection);
}

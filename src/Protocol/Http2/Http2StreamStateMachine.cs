namespace Appliance.Protocol.Http2;

/// <summary>
/// The stream state rules of RFC 9113 §5.1 for the server side, as two pure functions: <see cref="OnReceive"/> gives
/// for every frame type in every state either the transition or the exact error and scope the RFC requires, and
/// <see cref="OnSend"/> does the same for frames the server sends. On an error the state is left unchanged; for a
/// stream error the connection sends RST_STREAM and calls <see cref="OnSend"/>, which moves the stream to
/// <see cref="Http2StreamState.ResetSent"/>.
/// <para>What the connection must track itself, because it is not a property of one stream:</para>
/// <list type="bullet">
/// <item>Client stream ids are odd (§5.1.1): a HEADERS on an even id is a PROTOCOL_ERROR connection error.</item>
/// <item>New ids only increase (§5.1.1); only HEADERS uses an id; a PRIORITY on an idle stream leaves it idle and
/// does not raise the highest id seen. A HEADERS on an id at or below the highest one seen is not a new stream:
/// if the connection still knows that stream, its state decides (<see cref="Http2StreamState.Closed"/> gives the
/// STREAM_CLOSED connection error); an id it never saw opened was implicitly closed when a higher one opened, and a
/// HEADERS on it is a PROTOCOL_ERROR connection error. Any other frame on an id it no longer tracks is judged in
/// <see cref="Http2StreamState.Closed"/> if the id is at or below the highest seen, in <see cref="Http2StreamState.Idle"/>
/// if above. Keep recently reset streams as <see cref="Http2StreamState.ResetSent"/> for a while (a bounded list), so
/// frames the client sent before it saw the reset are discarded rather than answered.</item>
/// <item>Field blocks (§4.3, §6.10): after HEADERS without END_HEADERS, the only frame allowed next on the whole
/// connection is CONTINUATION on the same stream; anything else, or a CONTINUATION with nothing open, is a
/// PROTOCOL_ERROR connection error. That check comes before this machine, which therefore never rejects CONTINUATION
/// except on an idle stream. END_STREAM on the HEADERS takes effect when HEADERS arrives, not at END_HEADERS.</item>
/// <item>Field blocks always reach the HPACK decoder, even for a stream that gets a stream error or is discarded
/// (§4.3); a block that cannot be decoded is a COMPRESSION_ERROR connection error.</item>
/// <item>DATA counts against the connection receive window in every state that does not end the connection, including
/// when the stream error STREAM_CLOSED is answered or the frame is discarded (§6.9).</item>
/// <item>SETTINGS_MAX_CONCURRENT_STREAMS: a HEADERS over the limit is answered with a stream error, PROTOCOL_ERROR or
/// REFUSED_STREAM (§5.1.2); REFUSED_STREAM tells the client it may retry.</item>
/// <item>Only streams in <see cref="Http2StreamState.Open"/> and <see cref="Http2StreamState.HalfClosedLocal"/> count
/// toward that limit (§5.1.2).</item>
/// </list>
/// </summary>
public static class Http2StreamStateMachine
{
    /// <summary>
    /// Applies a frame received on a stream (stream id &gt; 0) to its state. Returns <see cref="Http2FrameError.None"/>
    /// when the frame is acceptable, in which case <paramref name="state"/> holds the new state; frames in
    /// <see cref="Http2StreamState.Closed"/> or <see cref="Http2StreamState.ResetSent"/> that come back without error
    /// are to be discarded after the minimal processing described on those states.
    /// </summary>
    public static Http2FrameError OnReceive(ref Http2StreamState state, Http2FrameType type, Http2FrameFlags flags)
    {
        bool endStream = (flags & Http2FrameFlags.EndStream) != 0;
        switch (type)
        {
            case Http2FrameType.Data:
                return ReceiveData(ref state, endStream);
            case Http2FrameType.Headers:
                return ReceiveHeaders(ref state, endStream);
            case Http2FrameType.Priority:
                // §5.1: PRIORITY may arrive in any state, idle and closed included; it changes nothing.
                return default;
            case Http2FrameType.RstStream:
                return ReceiveRstStream(ref state);
            case Http2FrameType.WindowUpdate:
                // §5.1 idle: anything but HEADERS or PRIORITY is a connection error. Elsewhere WINDOW_UPDATE is allowed:
                // in closed states it may have been in flight before the peer saw our END_STREAM or RST_STREAM.
                return state == Http2StreamState.Idle
                    ? Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "WINDOW_UPDATE on an idle stream")
                    : default;
            case Http2FrameType.Continuation:
                // §6.10: sequencing is the connection's check; a field block in progress means the stream left idle.
                return state == Http2StreamState.Idle
                    ? Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "CONTINUATION on an idle stream")
                    : default;
            case Http2FrameType.PushPromise:
                // §8.4: a client cannot push.
                return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "PUSH_PROMISE from a client");
            case Http2FrameType.Settings:
            case Http2FrameType.Ping:
            case Http2FrameType.GoAway:
                // §6.5, §6.7, §6.8: connection frames are a PROTOCOL_ERROR on any stream.
                return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "connection frame on a stream");
            default:
                // §5.5: unknown frame types are ignored in every state and change nothing.
                return default;
        }
    }

    /// <summary>
    /// Applies a frame the server is about to send on a stream. False, changing nothing, when RFC 9113 §5.1 does not
    /// allow it in this state: a bug in the caller, never something to put on the wire.
    /// </summary>
    public static bool OnSend(ref Http2StreamState state, Http2FrameType type, Http2FrameFlags flags)
    {
        bool endStream = (flags & Http2FrameFlags.EndStream) != 0;
        switch (type)
        {
            case Http2FrameType.Data:
            case Http2FrameType.Headers:
                switch (state)
                {
                    case Http2StreamState.Open:
                        state = endStream ? Http2StreamState.HalfClosedLocal : state;
                        return true;
                    case Http2StreamState.HalfClosedRemote:
                        state = endStream ? Http2StreamState.Closed : state;
                        return true;
                    default:
                        // Idle: the server opens no streams (no push). Half-closed (local) and closed: our side has ended.
                        return false;
                }

            case Http2FrameType.Priority:
                return true;

            case Http2FrameType.RstStream:
                // §6.4: never on an idle stream. On a closed stream it answers a stream error such as STREAM_CLOSED.
                if (state == Http2StreamState.Idle)
                {
                    return false;
                }

                state = Http2StreamState.ResetSent;
                return true;

            case Http2FrameType.WindowUpdate:
                return state is Http2StreamState.Open or Http2StreamState.HalfClosedRemote or Http2StreamState.HalfClosedLocal;

            case Http2FrameType.Continuation:
                // Follows a HEADERS that already moved the state (possibly to closed with END_STREAM).
                return state != Http2StreamState.Idle;

            case Http2FrameType.PushPromise:
            case Http2FrameType.Settings:
            case Http2FrameType.Ping:
            case Http2FrameType.GoAway:
                // No push; connection frames go on stream 0, not through a stream.
                return false;

            default:
                return true;
        }
    }

    private static Http2FrameError ReceiveData(ref Http2StreamState state, bool endStream)
    {
        switch (state)
        {
            case Http2StreamState.Open:
                state = endStream ? Http2StreamState.HalfClosedRemote : state;
                return default;
            case Http2StreamState.HalfClosedLocal:
                state = endStream ? Http2StreamState.Closed : state;
                return default;
            case Http2StreamState.Idle:
                // §5.1 idle: a connection error (it takes precedence over the stream error of §6.1).
                return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "DATA on an idle stream");
            case Http2StreamState.HalfClosedRemote:
                // §5.1 half-closed (remote), §6.1.
                return Http2FrameError.Stream(Http2ErrorCode.StreamClosed, "DATA after END_STREAM");
            case Http2StreamState.Closed:
                // §6.1: DATA on a stream that is not open or half-closed (local).
                return Http2FrameError.Stream(Http2ErrorCode.StreamClosed, "DATA on a closed stream");
            default:
                // ResetSent: possibly sent before the client saw our RST_STREAM; discard (§5.1 closed).
                return default;
        }
    }

    private static Http2FrameError ReceiveHeaders(ref Http2StreamState state, bool endStream)
    {
        switch (state)
        {
            case Http2StreamState.Idle:
                // §5.1: HEADERS opens the stream; with END_STREAM it is half-closed (remote) at once.
                state = endStream ? Http2StreamState.HalfClosedRemote : Http2StreamState.Open;
                return default;
            case Http2StreamState.Open:
            case Http2StreamState.HalfClosedLocal:
                // A second HEADERS is a trailer section and must end the stream (§8.1): otherwise the request is
                // malformed, a PROTOCOL_ERROR stream error (§8.1.1).
                if (!endStream)
                {
                    return Http2FrameError.Stream(Http2ErrorCode.ProtocolError, "trailers without END_STREAM");
                }

                state = state == Http2StreamState.Open ? Http2StreamState.HalfClosedRemote : Http2StreamState.Closed;
                return default;
            case Http2StreamState.HalfClosedRemote:
                return Http2FrameError.Stream(Http2ErrorCode.StreamClosed, "HEADERS after END_STREAM");
            case Http2StreamState.Closed:
                // §5.1 closed allows a connection error; §5.1.1 wants reused stream ids to end the connection.
                return Http2FrameError.Connection(Http2ErrorCode.StreamClosed, "HEADERS on a closed stream");
            default:
                // ResetSent: trailers sent before the client saw our reset; decode (HPACK) and discard.
                return default;
        }
    }

    private static Http2FrameError ReceiveRstStream(ref Http2StreamState state)
    {
        switch (state)
        {
            case Http2StreamState.Idle:
                // §6.4: RST_STREAM on an idle stream is a PROTOCOL_ERROR connection error.
                return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "RST_STREAM on an idle stream");
            case Http2StreamState.Open:
            case Http2StreamState.HalfClosedRemote:
            case Http2StreamState.HalfClosedLocal:
                state = Http2StreamState.Closed;
                return default;
            default:
                // Closed or ResetSent: a reset that crossed ours or our END_STREAM; never answer it (§5.4.2).
                return default;
        }
    }
}

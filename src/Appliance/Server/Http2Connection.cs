using System.Buffers;
using System.IO.Pipelines;
using Appliance.Protocol.Hpack;
using Appliance.Protocol.Http1;
using Appliance.Protocol.Http2;
using Appliance.Protocol.Headers;
using Appliance.Telemetry;
using Microsoft.Extensions.Logging;

namespace Appliance.Server;

/// <summary>
/// The HTTP/2 connection loop (RFC 9113): preface and SETTINGS exchange, one frame reader, streams with their
/// state machine and flow control, and the flood defences. All frames of one read are processed, then the
/// output is flushed once. Requests without a body are dispatched inline, so a burst of small requests is
/// answered by one write; handlers that wait continue on their own and flush their own output.
/// </summary>
public sealed class Http2Connection
{
    private readonly PipeReader _input;
    private readonly Http2Output _output;
    private readonly HttpConnection _owner;
    private readonly ListenerRuntime _listener;
    private readonly ConnectionInfo _info;
    private readonly ILogger _logger;
    private readonly Http2Limits _limits;
    private readonly ServerLimits _serverLimits;
    private readonly HpackDecoder _decoder;
    private readonly Http2Settings _peer = new();
    private readonly Http2HeaderBlock _block = new();
    private readonly Dictionary<int, Http2Stream> _streams = [];
    private readonly Stack<Http2Stream> _pool = new();
    private int _startedSinceHeartbeat; // streams opened since the last heartbeat (under _lock): idle means none
    private readonly Lock _lock = new();
    private readonly Queue<(int Id, ClosedBy How, long Until)> _recentlyClosed = new();

    private int _lastStreamId;
    private int _connectionReceiveWindow;
    private int _connectionUnacknowledged;
    private bool _settingsReceived;
    private bool _settingsAcknowledged;
    private volatile bool _goAwaySent;
    private volatile bool _clientGoAway;
    private volatile bool _timedOut;
    private volatile bool _sendTimedOut;
    private volatile bool _closing;
    // Graceful close (RFC 9113 §6.8): 0 none, 1 asked, 2 announced (GOAWAY 2^31-1 and a PING sent), 3 final GOAWAY sent.
    private int _drainState;
    private int _started;
    private long _drainAnnouncedAt;
    private const ulong DrainPing = 0x6170_706C_6472_6169; // "appldrai": our PING's payload, to know its ACK
    private const long DrainAckWait = 2000;
    private long _lastHeartbeat;

    // flood accounting (per FloodInterval)
    private long _intervalStart = Environment.TickCount64;
    private int _resets, _settingsFrames, _pings, _priorities, _windowUpdates, _emptyData, _rstFrames;
    private long _dataFramesAtIntervalStart;

    internal Http2Connection(PipeReader input, Stream transport, HttpConnection owner, ListenerRuntime listener, ConnectionInfo info, ILogger logger)
    {
        _input = input;
        _owner = owner;
        _listener = listener;
        _info = info;
        _logger = logger;
        _serverLimits = listener.Current.Limits;
        _limits = _serverLimits.Http2;
        _output = new Http2Output(transport, _limits.MaxQueuedOutputBytes);
        // RFC 7541 §4.2, RFC 9113 §6.5.3: the client's encoder may use the 4,096-byte default until it has our SETTINGS
        // (and a client may shrink later than that), so the decoder never holds less; a smaller configured size is
        // what we ask for. A table smaller than the client's would evict entries it still refers to.
        _decoder = new HpackDecoder(Math.Max(_limits.HeaderTableSize, HpackDecoder.DefaultMaxDynamicTableSize), _serverLimits.Http1.MaxHeaderBytes);
        _connectionReceiveWindow = _limits.InitialConnectionWindowSize;
    }

    private int ActiveStreams
    {
        get
        {
            lock (_lock)
            {
                return _streams.Count;
            }
        }
    }

    public async Task ProcessAsync()
    {
        _output.Start();
        Span<Http2Setting> settings =
        [
            new(Http2SettingId.MaxConcurrentStreams, (uint)_limits.MaxConcurrentStreams),
            new(Http2SettingId.InitialWindowSize, (uint)_limits.InitialStreamWindowSize),
            new(Http2SettingId.MaxFrameSize, (uint)_limits.MaxFrameSize),
            new(Http2SettingId.MaxHeaderListSize, (uint)_serverLimits.Http1.MaxHeaderBytes),
            new(Http2SettingId.EnablePush, 0),
            new(Http2SettingId.EnableConnectProtocol, 1), // RFC 8441: WebSocket over HTTP/2 (a proxied route tunnels it)
            new(Http2SettingId.HeaderTableSize, (uint)_limits.HeaderTableSize), // §6.5.2: the table our decoder keeps
        ];
        int connectionIncrement = _limits.InitialConnectionWindowSize - Http2Settings.DefaultInitialWindowSize;
        _output.WriteSettings(settings, Math.Max(0, connectionIncrement));
        _owner.SetDeadline(_serverLimits.RequestHeadersTimeout); // preface + SETTINGS must come promptly
        Interlocked.Exchange(ref _started, 1);
        if (Volatile.Read(ref _drainState) == 1)
        {
            AnnounceDrain(); // asked to close before our SETTINGS went out: the GOAWAY must follow them
        }

        Http2FrameError error = default;
        try
        {
            error = await ReadLoopAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
            // transport gone
        }

        if (error.IsConnectionError)
        {
            LogConnectionError(error);
            SendGoAway(error.ErrorCode, error.Reason);
        }
        else if (!_goAwaySent)
        {
            SendGoAway(Http2ErrorCode.NoError, null);
        }

        // The transport ended without a connection error of ours: the client closed it (also while we drained, after our
        // GOAWAY), unless we closed it ourselves (a timeout, the shutdown's deadline).
        AbortAllStreams(clientLeft: !error.IsConnectionError && !_owner.AbortedByUs);
        _output.Complete();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await _output.Completion.WaitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _decoder.Dispose();
    }

    private void LogConnectionError(Http2FrameError error)
    {
        LimitCounters.Increment("h2_" + error.ErrorCode.ToString().ToLowerInvariant());
        _logger.LogInformation("connection {Id} from {Remote}: HTTP/2 connection error {Code}: {Reason}",
            _info.Id, _info.RemoteEndPoint, error.ErrorCode, error.Reason);
    }

    private async Task<Http2FrameError> ReadLoopAsync()
    {
        bool prefaceDone = false;
        while (true)
        {
            ReadResult result = await _input.ReadAsync().ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            if (result.IsCanceled)
            {
                if (_sendTimedOut)
                {
                    // Not a protocol error by the client: like the idle timeout, a NO_ERROR GOAWAY that says why.
                    return Http2FrameError.Connection(Http2ErrorCode.NoError, "send timeout: the connection window stayed closed");
                }

                if (_timedOut)
                {
                    return Http2FrameError.Connection(_block.IsOpen || !_settingsReceived ? Http2ErrorCode.ProtocolError : Http2ErrorCode.NoError,
                        _block.IsOpen ? "header block timeout" : !_settingsReceived ? "preface timeout" : "idle timeout");
                }

                // The last stream ended after our GOAWAY or the client's (ReleaseIfDoneLocked cancelled this read).
                if ((_closing || _clientGoAway) && ActiveStreams == 0)
                {
                    return default;
                }

                _input.AdvanceTo(buffer.Start);
                continue;
            }

            var reader = new SequenceReader<byte>(buffer);
            if (!prefaceDone)
            {
                PrefaceMatch match = Http2Preface.TryConsume(ref reader);
                if (match == PrefaceMatch.NoMatch)
                {
                    return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "invalid connection preface");
                }

                if (match == PrefaceMatch.NeedMore)
                {
                    if (result.IsCompleted) return default;
                    _input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                }

                prefaceDone = true;
            }

            Http2FrameError error = default;
            _output.BeginBatch();
            try
            {
                while (Http2FrameReader.TryReadFrame(ref reader, _limits.MaxFrameSize, out Http2FrameHeader header, out ReadOnlySequence<byte> payload, out error))
                {
                    error = ProcessFrame(header, payload);
                    if (error.IsConnectionError || _output.Overflowed)
                    {
                        break;
                    }
                }
            }
            finally
            {
                _output.EndBatch();
            }

            if (_output.Overflowed)
            {
                LimitCounters.Increment("h2_output_queue_full");
                return Http2FrameError.Connection(Http2ErrorCode.EnhanceYourCalm, "client does not read its responses (queued control frames)");
            }

            if (error.IsConnectionError)
            {
                return error;
            }

            _input.AdvanceTo(reader.Position, buffer.End);
            if (result.IsCompleted)
            {
                return default;
            }

            if ((_clientGoAway || _closing) && ActiveStreams == 0)
            {
                return default;
            }
        }
    }

    // ---------------- frames ----------------

    private Http2FrameError ProcessFrame(in Http2FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!_settingsReceived && header.Type != Http2FrameType.Settings)
        {
            return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "the first frame must be SETTINGS"); // §3.4
        }

        if (_block.IsOpen && (header.Type != Http2FrameType.Continuation || header.StreamId != _block.StreamId))
        {
            return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "expected CONTINUATION of the open header block"); // §6.10
        }

        return header.Type switch
        {
            Http2FrameType.Data => OnData(header, payload),
            Http2FrameType.Headers => OnHeaders(header, payload),
            Http2FrameType.Priority => OnPriority(header, payload),
            Http2FrameType.RstStream => OnRstStream(header, payload),
            Http2FrameType.Settings => OnSettings(header, payload),
            Http2FrameType.PushPromise => Http2FrameReader.TryReadPushPromise(header, out Http2FrameError e) ? default : e,
            Http2FrameType.Ping => OnPing(header, payload),
            Http2FrameType.GoAway => OnGoAway(header, payload),
            Http2FrameType.WindowUpdate => OnWindowUpdate(header, payload),
            Http2FrameType.Continuation => OnContinuation(header, payload),
            _ => default, // §5.5: unknown frame types are ignored
        };
    }

    private bool Flood(ref int counter, int limit, string reason)
    {
        StartFloodIntervalIfDue();
        if (++counter > limit)
        {
            LimitCounters.Increment(reason);
            return true;
        }

        return false;
    }

    private void StartFloodIntervalIfDue()
    {
        long now = Environment.TickCount64;
        if (now - _intervalStart > (long)_limits.FloodInterval.TotalMilliseconds)
        {
            _intervalStart = now;
            _resets = _settingsFrames = _pings = _priorities = _windowUpdates = _emptyData = _rstFrames = 0;
            _dataFramesAtIntervalStart = _output.DataFramesSent;
        }
    }

    private Http2FrameError Calm(string reason) =>
        Http2FrameError.Connection(Http2ErrorCode.EnhanceYourCalm, reason);

    private Http2FrameError OnSettings(in Http2FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!Http2FrameReader.TryReadSettings(header, payload, out Http2SettingsFrame frame, out Http2FrameError error))
        {
            return error;
        }

        if (Flood(ref _settingsFrames, _limits.MaxControlFramesPerInterval, "h2_settings_flood"))
        {
            return Calm("SETTINGS flood");
        }

        if (frame.IsAck)
        {
            if (!_settingsAcknowledged)
            {
                // Our SETTINGS are in force at the client now: a stream window smaller than the default applies to
                // the streams it opened before, by the difference (§6.9.2), as the client computed it.
                _settingsAcknowledged = true;
                int shrink = _limits.InitialStreamWindowSize - InitialReceiveWindow(acknowledged: false);
                if (shrink != 0)
                {
                    lock (_lock)
                    {
                        foreach (Http2Stream s in _streams.Values)
                        {
                            s.ReceiveWindow += shrink;
                        }
                    }
                }
            }

            return default;
        }

        int oldInitialWindow = _peer.InitialWindowSize;
        foreach (Http2Setting setting in frame)
        {
            error = _peer.Apply(setting.Id, setting.Value);
            if (error.IsError)
            {
                return error;
            }

            switch (setting.Id)
            {
                case Http2SettingId.HeaderTableSize:
                    _output.SetPeerHeaderTableSize(setting.Value);
                    break;
                case Http2SettingId.MaxFrameSize:
                    _output.SetPeerMaxFrameSize((int)setting.Value);
                    break;
            }
        }

        int delta = _peer.InitialWindowSize - oldInitialWindow;
        if (delta != 0)
        {
            // §6.9.2: a change applies to every open stream's send window, possibly making it negative.
            lock (_lock)
            {
                foreach (Http2Stream s in _streams.Values)
                {
                    if (!_output.AdjustStreamWindow(s, delta, isIncrement: false))
                    {
                        return Http2FrameError.Connection(Http2ErrorCode.FlowControlError, "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window");
                    }

                    if (delta > 0)
                    {
                        s.SignalWindow();
                    }
                }
            }
        }

        _settingsReceived = true;
        if (ActiveStreams == 0)
        {
            _owner.SetDeadline(_serverLimits.KeepAliveTimeout);
        }

        return _output.WriteSettingsAck() ? default : Calm("output queue full");
    }

    /// <summary>
    /// RFC 9113 §6.9.2: until the client acknowledges our SETTINGS it may use the default 65,535-byte stream window
    /// ("the receiver MUST be prepared to receive data that exceeds this window size"); clients send request bodies
    /// right after the preface. So a configured window below the default only applies once acknowledged.
    /// </summary>
    private int InitialReceiveWindow(bool acknowledged) =>
        acknowledged ? _limits.InitialStreamWindowSize : Math.Max(_limits.InitialStreamWindowSize, Http2Settings.DefaultInitialWindowSize);

    private Http2FrameError OnPing(in Http2FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!Http2FrameReader.TryReadPing(header, payload, out ulong data, out Http2FrameError error))
        {
            return error;
        }

        if (Flood(ref _pings, _limits.MaxControlFramesPerInterval, "h2_ping_flood"))
        {
            return Calm("PING flood");
        }

        if (header.HasFlag(Http2FrameFlags.Ack))
        {
            if (data == DrainPing)
            {
                FinishDrain(); // the client has seen our first GOAWAY: whatever it sent before is here
            }

            return default;
        }

        return _output.WritePingAck(data) ? default : Calm("output queue full");
    }

    private Http2FrameError OnGoAway(in Http2FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!Http2FrameReader.TryReadGoAway(header, payload, out Http2GoAwayFrame frame, out Http2FrameError error))
        {
            return error;
        }

        _clientGoAway = true;
        if (frame.ErrorCode != Http2ErrorCode.NoError)
        {
            _logger.LogDebug("connection {Id}: client sent GOAWAY {Code}", _info.Id, frame.ErrorCode);
        }

        return default;
    }

    private Http2FrameError OnPriority(in Http2FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!Http2FrameReader.TryReadPriority(header, payload, out _, out Http2FrameError error))
        {
            return error.IsStreamError ? ResetStreamId(header.StreamId, error) : error;
        }

        // RFC 9113 §5.3.2: priority signals are deprecated; parsed, checked and ignored.
        return Flood(ref _priorities, _limits.MaxControlFramesPerInterval, "h2_priority_flood") ? Calm("PRIORITY flood") : default;
    }

    private Http2FrameError OnWindowUpdate(in Http2FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!Http2FrameReader.TryReadWindowUpdate(header, payload, out int increment, out Http2FrameError error))
        {
            if (error.IsStreamError && header.StreamId > _lastStreamId)
            {
                // §5.1 idle: any frame but HEADERS or PRIORITY is a connection error (and §6.4: no RST_STREAM on idle).
                return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "WINDOW_UPDATE on an idle stream");
            }

            return error.IsStreamError ? ResetStreamId(header.StreamId, error) : error;
        }

        // A WINDOW_UPDATE that gives back what our DATA used is flow control at work, not a flood: a client reading
        // through a small window sends one per DATA frame for the stream and one for the connection. So each DATA
        // frame we sent in this interval allows two more (Envoy's max_inbound_window_update_frames_per_data_frame_sent).
        StartFloodIntervalIfDue();
        long earned = 2 * (_output.DataFramesSent - _dataFramesAtIntervalStart);
        if (Flood(ref _windowUpdates, (int)Math.Min(int.MaxValue, _limits.MaxControlFramesPerInterval + earned), "h2_window_update_flood"))
        {
            return Calm("WINDOW_UPDATE flood");
        }

        if (header.StreamId == 0)
        {
            return _output.IncreaseConnectionWindow(increment)
                ? default
                : Http2FrameError.Connection(Http2ErrorCode.FlowControlError, "connection window above 2^31-1"); // §6.9.1
        }

        lock (_lock)
        {
            if (!_streams.TryGetValue(header.StreamId, out Http2Stream? stream))
            {
                return header.StreamId > _lastStreamId
                    ? Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "WINDOW_UPDATE on an idle stream")
                    : default; // closed: ignore (§6.9)
            }

            if (!_output.AdjustStreamWindow(stream, increment, isIncrement: true))
            {
                return ResetStreamLocked(stream, Http2ErrorCode.FlowControlError, "stream window above 2^31-1");
            }

            stream.SignalWindow();
        }

        return default;
    }

    private Http2FrameError OnRstStream(in Http2FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!Http2FrameReader.TryReadRstStream(header, payload, out Http2ErrorCode code, out Http2FrameError error))
        {
            return error;
        }

        if (header.StreamId > _lastStreamId)
        {
            return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "RST_STREAM on an idle stream"); // §6.4
        }

        if (Flood(ref _rstFrames, _limits.MaxControlFramesPerInterval, "h2_rst_stream_flood"))
        {
            return Calm("RST_STREAM flood");
        }

        lock (_lock)
        {
            if (_streams.TryGetValue(header.StreamId, out Http2Stream? stream))
            {
                // CVE-2023-44487: count streams the client opens and cancels before we answered them.
                if (!stream.EndStreamSent && Flood(ref _resets, _limits.MaxResetsPerInterval, "h2_rapid_reset"))
                {
                    return Calm("too many streams reset by the client (rapid reset)");
                }

                stream.ClientLeft = true; // first: a handler failing on what follows may log at once
                stream.ResetSent = true; // nothing more may be sent on it (§6.4)
                stream.State = Http2StreamState.Closed;
                stream.CompleteBody(new IOException($"stream reset by the client ({code})"));
                stream.Context.Abort(); // a handler that asked (RequestAborted) stops its work
                stream.SignalWindow();
                _streams.Remove(stream.StreamId);
                RememberClosedLocked(stream.StreamId, ClosedBy.Client); // later frames on it: STREAM_CLOSED (§5.1)
                ReleaseIfDoneLocked(stream);
            }
        }

        return default;
    }

    private Http2FrameError OnHeaders(in Http2FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!Http2FrameReader.TryReadHeaders(header, payload, out Http2HeadersFrame frame, out Http2FrameError error))
        {
            if (error.IsConnectionError)
            {
                return error;
            }

            // A stream error found before decoding (a stream depending on itself): the block must still be
            // decoded to keep the HPACK context in sync, then the stream is reset.
        }

        int id = header.StreamId;
        if ((id & 1) == 0)
        {
            return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "even stream id from a client"); // §5.1.1
        }

        Http2Stream? stream = null;
        bool trailers = false;
        bool ignore = false;
        string? refuse = null;
        Http2ErrorCode refuseCode = Http2ErrorCode.RefusedStream;
        lock (_lock)
        {
            if (_streams.TryGetValue(id, out Http2Stream? existing))
            {
                // Stream errors from here on: the block is still decoded (HPACK state, §4.3), then the stream reset.
                stream = existing;
                trailers = true;
                if (existing.EndStreamReceived)
                {
                    // §5.1 half-closed (remote): a STREAM_CLOSED stream error.
                    refuse = "HEADERS after END_STREAM";
                    refuseCode = Http2ErrorCode.StreamClosed;
                }
                else if (!frame.EndStream)
                {
                    // §8.1: trailers must end the stream; otherwise the request is malformed (§8.1.1).
                    refuse = "trailers without END_STREAM";
                    refuseCode = Http2ErrorCode.ProtocolError;
                }
            }
            else if (id <= _lastStreamId)
            {
                switch (RecentlyClosedLocked(id))
                {
                    case null:
                        return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "stream id lower than a previous one"); // §5.1.1
                    case ClosedBy.EndStream:
                        return Http2FrameError.Connection(Http2ErrorCode.StreamClosed, "HEADERS on a closed stream"); // §5.1
                    case ClosedBy.Client:
                        // §5.1 closed: after the client's RST_STREAM, a STREAM_CLOSED stream error.
                        refuse = "HEADERS after RST_STREAM";
                        refuseCode = Http2ErrorCode.StreamClosed;
                        break;
                    default:
                        ignore = true; // a stream we reset: frames may still be in flight (§5.4.2)
                        break;
                }
            }
            else
            {
                _lastStreamId = id;
                if (_goAwaySent || _closing)
                {
                    refuse = "connection is closing";
                }
                else if (_streams.Count >= _limits.MaxConcurrentStreams)
                {
                    refuse = "max concurrent streams";
                    LimitCounters.Increment("h2_max_concurrent_streams");
                }
                else
                {
                    stream = _pool.Count > 0 ? _pool.Pop() : new Http2Stream(this, _output, _info);
                    _startedSinceHeartbeat++;
                    stream.Initialize(id, _peer.InitialWindowSize, InitialReceiveWindow(_settingsAcknowledged));
                    _streams[id] = stream;
                    _owner.ClearDeadline();
                }
            }
        }

        if (ignore)
        {
            // Still decoded: the HPACK context must see every block (§4.3). No second RST_STREAM.
            _block.Begin(id, frame.EndStream, null, trailers: false);
            _ignoreBlock = true;
            return ContinueBlock(frame.Fragment, header.HasFlag(Http2FrameFlags.EndHeaders));
        }

        if (error.IsStreamError)
        {
            refuse = error.Reason;
            refuseCode = error.ErrorCode;
        }

        if (refuse is not null && stream is not null && !trailers)
        {
            lock (_lock)
            {
                _streams.Remove(id);
                _pool.Push(stream);
            }

            stream = null;
        }

        // A refused stream's block is still decoded (into no context) to keep the HPACK state in sync.
        _block.Begin(id, frame.EndStream, refuse is null ? stream?.Context : null, trailers);
        _refuseReason = refuse;
        _refuseCode = refuseCode;
        return ContinueBlock(frame.Fragment, header.HasFlag(Http2FrameFlags.EndHeaders));
    }

    private bool _ignoreBlock;

    private string? _refuseReason;
    private Http2ErrorCode _refuseCode;

    private Http2FrameError OnContinuation(in Http2FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!_block.IsOpen)
        {
            return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "CONTINUATION without an open header block"); // §6.10
        }

        if (!Http2FrameReader.TryReadContinuation(header, payload, out ReadOnlySequence<byte> fragment, out Http2FrameError error))
        {
            return error;
        }

        // CVE-2024-27316: a header block may not go on forever, even with empty frames.
        if (++_block.ContinuationFrames > _limits.MaxContinuationFrames)
        {
            LimitCounters.Increment("h2_continuation_flood");
            return Calm("too many CONTINUATION frames in one header block");
        }

        return ContinueBlock(fragment, header.HasFlag(Http2FrameFlags.EndHeaders));
    }

    private Http2FrameError ContinueBlock(in ReadOnlySequence<byte> fragment, bool endHeaders)
    {
        _block.FragmentBytes += (int)fragment.Length;
        if (_block.FragmentBytes > _serverLimits.Http1.MaxHeaderBytes * 2)
        {
            LimitCounters.Increment("h2_header_block_too_large");
            return Calm("header block too large");
        }

        var handler = new Http2HeaderBlock.Handler(_block);
        HpackStatus status = HpackStatus.Ok;
        if (fragment.IsEmpty)
        {
            status = _decoder.Decode(ReadOnlySpan<byte>.Empty, endHeaders, ref handler);
        }
        else
        {
            SequencePosition position = fragment.Start;
            long remaining = fragment.Length;
            while (remaining > 0 && fragment.TryGet(ref position, out ReadOnlyMemory<byte> segment))
            {
                if (segment.IsEmpty)
                {
                    continue; // an empty segment must not end the block early (or twice)
                }

                remaining -= segment.Length;
                HpackStatus s = _decoder.Decode(segment.Span, endHeaders && remaining == 0, ref handler);
                if (s != HpackStatus.Ok)
                {
                    status = s; // keep HeaderListTooLarge once seen; keep decoding to stay in sync
                }

                if (s == HpackStatus.CompressionError)
                {
                    break;
                }
            }
        }

        if (status == HpackStatus.CompressionError)
        {
            return Http2FrameError.Connection(Http2ErrorCode.CompressionError, "HPACK decoding failed"); // §4.3
        }

        if (!endHeaders)
        {
            _owner.SetDeadline(_serverLimits.RequestHeadersTimeout);
            return default;
        }

        int id = _block.StreamId;
        bool endStream = _block.EndStream;
        _block.Complete();
        _block.End();
        if (_ignoreBlock)
        {
            _ignoreBlock = false;
            return default;
        }

        Http2Stream? stream;
        lock (_lock)
        {
            _streams.TryGetValue(id, out stream);
            if (_streams.Count == 0)
            {
                _owner.SetDeadline(_serverLimits.KeepAliveTimeout);
            }
            else if (endStream && stream is not null && _refuseReason is null && !_block.IsTrailers)
            {
                // A request without a body: its end is recorded here, under the lock already held, for StartStream
                // (every path below that does not start the stream resets it, which ends it anyway).
                stream.EndStreamReceived = true;
                stream.State = Http2StreamState.HalfClosedRemote;
                stream.EndBodyWithHeaders();
            }
        }

        if (_refuseReason is not null || stream is null)
        {
            string reason = _refuseReason ?? "stream closed while its headers arrived";
            _refuseReason = null;
            if (stream is not null)
            {
                lock (_lock)
                {
                    return ResetStreamLocked(stream, _refuseCode, reason);
                }
            }

            _output.WriteRstStream(id, _refuseCode);
            lock (_lock)
            {
                RememberResetLocked(id);
            }

            _logger.LogDebug("connection {Id}: stream {Stream} refused: {Reason}", _info.Id, id, reason);
            return default;
        }

        bool isTrailers = _block.IsTrailers;
        if (!isTrailers && status == HpackStatus.HeaderListTooLarge)
        {
            // RFC 9113 §10.5.1: answer 431 on the stream rather than decoding further.
            LimitCounters.Increment("h2_header_list_too_large");
            StartStream(stream, endStream, rejectStatus: 431, reason: "header list too large");
            return default;
        }

        if (isTrailers)
        {
            // Trailers end the request body.
            lock (_lock)
            {
                if (status == HpackStatus.HeaderListTooLarge)
                {
                    LimitCounters.Increment("h2_header_list_too_large");
                    return ResetStreamLocked(stream, Http2ErrorCode.ProtocolError, "trailer list too large");
                }

                return _block.Malformed is not null
                    ? ResetStreamLocked(stream, Http2ErrorCode.ProtocolError, _block.Malformed)
                    : EndRequestBodyLocked(stream);
            }
        }

        if (_block.Malformed is not null)
        {
            LimitCounters.Increment("h2_malformed_request");
            lock (_lock)
            {
                return ResetStreamLocked(stream, Http2ErrorCode.ProtocolError, _block.Malformed);
            }
        }

        if (_block.IsConnect)
        {
            StartStream(stream, endStream, rejectStatus: 501, reason: "CONNECT is not supported"); // as on HTTP/1.1
            return default;
        }

        RequestTarget.Result target = stream.Context.ParseTarget(out RequestTargetForm form, out _, out _);
        if (target != RequestTarget.Result.Ok || form == RequestTargetForm.Absolute || form == RequestTargetForm.Authority
            || (form == RequestTargetForm.Asterisk && stream.Context.Method != HttpMethod.Options))
        {
            lock (_lock)
            {
                return ResetStreamLocked(stream, Http2ErrorCode.ProtocolError, "invalid :path"); // §8.3.1
            }
        }

        stream.DeclaredContentLength = _block.ContentLength;
        if (endStream && _block.ContentLength > 0)
        {
            lock (_lock)
            {
                return ResetStreamLocked(stream, Http2ErrorCode.ProtocolError, "content-length without a body"); // §8.1.1
            }
        }

        if (_block.ContentLength > _serverLimits.MaxRequestBodySize)
        {
            StartStream(stream, endStream, rejectStatus: 413, reason: "request body too large");
            return default;
        }

        StartStream(stream, endStream, rejectStatus: 0, reason: null);
        return default;
    }

    private Http2FrameError OnData(in Http2FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!Http2FrameReader.TryReadData(header, payload, out Http2DataFrame frame, out Http2FrameError error))
        {
            return error;
        }

        int flowLength = frame.FlowControlledLength;
        // §6.9: every DATA frame counts against the connection window, whatever the stream's state.
        if (flowLength > _connectionReceiveWindow)
        {
            return Http2FrameError.Connection(Http2ErrorCode.FlowControlError, "DATA beyond the connection window");
        }

        Interlocked.Add(ref _connectionReceiveWindow, -flowLength);
        if (frame.Data.IsEmpty && !frame.EndStream && Flood(ref _emptyData, _limits.MaxEmptyDataFramesPerInterval, "h2_empty_data_flood"))
        {
            return Calm("empty DATA frame flood");
        }

        lock (_lock)
        {
            if (!_streams.TryGetValue(header.StreamId, out Http2Stream? stream))
            {
                CreditConnectionLocked(flowLength);
                if (header.StreamId > _lastStreamId)
                {
                    return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "DATA on an idle stream"); // §5.1
                }

                switch (RecentlyClosedLocked(header.StreamId))
                {
                    case ClosedBy.Us:
                        return default; // frames in flight after our RST_STREAM (§5.4.2)
                    case ClosedBy.Client:
                        // §5.1 closed: a frame after the client's own RST_STREAM is a STREAM_CLOSED stream error.
                        // Answered once: later frames count as in flight after our RST_STREAM.
                        return ResetStreamId(header.StreamId, Http2FrameError.Stream(Http2ErrorCode.StreamClosed, "DATA after RST_STREAM"));
                    case ClosedBy.EndStream:
                        return Http2FrameError.Connection(Http2ErrorCode.StreamClosed, "DATA on a closed stream");
                    default:
                        return Http2FrameError.Connection(Http2ErrorCode.ProtocolError, "DATA on a stream that was never opened");
                }
            }

            if (stream.EndStreamReceived)
            {
                CreditConnectionLocked(flowLength);
                return ResetStreamLocked(stream, Http2ErrorCode.StreamClosed, "DATA after END_STREAM"); // §5.1 half-closed (remote)
            }

            if (flowLength > stream.ReceiveWindow)
            {
                CreditConnectionLocked(flowLength);
                return ResetStreamLocked(stream, Http2ErrorCode.FlowControlError, "DATA beyond the stream window");
            }

            stream.ReceiveWindow -= flowLength;
            int padding = flowLength - (int)frame.Data.Length;
            if (padding > 0)
            {
                // Padding is never read by the application: give it back at once.
                CreditConnectionLocked(padding);
                stream.ReceiveWindow += padding;
                if (!frame.EndStream)
                {
                    _output.WriteWindowUpdate(stream.StreamId, padding);
                }
            }

            stream.ReceivedBodyBytes += frame.Data.Length;
            if (stream.DeclaredContentLength >= 0 && stream.ReceivedBodyBytes > stream.DeclaredContentLength)
            {
                return ResetStreamLocked(stream, Http2ErrorCode.ProtocolError, "more DATA than content-length"); // §8.1.1
            }

            if (stream.ReceivedBodyBytes > _serverLimits.MaxRequestBodySize)
            {
                LimitCounters.Increment("request_body_too_large");
                return ResetStreamLocked(stream, Http2ErrorCode.Cancel, "request body too large");
            }

            if (!frame.Data.IsEmpty)
            {
                if (stream.HandlerDone || stream.BodyTimedOut)
                {
                    CreditConnectionLocked((int)frame.Data.Length); // nobody will read it
                }
                else
                {
                    stream.AppendBody(frame.Data);
                }
            }

            if (frame.EndStream)
            {
                if (stream.DeclaredContentLength >= 0 && stream.ReceivedBodyBytes != stream.DeclaredContentLength)
                {
                    return ResetStreamLocked(stream, Http2ErrorCode.ProtocolError, "DATA shorter than content-length");
                }

                return EndRequestBodyLocked(stream);
            }
        }

        return default;
    }

    private Http2FrameError EndRequestBodyLocked(Http2Stream stream)
    {
        stream.EndStreamReceived = true;
        stream.State = stream.State == Http2StreamState.HalfClosedLocal ? Http2StreamState.Closed : Http2StreamState.HalfClosedRemote;
        stream.CompleteBody();
        ReleaseIfDoneLocked(stream);
        return default;
    }

    // ---------------- streams ----------------

    /// <param name="endStream">The HEADERS ended the stream, which ContinueBlock has recorded already.</param>
    private void StartStream(Http2Stream stream, bool endStream, int rejectStatus, string? reason)
    {
        RequestContext context = stream.Context;
        if (endStream)
        {
            context.Body = EmptyRequestBody.Instance;
        }
        else
        {
            context.Body = stream.Body;
        }

        stream.HandlerStarted = true;
        ValueTask run;
        if (rejectStatus != 0)
        {
            run = RespondProblemAsync(context, rejectStatus, reason!);
        }
        else
        {
            try
            {
                run = _listener.Current.Dispatcher.DispatchAsync(context);
            }
            catch (Exception e)
            {
                run = ValueTask.FromException(e);
            }
        }

        if (run.IsCompletedSuccessfully)
        {
            FinishStream(stream);
        }
        else
        {
            // No async method of its own per stream (its box would be allocated per request): the stream's cached
            // callback runs when the handler completes, and only a failure goes through an async method.
            _output.HandlerRunning();
            stream.PendingRun = run;
            run.GetAwaiter().UnsafeOnCompleted(stream.RunCompleted);
        }
    }

    /// <summary>A stream's handler finished asynchronously (the callback registered in StartStream).</summary>
    internal void OnRunCompleted(Http2Stream stream)
    {
        ValueTask run = stream.PendingRun;
        stream.PendingRun = default;
        try
        {
            run.GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            _ = FailStreamAsync(stream, e);
            return;
        }

        _output.HandlerFinished();
        FinishStream(stream);
    }

    private static ValueTask RespondProblemAsync(RequestContext context, int status, string reason)
    {
        byte[] body = ProblemDetails.Json(status, reason);
        return context.RespondAsync(status, "application/problem+json"u8, body);
    }

    /// <summary>The handler failed: answer or reset as the failure allows, then finish the stream.</summary>
    private async Task FailStreamAsync(Http2Stream stream, Exception failure)
    {
        try
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
        catch (BadRequestException e) when (!stream.Context.ResponseStarted)
        {
            try
            {
                await RespondProblemAsync(stream.Context, e.StatusCode, e.Message).ConfigureAwait(false);
            }
            catch (Exception inner) when (inner is IOException or InvalidOperationException or OperationCanceledException)
            {
                // reset or gone meanwhile: the stream still finishes below
            }
        }
        catch (BadRequestException e)
        {
            // The status is out (a body timeout raced with the handler's first write): only a reset can say it.
            ResetStream(stream, Http2ErrorCode.Cancel, e.Message);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The client reset the stream, the connection is gone, or what the handler relayed broke off (an upstream
            // body cut short). In the last case the stream must not end as if whole: only a reset says so, as a
            // closed connection does on HTTP/1.1. After a client's reset nothing more is sent (§5.4.2).
            if (!stream.ResetSent && !stream.EndStreamSent)
            {
                ResetStream(stream, Http2ErrorCode.InternalError, "the response was cut short: " + e.Message);
            }
        }
        catch (Exception e)
        {
            _logger.LogError(e, "connection {Id} stream {Stream}: handler failed", _info.Id, stream.StreamId);
            if (!stream.Context.ResponseStarted && !stream.ResetSent)
            {
                try
                {
                    await RespondProblemAsync(stream.Context, 500, "handler failed").ConfigureAwait(false);
                }
                catch (Exception inner) when (inner is IOException or InvalidOperationException)
                {
                }
            }
            else
            {
                ResetStream(stream, Http2ErrorCode.InternalError, "handler failed mid-response");
            }
        }

        _output.HandlerFinished();
        FinishStream(stream);
    }

    /// <param name="completeTried">The end of the response was tried already (FinishAfterAsync): not again, whatever
    /// became of it (a connection that is gone fails it each time).</param>
    private void FinishStream(Http2Stream stream, bool completeTried = false)
    {
        if (!stream.Recorded)
        {
            // Before the last frame goes: the line is queued by the time the client sees the stream end.
            stream.Recorded = true;
            // The client left (its reset, its closed connection) or the connection's writes failed (the client is gone,
            // unless we closed the transport ourselves) before END_STREAM went out.
            if (!stream.EndStreamSent && (stream.ClientLeft || (_output.WriteFailed && !_owner.AbortedByUs)))
            {
                stream.Context.StatusCode = 499; // nginx's "client closed request": the answer never reached it whole
            }

            _listener.Current.AccessLog?.Record(stream.Context, stream.StreamId, stream.ReceivedBodyBytes);
        }

        if (!completeTried && !stream.EndStreamSent && !stream.ResetSent)
        {
            ValueTask complete = stream.CompleteAsync(stream.Context);
            if (!complete.IsCompletedSuccessfully)
            {
                _ = FinishAfterAsync(stream, complete);
                return;
            }
        }

        lock (_lock)
        {
            stream.HandlerDone = true;
            if (!stream.ResetSent && (!stream.EndStreamSent || !stream.EndStreamReceived))
            {
                // The end of the response could not be written (FinishAfterAsync): the stream must not stay open. Or
                // §8.1: the response is complete; tell the client to stop sending the rest of the body.
                stream.ResetSent = true;
                _output.WriteRstStream(stream.StreamId, stream.EndStreamSent ? Http2ErrorCode.NoError : Http2ErrorCode.InternalError);
                RememberResetLocked(stream.StreamId);
                stream.CompleteBody();
            }

            ReleaseIfDoneLocked(stream);
        }
    }

    private async Task FinishAfterAsync(Http2Stream stream, ValueTask complete)
    {
        try
        {
            await complete.ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException)
        {
        }

        FinishStream(stream, completeTried: true);
    }

    /// <summary>Removes a stream whose exchange is over from the table and returns it to the pool.</summary>
    private void ReleaseIfDoneLocked(Http2Stream stream)
    {
        if (!stream.HandlerDone || (!stream.EndStreamReceived && !stream.ResetSent))
        {
            return;
        }

        if (_streams.TryGetValue(stream.StreamId, out Http2Stream? current) && ReferenceEquals(current, stream))
        {
            _streams.Remove(stream.StreamId);
        }

        // Body bytes the application never read still hold the connection window.
        int unread = (int)Math.Min(int.MaxValue, stream.UnreadBytes);
        if (unread > 0)
        {
            CreditConnectionLocked(unread);
        }

        if (_streams.Count == 0)
        {
            _owner.SetDeadline(_serverLimits.KeepAliveTimeout);
            if (_closing || _clientGoAway)
            {
                _input.CancelPendingRead();
            }
        }

        if (stream.Released)
        {
            return;
        }

        if (!stream.ResetSent)
        {
            RememberClosedLocked(stream.StreamId, ClosedBy.EndStream);
        }

        stream.Released = true;
        stream.Recycle();
        if (_pool.Count < _limits.MaxConcurrentStreams)
        {
            _pool.Push(stream);
        }
    }

    /// <summary>Stream error: RST_STREAM with the code; the stream's handler sees its writes fail.</summary>
    internal void ResetStream(Http2Stream stream, Http2ErrorCode code, string reason)
    {
        lock (_lock)
        {
            ResetStreamLocked(stream, code, reason, causedByClient: false);
        }
    }

    private Http2FrameError ResetStreamLocked(Http2Stream stream, Http2ErrorCode code, string reason, bool causedByClient = true)
    {
        // CVE-2025-8671 ("MadeYouReset"): instead of resetting streams itself, a client can make us reset them with a
        // frame that is a stream error; a stream whose handler runs and has not answered counts like a client reset.
        bool unanswered = !stream.ResetSent && stream.HandlerStarted && !stream.HandlerDone && !stream.EndStreamSent;
        if (!stream.ResetSent)
        {
            stream.ResetSent = true;
            _output.WriteRstStream(stream.StreamId, code);
            RememberResetLocked(stream.StreamId);
            _logger.LogDebug("connection {Id} stream {Stream}: reset {Code}: {Reason}", _info.Id, stream.StreamId, code, reason);
        }

        stream.State = Http2StreamState.Closed;
        stream.CompleteBody(new IOException($"stream reset: {reason}"));
        if (causedByClient)
        {
            stream.Context.Abort(); // the client broke the stream: nothing the handler sends can reach it now
        }
        stream.SignalWindow();
        if (!stream.HandlerStarted)
        {
            stream.HandlerDone = true;
        }

        _streams.Remove(stream.StreamId);
        ReleaseIfDoneLocked(stream);
        return causedByClient && unanswered && Flood(ref _resets, _limits.MaxResetsPerInterval, "h2_made_you_reset")
            ? Calm("too many streams reset for client errors (made-you-reset)")
            : default;
    }

    private Http2FrameError ResetStreamId(int streamId, Http2FrameError error)
    {
        lock (_lock)
        {
            if (_streams.TryGetValue(streamId, out Http2Stream? stream))
            {
                return ResetStreamLocked(stream, error.ErrorCode, error.Reason);
            }

            RememberResetLocked(streamId);
        }

        _output.WriteRstStream(streamId, error.ErrorCode);
        return default;
    }

    private void RememberResetLocked(int streamId) => RememberClosedLocked(streamId, ClosedBy.Us);

    /// <summary>How a recently closed stream ended, which decides what a late frame on it gets (§5.1 "closed").</summary>
    private enum ClosedBy : byte
    {
        /// <summary>Both sides sent END_STREAM: any further frame but PRIORITY is a STREAM_CLOSED connection error.</summary>
        EndStream,
        /// <summary>We sent RST_STREAM: frames the client sent before seeing it are ignored (§5.4.2).</summary>
        Us,
        /// <summary>The client sent RST_STREAM: a further frame is a STREAM_CLOSED stream error.</summary>
        Client,
    }

    /// <summary>
    /// Recently closed streams, so that late frames can be told apart: frames in flight after our RST_STREAM are
    /// ignored (§5.4.2); frames after the client's own RST_STREAM are a STREAM_CLOSED stream error; HEADERS or DATA
    /// on a stream that finished is a STREAM_CLOSED connection error; a lower id that was never opened is
    /// PROTOCOL_ERROR (§5.1.1). The latest entry for an id wins. Under <c>_lock</c>, which every caller holds
    /// already (a lock of its own cost an uncontended Monitor round trip per stream).
    /// </summary>
    private void RememberClosedLocked(int streamId, ClosedBy how)
    {
        long now = Transport.LoopClock.Milliseconds;
        while (_recentlyClosed.Count > 0 && (_recentlyClosed.Count > 1000 || _recentlyClosed.Peek().Until < now))
        {
            _recentlyClosed.Dequeue();
        }

        _recentlyClosed.Enqueue((streamId, how, now + 10_000));
    }

    /// <summary>Under <c>_lock</c>. null: not known as closed.</summary>
    private ClosedBy? RecentlyClosedLocked(int streamId)
    {
        ClosedBy? result = null;
        foreach ((int id, ClosedBy how, _) in _recentlyClosed)
        {
            if (id == streamId)
            {
                result = how;
            }
        }

        return result;
    }

    // ---------------- flow control: give windows back as the application reads ----------------

    internal void OnBodyConsumed(Http2Stream stream, int bytes)
    {
        lock (_lock)
        {
            if (!stream.EndStreamReceived && !stream.ResetSent)
            {
                stream.UnacknowledgedConsumed += bytes;
                if (stream.UnacknowledgedConsumed >= _limits.InitialStreamWindowSize / 2)
                {
                    stream.ReceiveWindow += stream.UnacknowledgedConsumed;
                    _output.WriteWindowUpdate(stream.StreamId, stream.UnacknowledgedConsumed);
                    stream.UnacknowledgedConsumed = 0;
                }
            }

            CreditConnectionLocked(bytes);
        }
    }

    private void CreditConnectionLocked(int bytes)
    {
        _connectionUnacknowledged += bytes;
        if (_connectionUnacknowledged >= _limits.InitialConnectionWindowSize / 2)
        {
            Interlocked.Add(ref _connectionReceiveWindow, _connectionUnacknowledged);
            _output.WriteWindowUpdate(0, _connectionUnacknowledged);
            _connectionUnacknowledged = 0;
        }
    }

    // ---------------- shutdown and timeouts ----------------

    private void SendGoAway(Http2ErrorCode code, string? reason)
    {
        int last;
        lock (_lock)
        {
            if (_goAwaySent && code == Http2ErrorCode.NoError)
            {
                return;
            }

            _goAwaySent = true;
            last = _lastStreamId;
        }

        _output.WriteGoAway(last, code, reason);
    }

    /// <summary>
    /// Graceful shutdown or reload, in two steps (RFC 9113 §6.8): a GOAWAY with the highest possible stream id and a
    /// PING; requests the client sent before it saw the GOAWAY are still served. When the PING's ACK comes back (a
    /// round trip later; at most <see cref="DrainAckWait"/> ms), the final GOAWAY names the last stream we process,
    /// and the connection closes once those are done.
    /// </summary>
    internal void RequestClose()
    {
        if (Interlocked.CompareExchange(ref _drainState, 1, 0) == 0 && Volatile.Read(ref _started) == 1)
        {
            AnnounceDrain();
        }
    }

    private void AnnounceDrain()
    {
        if (Interlocked.CompareExchange(ref _drainState, 2, 1) != 1)
        {
            return;
        }

        Volatile.Write(ref _drainAnnouncedAt, Environment.TickCount64);
        _output.WriteGoAway(int.MaxValue, Http2ErrorCode.NoError);
        _output.WritePing(DrainPing);
    }

    private void FinishDrain()
    {
        if (Interlocked.CompareExchange(ref _drainState, 3, 2) != 2)
        {
            return;
        }

        _closing = true;
        SendGoAway(Http2ErrorCode.NoError, null);
        if (ActiveStreams == 0)
        {
            _input.CancelPendingRead();
        }
    }

    internal void OnTimeout()
    {
        if (ActiveStreams > 0 && !_block.IsOpen)
        {
            return;
        }

        _timedOut = true;
        LimitCounters.Increment(_block.IsOpen ? "h2_header_timeout" : "h2_idle_timeout");
        _input.CancelPendingRead();
    }

    /// <summary>
    /// The per-stream and send timeouts, driven by the registry's heartbeat (no timer per stream, as in Kestrel):
    /// a request body that arrives slower than MinRequestBodyRate while the handler waits for it (408, or RST_STREAM
    /// CANCEL once the response started), and a response the client does not take within StreamSendTimeout (RST_STREAM
    /// CANCEL on its stream window, GOAWAY on the connection window, close when the socket itself does not drain).
    /// The header-block and idle timeouts stay on the connection deadline (<see cref="OnTimeout"/>).
    /// </summary>
    internal void OnHeartbeat(long now)
    {
        long elapsed = _lastHeartbeat == 0 ? 0 : Math.Max(0, now - _lastHeartbeat);
        _lastHeartbeat = now;
        if (Volatile.Read(ref _drainState) == 2 && Environment.TickCount64 - Volatile.Read(ref _drainAnnouncedAt) > DrainAckWait)
        {
            FinishDrain(); // the client does not answer PINGs: close anyway
        }

        if (_timedOut || _sendTimedOut)
        {
            return;
        }

        long sendTimeout = (long)_limits.StreamSendTimeout.TotalMilliseconds;
        if (sendTimeout > 0)
        {
            long writing = _output.TransportWriteSince;
            if (writing != 0 && now - writing > sendTimeout)
            {
                // The client stopped reading the socket: not even a GOAWAY would reach it.
                LimitCounters.Increment("h2_send_timeout");
                _logger.LogInformation("connection {Id} from {Remote}: HTTP/2 send timeout: the client does not read", _info.Id, _info.RemoteEndPoint);
                _owner.Abort("send timeout");
                return;
            }

            long blocked = _output.ConnectionWindowBlockedSince;
            if (blocked != 0 && now - blocked > sendTimeout)
            {
                LimitCounters.Increment("h2_send_timeout");
                _sendTimedOut = true;
                _input.CancelPendingRead();
                return;
            }
        }

        List<Http2Stream>? sendStalled = null;
        List<Http2Stream>? bodyStalled = null;
        lock (_lock)
        {
            if (_streams.Count == 0 && _startedSinceHeartbeat == 0 && _pool.Count > 1)
            {
                TrimIdlePoolLocked();
            }

            _startedSinceHeartbeat = 0;

            foreach (Http2Stream s in _streams.Values)
            {
                if (s.ResetSent)
                {
                    continue;
                }

                long since = Volatile.Read(ref s.SendBlockedSince);
                if (sendTimeout > 0 && since != 0 && now - since > sendTimeout)
                {
                    (sendStalled ??= []).Add(s);
                }
                else if (IsBodyTooSlowLocked(s, elapsed))
                {
                    (bodyStalled ??= []).Add(s);
                }
            }

            if (sendStalled is not null)
            {
                foreach (Http2Stream s in sendStalled)
                {
                    LimitCounters.Increment("h2_send_timeout");
                    ResetStreamLocked(s, Http2ErrorCode.Cancel, "send timeout: the stream window stayed closed", causedByClient: false);
                }
            }

            if (bodyStalled is not null)
            {
                foreach (Http2Stream s in bodyStalled)
                {
                    LimitCounters.Increment("h2_body_timeout");
                    _logger.LogInformation("connection {Id} stream {Stream}: request body data rate below minimum", _info.Id, s.StreamId);
                    if (s.Context.ResponseStarted)
                    {
                        ResetStreamLocked(s, Http2ErrorCode.Cancel, "request body timeout", causedByClient: false);
                    }
                    else
                    {
                        // The handler's read fails with a 408, which it answers (FailStreamAsync); then, the body
                        // being unfinished, the stream is reset with NO_ERROR (§8.1). Later DATA is discarded.
                        s.BodyTimedOut = true;
                        s.CompleteBody(new BadRequestException(RequestRejection.RequestTimeout));
                    }
                }
            }
        }
    }

    /// <summary>Closed streams kept for reuse.</summary>
    internal int PooledStreams
    {
        get
        {
            lock (_lock)
            {
                return _pool.Count;
            }
        }
    }

    /// <summary>
    /// An idle connection (no open stream at a heartbeat, and none started since the one before) keeps one pooled
    /// stream instead of one per stream it ever ran at once: a browser's connection that once had 30 requests in flight
    /// would otherwise hold 30 request contexts, with their header buffers, while it idles. The one kept stays whole,
    /// so a connection with one request at a time allocates nothing. "None started since" matters under load: a
    /// client with 32 requests in flight gets all 32 answers in one flush, so its table is empty for a moment between
    /// batches, and trimming then made the next batch allocate 31 streams anew. Called under the lock.
    /// </summary>
    private void TrimIdlePoolLocked()
    {
        while (_pool.Count > 1)
        {
            _pool.Pop();
        }
    }

    /// <summary>
    /// The minimum request body rate, as on HTTP/1.1 (bytes per second after a grace period), measured over the time
    /// the handler spent waiting for data the client was free to send: not while the handler is busy elsewhere, nor
    /// while our windows keep the client from sending.
    /// </summary>
    private bool IsBodyTooSlowLocked(Http2Stream s, long elapsed)
    {
        int rate = _serverLimits.MinRequestBodyRate;
        if (rate <= 0 || !s.HandlerStarted || s.HandlerDone || s.EndStreamReceived || s.BodyTimedOut || s.Tunnel || !s.Body.IsWaiting
            || s.ReceiveWindow <= 0 || Volatile.Read(ref _connectionReceiveWindow) <= 0)
        {
            return false;
        }

        s.BodyWaitMillis += elapsed;
        double seconds = s.BodyWaitMillis / 1000.0;
        return seconds > _serverLimits.MinRequestBodyRateGracePeriod.TotalSeconds && s.ReceivedBodyBytes / seconds < rate;
    }

    /// <summary>The connection ended: every stream with it. <paramref name="clientLeft"/>: the client ended it (not our GOAWAY for its error, nor a drain).</summary>
    private void AbortAllStreams(bool clientLeft)
    {
        lock (_lock)
        {
            foreach (Http2Stream s in _streams.Values)
            {
                s.ClientLeft = clientLeft;
                s.ResetSent = true;
                s.CompleteBody(new IOException("connection closed"));
                s.Context.Abort();
                s.SignalWindow();
            }

            _streams.Clear();
        }
    }
}

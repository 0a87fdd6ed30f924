using System.Buffers;

namespace Appliance.Protocol.Sse;

/// <summary>
/// Incremental parser of <c>text/event-stream</c> (WHATWG HTML §9.2.6, "Interpreting an event stream"), as LLM
/// providers stream their answers. Lines end in CRLF, LF or a lone CR; a leading UTF-8 BOM is dropped; <c>:</c> starts
/// a comment; <c>data</c> lines join with LF; an empty line dispatches the event unless it has no data. Fields other
/// than <c>event</c>, <c>data</c>, <c>id</c> and <c>retry</c> are ignored, as the spec says.
/// <code>
/// while (parser.Read(ref reader) == SseStatus.Event) { use parser.EventType, parser.Data; }
/// </code>
/// The event's fields live in the parser's own buffers and stay valid until the next <see cref="Read"/>. An
/// unfinished line is left unread in the reader, and the next <see cref="Read"/> must start there (with more bytes
/// after it). At the end of the stream a pending event is discarded (the spec's
/// rule), which <see cref="HasPendingEvent"/> lets the caller notice. One instance serves one stream at a time;
/// <see cref="Reset"/> readies it for the next without new buffers.
/// </summary>
public sealed class SseParser
{
    private const byte CR = (byte)'\r';
    private const byte LF = (byte)'\n';
    private const int MaxEventTypeBytes = 256;
    private const int MaxIdBytes = 1024;
    private static ReadOnlySpan<byte> Bom => [0xEF, 0xBB, 0xBF];
    private static ReadOnlySpan<byte> MessageType => "message"u8;

    private readonly int _maxEventBytes;
    private byte[] _data = new byte[4096];
    private int _dataLength;
    private readonly byte[] _type = new byte[MaxEventTypeBytes];
    private int _typeLength;
    private readonly byte[] _id = new byte[MaxIdBytes];
    private int _idLength;
    private byte[]? _line;
    private int _eventBytes;
    private long _scanned; // bytes of an unfinished line already searched for its end
    private bool _started;
    private bool _skipLf;
    private bool _dispatched;

    /// <param name="maxEventBytes">Most bytes one event may take on the wire, its field names and line ends included.
    /// A longer event (or a longer line) is <see cref="SseStatus.TooLarge"/>: a provider that sends it is broken or
    /// hostile, and nothing after it can be trusted.</param>
    public SseParser(int maxEventBytes = 1 << 20)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEventBytes, 64);
        _maxEventBytes = maxEventBytes;
    }

    /// <summary>The event's type: its last <c>event</c> field, or <c>message</c>.</summary>
    public ReadOnlySpan<byte> EventType => _typeLength == 0 ? MessageType : _type.AsSpan(0, _typeLength);

    /// <summary>The event's data lines joined with LF, without the last LF.</summary>
    public ReadOnlySpan<byte> Data => _data.AsSpan(0, _dataLength);

    /// <summary>The last event ID seen on the stream so far (it carries over between events, per the spec).</summary>
    public ReadOnlySpan<byte> LastEventId => _id.AsSpan(0, _idLength);

    /// <summary>The last valid <c>retry</c> field, in milliseconds; -1 when none came.</summary>
    public long RetryMilliseconds { get; private set; } = -1;

    /// <summary>True when data of an event was read but no empty line ended it yet.</summary>
    public bool HasPendingEvent => _dataLength > 0 && !_dispatched;

    /// <summary>Readies the parser for a new stream.</summary>
    public void Reset()
    {
        _dataLength = 0;
        _typeLength = 0;
        _idLength = 0;
        _eventBytes = 0;
        _scanned = 0;
        _started = false;
        _skipLf = false;
        _dispatched = false;
        RetryMilliseconds = -1;
    }

    /// <summary>
    /// Reads whole lines until an event is complete (<see cref="SseStatus.Event"/>), the input holds no whole line
    /// (<see cref="SseStatus.NeedMoreData"/>), or an event outgrows the limit (<see cref="SseStatus.TooLarge"/>).
    /// </summary>
    public SseStatus Read(ref SequenceReader<byte> reader)
    {
        if (_dispatched)
        {
            _dispatched = false;
            _dataLength = 0;
            _typeLength = 0;
            _eventBytes = 0;
        }

        if (!_started)
        {
            if (reader.Remaining < Bom.Length)
            {
                // Too few bytes to tell a BOM from data: wait, unless they already differ from one.
                Span<byte> head = stackalloc byte[Bom.Length];
                int n = (int)reader.Remaining;
                reader.TryCopyTo(head[..n]);
                if (Bom.StartsWith(head[..n]))
                {
                    return SseStatus.NeedMoreData;
                }
            }

            _started = true;
            reader.IsNext(Bom, advancePast: true);
        }

        while (true)
        {
            if (_skipLf)
            {
                if (reader.End)
                {
                    return SseStatus.NeedMoreData;
                }

                _skipLf = false;
                if (reader.IsNext(LF, advancePast: true))
                {
                    _eventBytes++;
                }
            }

            if (!TryReadLine(ref reader, out ReadOnlySequence<byte> line))
            {
                return _eventBytes + reader.Remaining > _maxEventBytes ? SseStatus.TooLarge : SseStatus.NeedMoreData;
            }

            reader.TryRead(out byte end);
            _skipLf = end == CR;
            _eventBytes += (int)Math.Min(line.Length + 1, int.MaxValue - _eventBytes);
            if (_eventBytes > _maxEventBytes)
            {
                return SseStatus.TooLarge;
            }

            if (line.IsEmpty)
            {
                if (_dataLength == 0)
                {
                    // An event without data is not dispatched; its type resets (the id stays).
                    _typeLength = 0;
                    _eventBytes = 0;
                    continue;
                }

                _dataLength--; // the LF after the last data line
                _dispatched = true;
                return SseStatus.Event;
            }

            ProcessLine(line.IsSingleSegment ? line.FirstSpan : Flatten(line));
        }
    }

    /// <summary>
    /// The next line, without its end, or false when the input holds no line end yet. The bytes of an unfinished line
    /// are searched once: the next call starts where this one stopped (the caller hands the unread rest back), so a
    /// line trickling in small reads costs its length, not its length squared.
    /// </summary>
    private bool TryReadLine(ref SequenceReader<byte> reader, out ReadOnlySequence<byte> line)
    {
        if (_scanned == 0 || _scanned > reader.Remaining)
        {
            // The common case: a fresh line, searched from its start.
            if (reader.TryReadToAny(out line, "\r\n"u8, advancePastDelimiter: false))
            {
                _scanned = 0;
                return true;
            }

            _scanned = reader.Remaining;
            return false;
        }

        SequenceReader<byte> probe = reader;
        probe.Advance(_scanned);
        if (!probe.TryAdvanceToAny("\r\n"u8, advancePastDelimiter: false))
        {
            _scanned = reader.Remaining;
            line = default;
            return false;
        }

        long length = probe.Consumed - reader.Consumed;
        line = reader.UnreadSequence.Slice(0, length);
        reader.Advance(length);
        _scanned = 0;
        return true;
    }

    private ReadOnlySpan<byte> Flatten(in ReadOnlySequence<byte> line)
    {
        int length = (int)line.Length;
        if (_line is null || _line.Length < length)
        {
            _line = new byte[Math.Max(length, 1024)];
        }

        line.CopyTo(_line);
        return _line.AsSpan(0, length);
    }

    private void ProcessLine(ReadOnlySpan<byte> line)
    {
        if (line[0] == (byte)':')
        {
            return;
        }

        ReadOnlySpan<byte> field = line;
        ReadOnlySpan<byte> value = default;
        int colon = line.IndexOf((byte)':');
        if (colon >= 0)
        {
            field = line[..colon];
            value = line[(colon + 1)..];
            if (!value.IsEmpty && value[0] == (byte)' ')
            {
                value = value[1..];
            }
        }

        if (field.SequenceEqual("data"u8))
        {
            AppendData(value);
        }
        else if (field.SequenceEqual("event"u8))
        {
            // A type longer than any real one is cut; it then matches nothing a caller looks for.
            int n = Math.Min(value.Length, _type.Length);
            value[..n].CopyTo(_type);
            _typeLength = n;
        }
        else if (field.SequenceEqual("id"u8))
        {
            if (value.IndexOf((byte)0) < 0 && value.Length <= _id.Length)
            {
                value.CopyTo(_id);
                _idLength = value.Length;
            }
        }
        else if (field.SequenceEqual("retry"u8))
        {
            if (!value.IsEmpty && value.Length <= 18 && !value.ContainsAnyExceptInRange((byte)'0', (byte)'9'))
            {
                long ms = 0;
                foreach (byte b in value)
                {
                    ms = (ms * 10) + (b - '0');
                }

                RetryMilliseconds = ms;
            }
        }
    }

    private void AppendData(ReadOnlySpan<byte> value)
    {
        int needed = _dataLength + value.Length + 1;
        if (needed > _data.Length)
        {
            // Bounded by maxEventBytes: every data byte was counted against it before this line was processed.
            Array.Resize(ref _data, Math.Max(needed, Math.Min(_data.Length * 2, _maxEventBytes)));
        }

        value.CopyTo(_data.AsSpan(_dataLength));
        _dataLength += value.Length;
        _data[_dataLength++] = LF;
    }
}

/// <summary>What <see cref="SseParser.Read"/> found.</summary>
public enum SseStatus : byte
{
    /// <summary>No whole line is left in the input.</summary>
    NeedMoreData,

    /// <summary>An event is complete; its fields are on the parser.</summary>
    Event,

    /// <summary>An event or a line is longer than the parser's limit.</summary>
    TooLarge,
}

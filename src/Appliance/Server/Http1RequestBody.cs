using System.Buffers;
using System.IO.Pipelines;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;

namespace Appliance.Server;

/// <summary>
/// A request body read straight from the connection's pipe with its HTTP/1.1 framing removed: a slice of the
/// input for Content-Length bodies, the data of the current chunk for chunked ones (no copy). Enforces the
/// body size limit and records progress for the minimum data rate check.
/// </summary>
internal sealed class Http1RequestBody : RequestBody
{
    private readonly Http1Connection _connection;
    private readonly PipeReader _input;
    private BodyKind _kind;
    private long _length;
    private long _remaining;
    private long _read;
    private volatile bool _complete; // read by the connection's loop (StartReadAhead) while a handler reads the body
    private ChunkedDecoder _chunked;
    private ReadOnlySequence<byte> _buffer;   // what the pipe returned
    private ReadOnlySequence<byte> _slice;    // what we handed out
    private long _rateStart;
    private long _rateBytes;
    private volatile bool _reading;

    public Http1RequestBody(Http1Connection connection, PipeReader input)
    {
        _connection = connection;
        _input = input;
    }

    public override long Length => _kind == BodyKind.ContentLength ? _length : -1;

    public override bool IsComplete => _complete;

    /// <summary>Bytes still expected for Content-Length bodies; unknown (0) for chunked ones.</summary>
    public long Remaining => _kind == BodyKind.ContentLength ? _remaining : 0;

    /// <summary>Body bytes taken from the connection so far (de-chunked), the drain included.</summary>
    public long BytesRead => _read;

    public void Reset(BodyKind kind, long length)
    {
        _kind = kind;
        _length = length;
        _remaining = kind == BodyKind.ContentLength ? length : 0;
        _read = 0;
        _complete = kind == BodyKind.None || (kind == BodyKind.ContentLength && length == 0);
        _chunked = new ChunkedDecoder(_connection.Limits.Http1);
        _buffer = _slice = default;
        _rateStart = 0;
        _rateBytes = 0;
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(Appliance.Runtime.PooledValueTaskMethodBuilder<>))]
    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (_complete)
        {
            return new ReadResult(default, false, true);
        }

        if (_connection.ExpectContinuePending)
        {
            await _connection.SendContinueAsync(_connection.Context).ConfigureAwait(false);
        }

        if (_rateStart == 0)
        {
            _rateStart = Environment.TickCount64;
        }

        while (true)
        {
            _reading = true;
            ReadResult result;
            try
            {
                result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _reading = false;
            }

            if (result.IsCanceled)
            {
                if (_connection.TimedOut)
                {
                    throw new BadRequestException(RequestRejection.RequestTimeout);
                }

                return new ReadResult(default, true, false);
            }

            _buffer = result.Buffer;
            if (_kind == BodyKind.ContentLength)
            {
                if (_buffer.IsEmpty && result.IsCompleted)
                {
                    throw new BadRequestException(RequestRejection.UnexpectedEndOfBody);
                }

                _slice = _buffer.Length > _remaining ? _buffer.Slice(0, _remaining) : _buffer;
                return new ReadResult(_slice, false, _slice.Length == _remaining);
            }

            var reader = new SequenceReader<byte>(_buffer);
            var discard = new DiscardTrailers();
            ChunkedStatus status = _chunked.Read(ref discard, ref reader, out long dataLength, out RequestRejection rejection);
            switch (status)
            {
                case ChunkedStatus.Data:
                    _slice = _buffer.Slice(reader.Position, dataLength);
                    if (_read + dataLength > _connection.Limits.MaxRequestBodySize)
                    {
                        throw new BadRequestException(RequestRejection.BodyTooLarge);
                    }

                    return new ReadResult(_slice, false, false);
                case ChunkedStatus.Done:
                    _input.AdvanceTo(reader.Position);
                    _complete = true;
                    _slice = default;
                    return new ReadResult(default, false, true);
                case ChunkedStatus.Error:
                    throw new BadRequestException(rejection);
                default: // NeedMoreData
                    if (result.IsCompleted)
                    {
                        throw new BadRequestException(RequestRejection.UnexpectedEndOfBody);
                    }

                    _input.AdvanceTo(reader.Position, _buffer.End);
                    continue;
            }
        }
    }

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (_complete && _slice.IsEmpty)
        {
            return;
        }

        long n = _slice.Slice(0, consumed).Length;
        _read += n;
        _rateBytes += n;
        if (_kind == BodyKind.ContentLength)
        {
            _remaining -= n;
            _input.AdvanceTo(consumed, examined);
            if (_remaining == 0)
            {
                _complete = true; // after the pipe moved on: the loop may start its next read as soon as it sees this
            }
        }
        else
        {
            _chunked.ConsumeData(n);
            // Consumed data moves the pipe forward; if nothing was consumed, the framing before the data must stay.
            _input.AdvanceTo(n == 0 ? _slice.Start : consumed, examined);
        }

        _slice = default;
    }

    /// <summary>True when a read is waiting and the body has arrived slower than the configured minimum.</summary>
    public bool IsReadRateTooLow(long now, ServerLimits limits)
    {
        if (!_reading || _complete || limits.MinRequestBodyRate <= 0 || _rateStart == 0)
        {
            return false;
        }

        double elapsed = (now - _rateStart) / 1000.0;
        if (elapsed <= limits.MinRequestBodyRateGracePeriod.TotalSeconds)
        {
            return false;
        }

        return _rateBytes / elapsed < limits.MinRequestBodyRate;
    }

    private readonly struct DiscardTrailers : IHttp1RequestHandler
    {
        public void OnRequestLine(HttpMethod method, ReadOnlySpan<byte> methodToken, ReadOnlySpan<byte> target, HttpVersion version)
        {
        }

        public void OnHeader(KnownHeader known, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
        }
    }
}

using System.Buffers;
using System.IO.Pipelines;

namespace Appliance.Server;

/// <summary>
/// The request body of an HTTP/2 stream: DATA payloads copied into the stream's pipe by the read loop. Reading
/// it is what opens the flow-control windows again (WINDOW_UPDATE is sent as the application consumes, not as
/// bytes arrive), so a slow reader stalls only its own stream.
/// </summary>
internal sealed class Http2RequestBody : RequestBody
{
    private readonly Http2Stream _stream;
    private readonly PipeReader _reader;
    private ReadOnlySequence<byte> _last;
    private bool _complete;
    private bool _lastCompleted;
    private volatile bool _waiting;

    public Http2RequestBody(Http2Stream stream, PipeReader reader)
    {
        _stream = stream;
        _reader = reader;
    }

    public override long Length => _stream.DeclaredContentLength;

    public override bool IsComplete => _complete;

    /// <summary>The handler is waiting for body data that has not arrived (the heartbeat's minimum rate check).</summary>
    public bool IsWaiting => _waiting;

    public void Reset()
    {
        _last = default;
        _complete = false;
        _lastCompleted = false;
        _waiting = false;
    }

    public void MarkComplete() => _complete = true;

    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (_complete)
        {
            return new ReadResult(default, false, true);
        }

        ReadResult result;
        _stream.OnBodyPipeRead();
        _waiting = true;
        try
        {
            result = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            throw new IOException("the HTTP/2 stream was reset");
        }
        finally
        {
            _waiting = false;
        }

        _last = result.Buffer;
        _lastCompleted = result.IsCompleted;
        if (result.IsCompleted && result.Buffer.IsEmpty)
        {
            _complete = true;
        }

        return result;
    }

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (_complete)
        {
            return;
        }

        ReadOnlySequence<byte> last = _last;
        long n = last.Slice(0, consumed).Length;
        bool everything = _lastCompleted && n == last.Length;
        _reader.AdvanceTo(consumed, examined);
        _last = default;
        if (n > 0)
        {
            _stream.OnBodyConsumed((int)n);
        }

        if (everything)
        {
            _complete = true;
        }
    }
}

using System.Buffers;

namespace Appliance.Tls;

/// <summary>
/// Sits between SslStream and the socket during a handshake and hands SslStream at most one TLS record per read,
/// keeping whatever arrived past that record's end. When the handshake is over, SslStream holds nothing the client
/// sent after its last handshake record (TLS 1.3 clients often send their first request right behind their Finished,
/// in the same packet), so <see cref="TlsRecordStream"/> can take the connection over from there with
/// <see cref="TakeRemainder"/>: the bytes read past the handshake, a whole number of records from a record boundary.
/// Costs nothing extra in syscalls: a read that brings more than one record keeps the rest for the next read.
/// <para>With <paramref name="holdWrites"/> (a server's handshake), what SslStream writes is kept (copied) and sent
/// ahead of the next read that needs the socket: a flight leaves as SslStream starts waiting for the answer, as
/// before. What SslStream writes after its last read, a TLS 1.3 server's NewSessionTicket (or TLS 1.2's final
/// flight), is left here for <see cref="TlsRecordStream"/> to send ahead of its own first records, in one send with
/// the first response (<see cref="TakeOutput"/>), or to be sent by <see cref="FlushOutputAsync"/>: one packet and one
/// system call fewer per connection.</para>
/// </summary>
public sealed class RecordBoundedStream(Stream inner, bool holdWrites = false) : DelegatingStream(inner)
{
    private const int HeaderLength = 5; // content type, version, length (RFC 8446 §5.1)

    private bool _holding = holdWrites; // until the handshake is over (StopHolding, ReleaseTransport)

    private byte[]? _output; // what SslStream wrote and nobody sent yet (holdWrites)
    private int _outputLength;

    private byte[]? _held;
    private int _heldStart;
    private int _heldEnd;

    private int _headerSeen;  // header bytes of the current record seen so far (0..5)
    private int _recordLength;
    private int _bodyLeft;    // body bytes of the current record still to hand over (once the header is whole)

    /// <summary>
    /// Hands the stream under this one (the socket) to the record layer that takes over after the handshake: from
    /// now on that layer closes it, and disposing this stream (as SslStream does when it is disposed) leaves it open.
    /// </summary>
    public Stream ReleaseTransport()
    {
        InnerReleased = true;
        return Inner;
    }

    private bool _untracked; // the client's first bytes were no TLS record (an SSLv2-format ClientHello)

    /// <summary>Whether the bytes handed over so far end at a record boundary (never after an SSLv2-format hello).</summary>
    public bool AtRecordBoundary => _headerSeen == 0 && !_untracked;

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_heldEnd > _heldStart)
        {
            if (buffer.IsEmpty)
            {
                return new ValueTask<int>(0); // data is here
            }

            int n = Math.Min(buffer.Length, _heldEnd - _heldStart);
            _held.AsSpan(_heldStart, n).CopyTo(buffer.Span);
            int take = Bound(buffer.Span[..n]);
            _heldStart += take;
            if (_heldStart == _heldEnd)
            {
                ReleaseHeld();
            }

            return new ValueTask<int>(take);
        }

        if (_outputLength > 0)
        {
            return SendOutputThenReadAsync(buffer, cancellationToken);
        }

        return buffer.IsEmpty ? Inner.ReadAsync(buffer, cancellationToken) : ReadInnerAsync(buffer, cancellationToken);
    }

    /// <summary>The socket is about to be read: what was written since the last read leaves first (the flight the peer answers).</summary>
    private async ValueTask<int> SendOutputThenReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        await FlushOutputAsync().ConfigureAwait(false); // never with the read's token: records half sent would desync the peer
        return buffer.IsEmpty
            ? await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)
            : await ReadInnerAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_holding || InnerReleased)
        {
            return Inner.WriteAsync(buffer, cancellationToken);
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        Keep(buffer.Span);
        return default;
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (!_holding || InnerReleased)
        {
            Inner.Write(buffer);
            return;
        }

        Keep(buffer);
    }

    private void Keep(ReadOnlySpan<byte> data)
    {
        if (_output is null || _output.Length - _outputLength < data.Length)
        {
            byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(_outputLength + data.Length, 1024));
            if (_output is not null)
            {
                _output.AsSpan(0, _outputLength).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(_output);
            }

            _output = larger;
        }

        data.CopyTo(_output.AsSpan(_outputLength));
        _outputLength += data.Length;
    }

    /// <summary>
    /// The handshake is over and SslStream goes on over this stream (no record layer took over): its writes pass
    /// straight through from now on, as its reads and writes may run on two threads. What is kept still has to be
    /// sent first (<see cref="FlushOutputAsync"/>), before anything else is written.
    /// </summary>
    public void StopHolding() => _holding = false;

    /// <summary>Sends what is kept (the handshake ended without a record layer to take it over, or failed after an alert).</summary>
    public async ValueTask FlushOutputAsync()
    {
        if (_output is not { } output)
        {
            return;
        }

        int length = _outputLength;
        _output = null;
        _outputLength = 0;
        try
        {
            if (length > 0)
            {
                await Inner.WriteAsync(output.AsMemory(0, length)).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(output);
        }
    }

    /// <summary>
    /// What SslStream wrote after its last read (the caller sends it ahead of anything else, then returns
    /// <paramref name="buffer"/> to the shared pool); null when nothing is kept.
    /// </summary>
    public void TakeOutput(out byte[]? buffer, out int length)
    {
        buffer = _outputLength > 0 ? _output : null;
        length = buffer is null ? 0 : _outputLength;
        if (buffer is null && _output is not null)
        {
            ArrayPool<byte>.Shared.Return(_output);
        }

        _output = null;
        _outputLength = 0;
    }

    public override int Read(Span<byte> buffer)
    {
        byte[] rented = ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            int n = ReadAsync(rented.AsMemory(0, buffer.Length)).AsTask().GetAwaiter().GetResult();
            rented.AsSpan(0, n).CopyTo(buffer);
            return n;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private async ValueTask<int> ReadInnerAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int n = await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        int take = Bound(buffer.Span[..n]);
        if (take < n)
        {
            Hold(buffer.Span[take..n]);
        }

        return take;
    }

    /// <summary>
    /// The bytes read past the handshake, from a record boundary (the caller returns <paramref name="buffer"/> to the
    /// shared pool); empty when there are none. Only once SslStream is done with this stream.
    /// </summary>
    public void TakeRemainder(out byte[]? buffer, out int start, out int length)
    {
        buffer = _held;
        start = _heldStart;
        length = _heldEnd - _heldStart;
        _held = null;
        _heldStart = _heldEnd = 0;
        if (length == 0 && buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = null;
        }
    }

    /// <summary>How many of these bytes, from the front, reach at most to the end of the record in progress.</summary>
    private int Bound(ReadOnlySpan<byte> data)
    {
        if (_untracked || data.IsEmpty)
        {
            return data.Length;
        }

        if (_headerSeen == 0 && (data[0] & 0x80) != 0)
        {
            // An SSLv2-format ClientHello (a two-byte header with the top bit set), which OpenSSL still takes for
            // TLS 1.2: its framing is not followed, so the records stay with SslStream for this connection.
            _untracked = true;
            return data.Length;
        }

        int i = 0;
        while (i < data.Length)
        {
            if (_headerSeen < HeaderLength)
            {
                byte b = data[i++];
                if (_headerSeen == 3)
                {
                    _recordLength = b << 8;
                }
                else if (_headerSeen == 4)
                {
                    _recordLength |= b;
                    _bodyLeft = _recordLength;
                }

                _headerSeen++;
                if (_headerSeen == HeaderLength && _bodyLeft == 0)
                {
                    _headerSeen = 0; // an empty record ends with its header
                    return i;
                }

                continue;
            }

            int k = Math.Min(_bodyLeft, data.Length - i);
            i += k;
            _bodyLeft -= k;
            if (_bodyLeft == 0)
            {
                _headerSeen = 0;
                return i;
            }
        }

        return i;
    }

    private void Hold(ReadOnlySpan<byte> rest)
    {
        // Only called with nothing held (held bytes are handed out before the socket is read again).
        _held = ArrayPool<byte>.Shared.Rent(Math.Max(rest.Length, 4096));
        rest.CopyTo(_held);
        _heldStart = 0;
        _heldEnd = rest.Length;
    }

    private void ReleaseHeld()
    {
        if (_held is { } held)
        {
            _held = null;
            _heldStart = _heldEnd = 0;
            ArrayPool<byte>.Shared.Return(held);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            ReleaseBuffers();
        }

        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync()
    {
        ReleaseBuffers();
        return base.DisposeAsync();
    }

    private void ReleaseBuffers()
    {
        ReleaseHeld();
        TakeOutput(out byte[]? output, out _); // unsent at a dispose: the connection is going anyway
        if (output is not null)
        {
            ArrayPool<byte>.Shared.Return(output);
        }
    }
}

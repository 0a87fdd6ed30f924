using System.Buffers;

namespace Appliance.Tls;

/// <summary>
/// Sits between SslStream and the socket and watches the server's first flight, so the connection can tell whether
/// its handshake resumed a session (<see cref="ServerFlightReader"/>). Everything passes through untouched; after
/// the first flight or two it is a plain forwarder.
/// </summary>
public sealed class HandshakeObserverStream(Stream inner) : Stream
{
    private const int MaxObserved = 32 * 1024;
    private byte[]? _sent;
    private int _sentLength;
    private ServerFlightReader.Result _result;

    /// <summary>True or false once the server's flight decided it; null while undecided or if it could not tell.</summary>
    public bool? Resumed => _result switch
    {
        ServerFlightReader.Result.Resumed => true,
        ServerFlightReader.Result.Full => false,
        _ => null,
    };

    public override bool CanRead => inner.CanRead;
    public override bool CanWrite => inner.CanWrite;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override int Read(Span<byte> buffer) => inner.Read(buffer);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Observe(buffer.Span);
        return inner.WriteAsync(buffer, cancellationToken);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Observe(buffer.AsSpan(offset, count));
        return inner.WriteAsync(buffer, offset, count, cancellationToken);
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        Observe(buffer.AsSpan(offset, count));
        inner.Write(buffer, offset, count);
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Observe(buffer);
        inner.Write(buffer);
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            ReturnBuffer();
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        ReturnBuffer();
        await inner.DisposeAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    private void Observe(ReadOnlySpan<byte> data)
    {
        if (_result != ServerFlightReader.Result.NeedMore || data.IsEmpty)
        {
            return;
        }

        if (_sentLength == 0)
        {
            // The usual case: the whole first flight in one write decides it, with nothing copied.
            _result = ServerFlightReader.Read(data);
            if (_result != ServerFlightReader.Result.NeedMore)
            {
                return;
            }
        }

        if (_sentLength + data.Length > MaxObserved)
        {
            _result = ServerFlightReader.Result.Unknown;
            ReturnBuffer();
            return;
        }

        _sent ??= ArrayPool<byte>.Shared.Rent(MaxObserved);
        data.CopyTo(_sent.AsSpan(_sentLength));
        _sentLength += data.Length;
        _result = ServerFlightReader.Read(_sent.AsSpan(0, _sentLength));
        if (_result != ServerFlightReader.Result.NeedMore)
        {
            ReturnBuffer();
        }
    }

    private void ReturnBuffer()
    {
        if (_sent is { } sent)
        {
            _sent = null;
            ArrayPool<byte>.Shared.Return(sent);
        }
    }
}

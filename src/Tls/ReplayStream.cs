namespace Appliance.Tls;

/// <summary>
/// Gives back bytes already read from <paramref name="inner"/> before reading on: the ClientHello that was looked
/// into (<see cref="ClientHelloReader"/>) is handed to SslStream as if it had never been touched. Writes pass through.
/// </summary>
public sealed class ReplayStream(byte[] replayed, int length, Stream inner) : Stream
{
    private int _offset;

    public override bool CanRead => true;
    public override bool CanWrite => inner.CanWrite;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = TakeReplayed(buffer.Span);
        return n > 0 || buffer.IsEmpty && _offset < length ? ValueTask.FromResult(n) : inner.ReadAsync(buffer, cancellationToken);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = TakeReplayed(buffer);
        return n > 0 || buffer.IsEmpty && _offset < length ? n : inner.Read(buffer);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.WriteAsync(buffer, offset, count, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

    public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync() => inner.DisposeAsync();

    private int TakeReplayed(Span<byte> destination)
    {
        int n = Math.Min(destination.Length, length - _offset);
        if (n <= 0)
        {
            return 0;
        }

        replayed.AsSpan(_offset, n).CopyTo(destination);
        _offset += n;
        return n;
    }
}

namespace Appliance.Tls;

/// <summary>
/// Gives back bytes already read from <paramref name="inner"/> before reading on: the ClientHello that was looked
/// into (<see cref="ClientHelloReader"/>) is handed to SslStream as if it had never been touched. Writes pass through.
/// </summary>
public sealed class ReplayStream(byte[] replayed, int length, Stream inner) : DelegatingStream(inner)
{
    private int _offset;

    public override bool CanRead => true;

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = TakeReplayed(buffer.Span);
        return n > 0 || buffer.IsEmpty && _offset < length ? ValueTask.FromResult(n) : Inner.ReadAsync(buffer, cancellationToken);
    }

    public override int Read(Span<byte> buffer)
    {
        int n = TakeReplayed(buffer);
        return n > 0 || buffer.IsEmpty && _offset < length ? n : Inner.Read(buffer);
    }

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

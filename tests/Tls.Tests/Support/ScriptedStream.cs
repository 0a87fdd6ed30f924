namespace Appliance.Tls.Tests.Support;

/// <summary>A stream that serves <c>input</c> (then the end), and records, in order, what was written and when it was read.</summary>
internal sealed class ScriptedStream(byte[] input) : Stream
{
    private int _position;
    public readonly List<string> Events = [];
    public readonly List<byte> Written = [];
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = Math.Min(buffer.Length, input.Length - _position);
        input.AsSpan(_position, n).CopyTo(buffer.Span);
        _position += n;
        Events.Add("read " + n);
        return ValueTask.FromResult(n);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Events.Add("write " + buffer.Length);
        Written.AddRange(buffer.ToArray());
        return default;
    }

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

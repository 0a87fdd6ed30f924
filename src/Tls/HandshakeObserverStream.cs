using System.Buffers;

namespace Appliance.Tls;

/// <summary>
/// Sits between SslStream and the socket and watches the server's first flight, so the connection can tell whether
/// its handshake resumed a session (<see cref="ServerFlightReader"/>). Everything passes through untouched; after
/// the first flight or two it is a plain forwarder.
/// </summary>
public sealed class HandshakeObserverStream(Stream inner) : DelegatingStream(inner)
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

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Observe(buffer.Span);
        return Inner.WriteAsync(buffer, cancellationToken);
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Observe(buffer);
        Inner.Write(buffer);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            ReturnBuffer();
        }

        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync()
    {
        ReturnBuffer();
        return base.DisposeAsync();
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

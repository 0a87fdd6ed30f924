using System.Buffers;

namespace Appliance.Tls;

/// <summary>
/// Watches the server's first flight of a handshake, so the connection can tell whether it resumed a session
/// (<see cref="ServerFlightReader"/>). Fed every byte the server sends until it decides; the appliance's own socket
/// stream calls <see cref="Observe"/> on its sends during the handshake, and <see cref="HandshakeObserverStream"/>
/// does it for any other stream.
/// </summary>
public sealed class ServerFlightObserver : IDisposable
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

    public void Observe(ReadOnlySpan<byte> data)
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
            Dispose();
            return;
        }

        _sent ??= ArrayPool<byte>.Shared.Rent(MaxObserved);
        data.CopyTo(_sent.AsSpan(_sentLength));
        _sentLength += data.Length;
        _result = ServerFlightReader.Read(_sent.AsSpan(0, _sentLength));
        if (_result != ServerFlightReader.Result.NeedMore)
        {
            Dispose();
        }
    }

    /// <summary>Returns the buffer of a flight that came in pieces (observing ends with it).</summary>
    public void Dispose()
    {
        if (_sent is { } sent)
        {
            _sent = null;
            ArrayPool<byte>.Shared.Return(sent);
        }
    }
}

/// <summary>
/// Sits between SslStream and a stream that cannot observe its own sends and feeds a <see cref="ServerFlightObserver"/>.
/// Everything passes through untouched; after the first flight or two it is a plain forwarder.
/// </summary>
public sealed class HandshakeObserverStream(Stream inner) : DelegatingStream(inner)
{
    private readonly ServerFlightObserver _observer = new();

    /// <summary>What it watches with (disposed with the stream).</summary>
    public ServerFlightObserver Observer => _observer;

    /// <summary>True or false once the server's flight decided it; null while undecided or if it could not tell.</summary>
    public bool? Resumed => _observer.Resumed;

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        _observer.Observe(buffer.Span);
        return Inner.WriteAsync(buffer, cancellationToken);
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _observer.Observe(buffer);
        Inner.Write(buffer);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _observer.Dispose();
        }

        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync()
    {
        _observer.Dispose();
        return base.DisposeAsync();
    }
}

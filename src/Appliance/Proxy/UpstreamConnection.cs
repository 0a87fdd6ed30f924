using System.IO.Pipelines;
using System.Net.Sockets;

namespace Appliance.Proxy;

/// <summary>One keep-alive TCP connection to a destination, with its pipe pair; rented from and returned to a pool.</summary>
internal sealed class UpstreamConnection : IDisposable
{
    private static readonly StreamPipeReaderOptions s_readerOptions = new(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true);
    private static readonly StreamPipeWriterOptions s_writerOptions = new(minimumBufferSize: 4096, leaveOpen: true);

    private readonly Socket _socket;
    private readonly Stream _stream;

    public UpstreamConnection(Socket socket, Stream stream)
    {
        _socket = socket;
        _stream = stream;
        Input = PipeReader.Create(_stream, s_readerOptions);
        Output = PipeWriter.Create(_stream, s_writerOptions);
    }

    public PipeReader Input { get; }

    public PipeWriter Output { get; }

    /// <summary>Reused per request for the response-headers timeout (CancelAfter/TryReset allocate nothing once warm).</summary>
    public CancellationTokenSource Timeout { get; private set; } = new();

    public long LastUsed { get; set; } = Environment.TickCount64;

    public int Requests { get; set; }

    /// <summary>The upstream said "Connection: close" (or spoke HTTP/1.0 without keep-alive).</summary>
    public bool CloseRequested { get; set; }

    /// <summary>An HTTP/1.0 upstream asked to keep the connection (Connection: keep-alive).</summary>
    public bool KeepAlive10 { get; set; }

    /// <summary>An idle keep-alive connection that became readable was closed by the upstream (or sent junk).</summary>
    public bool LooksClosed
    {
        get
        {
            try
            {
                return _socket.Poll(0, SelectMode.SelectRead) || !_socket.Connected;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return true;
            }
        }
    }

    /// <summary>Ends our sending half (a tunnel whose client finished): TLS close_notify, then TCP FIN.</summary>
    public async ValueTask ShutdownSendAsync()
    {
        await Output.FlushAsync().ConfigureAwait(false);
        if (_stream is System.Net.Security.SslStream tls)
        {
            await tls.ShutdownAsync().ConfigureAwait(false);
        }

        _socket.Shutdown(SocketShutdown.Send);
    }

    public void ResetTimeout()
    {
        if (!Timeout.TryReset())
        {
            Timeout.Dispose();
            Timeout = new CancellationTokenSource();
        }
    }

    public void Dispose()
    {
        Input.Complete();
        Output.Complete();
        _stream.Dispose();
        Timeout.Dispose();
    }
}

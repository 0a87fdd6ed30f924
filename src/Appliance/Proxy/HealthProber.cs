using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Appliance.Protocol.Hpack;
using Appliance.Protocol.Http2;
using Microsoft.Extensions.Logging;

namespace Appliance.Proxy;

/// <summary>
/// Active health checks of one cluster: every interval, a GET of the configured path on a fresh connection to
/// each destination, over the cluster's TLS and protocol (HTTP/1.1 with Connection: close, or one HTTP/2 stream),
/// healthy when the status is in range before the timeout.
/// </summary>
internal sealed class HealthProber : IDisposable
{
    private readonly ClusterModel _cluster;
    private readonly ActiveHealthOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();

    public HealthProber(ClusterModel cluster, ActiveHealthOptions options, ILogger logger)
    {
        _cluster = cluster;
        _options = options;
        _logger = logger;
        _ = RunAsync();
    }

    private async Task RunAsync()
    {
        using var timer = new PeriodicTimer(_options.Interval);
        try
        {
            do
            {
                await Task.WhenAll(_cluster.Destinations.Select(ProbeAsync)).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ProbeAsync(DestinationModel destination)
    {
        bool ok = false;
        string reason = "";
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(_options.Timeout);
        try
        {
            // The way real traffic goes: the cluster's TLS (SNI, verification, client certificate) and protocol.
            bool h2 = _cluster.Protocol == UpstreamProtocol.Http2;
            IPAddress? address = IPAddress.TryParse(destination.Host.Trim('[', ']'), out IPAddress? ip) ? ip : null;
            (Socket socket, Stream stream, SslApplicationProtocol alpn) = await UpstreamConnector.ConnectAsync(destination.Host, destination.Port,
                address, _cluster.Tls, h2 ? SslApplicationProtocol.Http2 : SslApplicationProtocol.Http11, _options.Timeout, timeout.Token).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                using (socket)
                {
                    if (h2 && _cluster.Tls is not null && alpn != SslApplicationProtocol.Http2)
                    {
                        reason = "h2 not chosen by ALPN";
                    }
                    else
                    {
                        int status = h2
                            ? await ProbeHttp2Async(stream, destination, timeout.Token).ConfigureAwait(false)
                            : await ProbeHttp1Async(stream, destination, timeout.Token).ConfigureAwait(false);
                        ok = status >= _options.MinStatus && status <= _options.MaxStatus;
                        reason = ok ? "" : status == 0 ? "no valid response" : $"status {status}";
                    }
                }
            }
        }
        catch (OperationCanceledException) when (!_stop.IsCancellationRequested)
        {
            reason = "timeout";
        }
        catch (OperationCanceledException)
        {
            return;
        }
        catch (TimeoutException)
        {
            reason = "timeout";
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            reason = e.Message;
        }

        if (destination.Health.ReportProbe(ok, _options.HealthyThreshold, _options.UnhealthyThreshold))
        {
            _logger.LogWarning("cluster {Cluster}: destination {Destination} is now {State}{Reason}", _cluster.Id, destination.Address,
                ok ? "healthy" : "unhealthy", ok ? "" : $" ({reason})");
        }
    }

    /// <summary>GET with Connection: close; the status from the status line, 0 when there is none.</summary>
    private async Task<int> ProbeHttp1Async(Stream stream, DestinationModel destination, CancellationToken cancellationToken)
    {
        byte[] request = Encoding.ASCII.GetBytes(
            $"GET {_options.Path} HTTP/1.1\r\nHost: {destination.Host}\r\nUser-Agent: appliance-health\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(request, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        byte[] buffer = new byte[64];
        int n = 0;
        while (n < 12)
        {
            int read = await stream.ReadAsync(buffer.AsMemory(n), cancellationToken).ConfigureAwait(false);
            if (read == 0) break;
            n += read;
        }

        string line = Encoding.ASCII.GetString(buffer, 0, n);
        return line.StartsWith("HTTP/1.", StringComparison.Ordinal) && n >= 12 && int.TryParse(line.AsSpan(9, 3), out int status) ? status : 0;
    }

    /// <summary>
    /// One GET stream on a fresh HTTP/2 connection (prior knowledge, or h2 by ALPN): the :status of its response
    /// head, 0 when the connection ends first.
    /// </summary>
    private async Task<int> ProbeHttp2Async(Stream stream, DestinationModel destination, CancellationToken cancellationToken)
    {
        var output = new ArrayBufferWriter<byte>(512);
        output.Write(Http2Preface.ClientPreface);
        Http2FrameWriter.WriteSettings(output, [new(Http2SettingId.EnablePush, 0)]);
        var encoder = new HpackEncoder();
        byte[] block = new byte[1024 + _options.Path.Length + destination.Host.Length];
        int written = 0;
        encoder.BeginBlock(block, ref written);
        encoder.Encode(":method"u8, "GET"u8, block, ref written);
        encoder.Encode(":scheme"u8, _cluster.Tls is null ? "http"u8 : "https"u8, block, ref written);
        encoder.Encode(":authority"u8, Encoding.ASCII.GetBytes(destination.Host), block, ref written);
        encoder.Encode(":path"u8, Encoding.ASCII.GetBytes(_options.Path), block, ref written);
        encoder.Encode("user-agent"u8, "appliance-health"u8, block, ref written);
        Http2FrameWriter.WriteHeaders(output, 1, block.AsSpan(0, written), endStream: true, Http2Settings.DefaultMaxFrameSize);
        await stream.WriteAsync(output.WrittenMemory, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);

        using var decoder = new HpackDecoder(HpackDecoder.DefaultMaxDynamicTableSize, 64 * 1024);
        var handler = new StatusHandler();
        var input = new ArrayBufferWriter<byte>(16384);
        while (true)
        {
            int read = await stream.ReadAsync(input.GetMemory(16384), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return 0;
            }

            input.Advance(read);
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(input.WrittenMemory));
            while (Http2FrameReader.TryReadFrame(ref reader, Http2FrameHeader.MaxLength, out Http2FrameHeader header, out ReadOnlySequence<byte> payload, out _))
            {
                if (header.StreamId != 1 || header.Type is not (Http2FrameType.Headers or Http2FrameType.Continuation))
                {
                    if (header.Type == Http2FrameType.GoAway || header.Type == Http2FrameType.RstStream)
                    {
                        return 0;
                    }

                    continue;
                }

                ReadOnlySequence<byte> fragment = payload;
                if (header.Type == Http2FrameType.Headers)
                {
                    if (!Http2FrameReader.TryReadHeaders(header, payload, out Http2HeadersFrame frame, out _))
                    {
                        return 0;
                    }

                    fragment = frame.Fragment;
                }

                bool end = header.HasFlag(Http2FrameFlags.EndHeaders);
                if (decoder.Decode(fragment.ToArray(), end, ref handler) != HpackStatus.Ok)
                {
                    return 0;
                }

                if (end)
                {
                    if (handler.Status is not (>= 100 and < 200))
                    {
                        return handler.Status; // 0 when the head had no :status
                    }

                    handler.Status = 0; // an interim response: the final one follows
                }
            }

            // Keep only what was not a whole frame.
            byte[] rest = reader.UnreadSequence.ToArray();
            input.Clear();
            input.Write(rest);
        }
    }

    private struct StatusHandler : IHpackHeaderHandler
    {
        public int Status;

        public void OnIndexedHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, long entry) => OnHeader(name, value);

        public void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
            if (name.SequenceEqual(":status"u8) && int.TryParse(value, out int status))
            {
                Status = status;
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }
}

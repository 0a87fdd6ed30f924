using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Appliance.Proxy;

/// <summary>
/// Active health checks of one cluster: every interval, a GET of the configured path on a fresh connection to
/// each destination (Connection: close), healthy when the status is in range before the timeout.
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
            IPAddress[] addresses = IPAddress.TryParse(destination.Host.Trim('[', ']'), out IPAddress? ip)
                ? [ip]
                : await Dns.GetHostAddressesAsync(destination.Host, timeout.Token).ConfigureAwait(false);
            using var socket = new Socket(addresses[0].AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(new IPEndPoint(addresses[0], destination.Port), timeout.Token).ConfigureAwait(false);
            byte[] request = Encoding.ASCII.GetBytes(
                $"GET {_options.Path} HTTP/1.1\r\nHost: {destination.Host}\r\nUser-Agent: appliance-health\r\nConnection: close\r\n\r\n");
            await socket.SendAsync(request, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            byte[] buffer = new byte[64];
            int n = 0;
            while (n < 12)
            {
                int read = await socket.ReceiveAsync(buffer.AsMemory(n), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                if (read == 0) break;
                n += read;
            }

            string line = Encoding.ASCII.GetString(buffer, 0, n);
            ok = line.StartsWith("HTTP/1.", StringComparison.Ordinal) && n >= 12 && int.TryParse(line.AsSpan(9, 3), out int status)
                && status >= _options.MinStatus && status <= _options.MaxStatus;
            reason = ok ? "" : $"unexpected answer '{line.Split('\r')[0]}'";
        }
        catch (OperationCanceledException) when (!_stop.IsCancellationRequested)
        {
            reason = "timeout";
        }
        catch (OperationCanceledException)
        {
            return;
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

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }
}

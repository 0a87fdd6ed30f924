using Appliance.Config;
using Appliance.Tls;
using Microsoft.Extensions.Logging;

namespace Appliance.Hosting;

/// <summary>
/// Keeps the TLS material in step with its files and warns before certificates expire. Every TLS file the running
/// config read (<see cref="ConfigSnapshot.TlsFiles"/>: certificates, keys, chains, OCSP responses, client CA bundles of
/// listeners, tenants and routes, CRLs, upstream CA bundles and client certificates) is watched (inotify through
/// FileSystemWatcher on their folders, which also sees certbot-style symlink swaps in live/) and checked again every
/// <see cref="CheckInterval"/> for anything the events missed; a change triggers a reload, which validates the new
/// files and keeps the old ones serving when they are bad. The same periodic pass logs a warning when a certificate
/// crosses 30, 14, 7 and 1 days before expiry.
/// </summary>
internal sealed class CertificateWatcher : IDisposable
{
    public static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_settle = TimeSpan.FromMilliseconds(500);
    private static readonly int[] s_warnDays = [30, 14, 7, 1];

    private readonly Func<string, Task> _reload;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _lock = new();
    private readonly Dictionary<string, int> _warned = new(StringComparer.Ordinal); // thumbprint → lowest threshold warned
    private List<FileSystemWatcher> _watchers = [];
    private Dictionary<string, string> _fingerprints = new(StringComparer.Ordinal);
    private IReadOnlyList<LoadedCertificate> _certificates = [];
    private IReadOnlyList<string>? _expiryCommand;
    private int _eventPending;

    public CertificateWatcher(Func<string, Task> reload, ILogger logger)
    {
        _reload = reload;
        _logger = logger;
        _ = RunAsync();
    }

    /// <summary>Watches the files of <paramref name="snapshot"/>'s certificates from now on.</summary>
    public void Watch(ConfigSnapshot snapshot)
    {
        _expiryCommand = snapshot.CertificateExpiryCommand;
        // The fingerprints as the compiler read the files: a change made since then is caught by the next check.
        var fingerprints = new Dictionary<string, string>(snapshot.TlsFiles, StringComparer.Ordinal);
        var watchers = new List<FileSystemWatcher>();
        foreach (string directory in fingerprints.Keys.Select(f => Path.GetDirectoryName(f)!).Distinct().Where(Directory.Exists))
        {
            var w = new FileSystemWatcher(directory)
            {
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.CreationTime | NotifyFilters.Size,
                IncludeSubdirectories = false,
            };
            w.Changed += OnEvent;
            w.Created += OnEvent;
            w.Renamed += OnEvent;
            w.Deleted += OnEvent;
            w.EnableRaisingEvents = true;
            watchers.Add(w);
        }

        List<FileSystemWatcher> old;
        lock (_lock)
        {
            old = _watchers;
            _watchers = watchers;
            _fingerprints = fingerprints;
            _certificates = snapshot.Certificates;
        }

        foreach (FileSystemWatcher w in old)
        {
            w.Dispose();
        }
    }

    private void OnEvent(object sender, FileSystemEventArgs e)
    {
        // A burst of events (certificate, then key, then chain) becomes one check once the writes settle.
        if (Interlocked.Exchange(ref _eventPending, 1) == 0)
        {
            _ = Task.Delay(s_settle, _stop.Token).ContinueWith(_ =>
            {
                Volatile.Write(ref _eventPending, 0);
                return CheckFilesAsync("file event");
            }, TaskScheduler.Default).Unwrap();
        }
    }

    private async Task RunAsync()
    {
        using var timer = new PeriodicTimer(CheckInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                await CheckFilesAsync("periodic check").ConfigureAwait(false);
                WarnBeforeExpiry();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task CheckFilesAsync(string why)
    {
        Dictionary<string, string> known;
        lock (_lock)
        {
            known = _fingerprints;
        }

        List<string> changed = [.. known.Where(kv => FileFingerprint.Of(kv.Key) != kv.Value).Select(kv => kv.Key)];
        if (changed.Count == 0 || _stop.IsCancellationRequested)
        {
            return;
        }

        try
        {
            await _reload($"{why}: {string.Join(", ", changed)} changed").ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            _logger.LogWarning("certificates: reload after a file change failed: {Error}", e.Message);
        }
    }

    /// <summary>One warning per certificate and threshold (30, 14, 7, 1 days), so the log says it without repeating it.</summary>
    internal void WarnBeforeExpiry()
    {
        IReadOnlyList<LoadedCertificate> certificates;
        lock (_lock)
        {
            certificates = _certificates;
        }

        DateTimeOffset now = DateTimeOffset.UtcNow;
        foreach (LoadedCertificate c in certificates)
        {
            double days = (c.NotAfter - now).TotalDays;
            int threshold = s_warnDays.Where(d => days <= d).DefaultIfEmpty(int.MaxValue).Min();
            if (threshold == int.MaxValue)
            {
                continue;
            }

            lock (_lock)
            {
                if (_warned.TryGetValue(c.Thumbprint, out int warned) && warned <= threshold)
                {
                    continue;
                }

                _warned[c.Thumbprint] = threshold;
            }

            _logger.LogWarning("certificate {Name} ({Hosts}) expires in {Days:0.#} days, on {NotAfter:yyyy-MM-dd HH:mm} UTC",
                c.Name, string.Join(", ", c.Hosts), Math.Max(0, days), c.NotAfter.UtcDateTime);
            if (_expiryCommand is { } command)
            {
                _ = RunExpiryCommandAsync(command, c, days);
            }
        }
    }

    /// <summary>The operator's program for expiry warnings: 30 s to finish, its exit status logged, never fatal.</summary>
    private async Task RunExpiryCommandAsync(IReadOnlyList<string> command, LoadedCertificate c, double days)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(command[0])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in command.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["APPLIANCE_CERT_NAME"] = c.Name;
        psi.Environment["APPLIANCE_CERT_HOSTS"] = string.Join(",", c.Hosts);
        psi.Environment["APPLIANCE_CERT_NOT_AFTER"] = c.NotAfter.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        psi.Environment["APPLIANCE_CERT_DAYS_LEFT"] = Math.Max(0, Math.Floor(days)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            using System.Diagnostics.Process process = System.Diagnostics.Process.Start(psi)!;
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            _ = process.StandardOutput.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                _logger.LogWarning("certificate {Name}: expiry command {Command} did not finish in 30 s; killed", c.Name, command[0]);
                return;
            }

            if (process.ExitCode != 0)
            {
                _logger.LogWarning("certificate {Name}: expiry command {Command} exited {Code}: {Error}", c.Name, command[0], process.ExitCode,
                    (await stderr.ConfigureAwait(false)).Trim());
            }
            else
            {
                _logger.LogInformation("certificate {Name}: expiry command {Command} ran", c.Name, command[0]);
            }
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            _logger.LogWarning("certificate {Name}: expiry command {Command} cannot run: {Error}", c.Name, command[0], e.Message);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        lock (_lock)
        {
            foreach (FileSystemWatcher w in _watchers)
            {
                w.Dispose();
            }

            _watchers = [];
        }
    }
}

using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Appliance.Admin;
using Appliance.Config;
using Appliance.Tls;
using Appliance.Tls.Acme;
using Microsoft.Extensions.Logging;

namespace Appliance.Hosting;

/// <summary>
/// Keeps the config's ACME certificates issued and fresh. Each one gets a loop: it issues at once when there is no
/// usable issued pair for the configured names (first start, names changed, pair damaged or expired), otherwise when
/// two thirds of the certificate's lifetime have passed (Let's Encrypt's advice: 60 of 90 days). A failure is retried
/// after an exponential backoff with jitter, from 1 minute up to 6 hours. A success writes the pair atomically
/// (key first, 0600) to &lt;stateDirectory&gt;/acme/NAME.crt|.key and reloads the certificates, so new handshakes get the
/// new one without a restart. One issuance runs at a time. Each step and failure is one log line; the state is read
/// by the admin API.
/// </summary>
internal sealed class CertificateRenewer : IDisposable
{
    public static readonly TimeSpan MinBackoff = TimeSpan.FromMinutes(1);
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromHours(6);

    private readonly PendingChallenges _challenges;
    private readonly Func<string, Task<ApplyResult>> _reload;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _issuing = new(1, 1);
    private readonly Dictionary<string, Worker> _workers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AcmeAccountStore> _accounts = new(StringComparer.Ordinal);
    private bool _disposed;

    public CertificateRenewer(PendingChallenges challenges, Func<string, Task<ApplyResult>> reload, ILogger logger)
    {
        _challenges = challenges;
        _reload = reload;
        _logger = logger;
    }

    /// <summary>Follows a new config: new or changed ACME certificates get a fresh loop, removed ones stop.</summary>
    public void Update(ConfigSnapshot snapshot)
    {
        lock (_workers)
        {
            if (_disposed)
            {
                return;
            }

            foreach (AcmeCertificateModel model in snapshot.Acme)
            {
                if (_workers.TryGetValue(model.Name, out Worker? existing))
                {
                    if (existing.Model.SameOrder(model))
                    {
                        continue;
                    }

                    existing.Stop.Cancel();
                }

                var worker = new Worker(model);
                _workers[model.Name] = worker;
                _ = Task.Run(() => RunAsync(worker));
            }

            foreach (string name in _workers.Keys.Where(n => !snapshot.Acme.Any(a => a.Name == n)).ToList())
            {
                _workers[name].Stop.Cancel();
                _workers.Remove(name);
            }
        }
    }

    public AcmeStatus? Status(string name)
    {
        Worker? w;
        lock (_workers)
        {
            w = _workers.GetValueOrDefault(name);
        }

        if (w is null)
        {
            return null;
        }

        lock (w)
        {
            return new AcmeStatus(w.State, w.LastError, w.NextRenewal, w.LastIssued, w.Model.ChallengeName, w.Model.Directory.AbsoluteUri);
        }
    }

    /// <summary>Issues now (after any issuance under way), whatever the schedule says; null for an unknown name.</summary>
    public Task<RenewalOutcome>? RenewNowAsync(string name)
    {
        Worker? w;
        lock (_workers)
        {
            w = _workers.GetValueOrDefault(name);
        }

        return w is null ? null : IssueAsync(w, "renewal asked for through the admin API", w.Stop.Token);
    }

    private async Task RunAsync(Worker w)
    {
        CancellationToken stop = w.Stop.Token;
        try
        {
            while (true)
            {
                (DateTimeOffset due, string why) = DueTime(w);
                TimeSpan wait = due - DateTimeOffset.UtcNow;
                if (wait > TimeSpan.Zero)
                {
                    Task poked;
                    lock (w)
                    {
                        poked = w.Poked.Task;
                    }

                    // Task.Delay takes at most ~49 days; the due time is computed again on wake-up anyway.
                    await Task.WhenAny(Task.Delay(wait < TimeSpan.FromDays(1) ? wait : TimeSpan.FromDays(1), stop), poked).ConfigureAwait(false);
                    stop.ThrowIfCancellationRequested();
                    continue;
                }

                await IssueAsync(w, why, stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // the config dropped or changed this certificate, or the appliance stops
        }
        catch (Exception e)
        {
            _logger.LogError(e, "acme {Name}: renewal loop ended unexpectedly", w.Model.Name);
        }
    }

    /// <summary>When to issue next and why: after a failure the backoff decides; otherwise the issued pair does.</summary>
    private static (DateTimeOffset Due, string Why) DueTime(Worker w)
    {
        AcmeCertificateModel m = w.Model;
        lock (w)
        {
            if (w.RetryAt is { } retry)
            {
                w.NextRenewal = retry;
                return (retry, $"attempt {w.Failures + 1} after {w.Failures} failure(s)");
            }
        }

        (X509Certificate2? current, string? problem) = ReadIssued(m);
        using (current)
        {
            DateTimeOffset now = DateTimeOffset.UtcNow;
            lock (w)
            {
                if (current is null)
                {
                    w.State = w.State == "failed" ? "failed" : "pending";
                    w.NextRenewal = now;
                    return (now, problem!);
                }

                var notBefore = new DateTimeOffset(current.NotBefore.ToUniversalTime(), TimeSpan.Zero);
                var notAfter = new DateTimeOffset(current.NotAfter.ToUniversalTime(), TimeSpan.Zero);
                DateTimeOffset due = notBefore + (notAfter - notBefore) * 2 / 3;
                w.State = "valid";
                w.LastIssued ??= notBefore;
                w.NextRenewal = due;
                return (due, $"two thirds of the lifetime of serial {current.SerialNumber} (valid until {notAfter:yyyy-MM-dd HH:mm}Z) have passed");
            }
        }
    }

    /// <summary>The issued pair, when it loads, matches, is in date and covers the configured names.</summary>
    private static (X509Certificate2? Certificate, string? Problem) ReadIssued(AcmeCertificateModel m)
    {
        if (!File.Exists(m.CertificatePath) || !File.Exists(m.KeyPath))
        {
            return (null, "no certificate issued yet");
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPemFile(m.CertificatePath, m.KeyPath);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            return (null, $"the issued pair cannot be loaded ({e.Message})");
        }

        DateTime now = DateTime.UtcNow;
        string[] names = [.. certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().SelectMany(s => s.EnumerateDnsNames())];
        string? problem = certificate.NotAfter.ToUniversalTime() <= now ? "the issued certificate has expired"
            : m.Hosts.FirstOrDefault(h => !names.Contains(h, StringComparer.OrdinalIgnoreCase)) is { } missing ? $"the issued certificate does not cover {missing}"
            : null;
        if (problem is null)
        {
            return (certificate, null);
        }

        certificate.Dispose();
        return (null, problem);
    }

    private async Task<RenewalOutcome> IssueAsync(Worker w, string why, CancellationToken stop)
    {
        await _issuing.WaitAsync(stop).ConfigureAwait(false);
        AcmeCertificateModel m = w.Model;
        try
        {
            _logger.LogInformation("acme {Name}: requesting a certificate for {Hosts} from {Directory} by {Challenge} ({Why})",
                m.Name, string.Join(", ", m.Hosts), m.Directory, m.ChallengeName, why);
            var issuer = new AcmeIssuer(Accounts(m.AcmeDirectory), _challenges);
            IssuedCertificate issued = await issuer.IssueAsync(m.ToRequest(), step => _logger.LogInformation("acme {Name}: {Step}", m.Name, step), stop)
                .ConfigureAwait(false);

            // Key first: a crash in between leaves a pair that does not match, which is issued again at start,
            // rather than a certificate nobody holds the key for.
            AcmeAccountStore.CreatePrivateDirectory(m.AcmeDirectory);
            AtomicFile.Write(m.KeyPath, issued.KeyPem, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            AtomicFile.Write(m.CertificatePath, issued.CertificatePem,
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            ApplyResult reloaded = await _reload($"acme: {m.Name} issued").ConfigureAwait(false);
            if (!reloaded.Ok)
            {
                throw new CertificateLoadException($"the issued certificate was written but not loaded: {string.Join("; ", reloaded.Errors)}");
            }

            DateTimeOffset due = issued.NotBefore + (issued.NotAfter - issued.NotBefore) * 2 / 3;
            lock (w)
            {
                w.State = "valid";
                w.LastError = null;
                w.Failures = 0;
                w.RetryAt = null;
                w.LastIssued = DateTimeOffset.UtcNow;
                w.NextRenewal = due;
            }

            string detail = $"certificate issued by {issued.Issuer}, serial {issued.SerialNumber}, valid until {issued.NotAfter:yyyy-MM-dd HH:mm}Z; renewal due {due:yyyy-MM-dd HH:mm}Z";
            _logger.LogInformation("acme {Name}: {Detail}", m.Name, detail);
            return new RenewalOutcome(true, detail, issued.SerialNumber, reloaded.Changes);
        }
        catch (Exception e) when (e is AcmeProblemException or AcmeProtocolException or CertificateLoadException or IOException
            or UnauthorizedAccessException or CryptographicException)
        {
            TimeSpan delay;
            lock (w)
            {
                w.Failures++;
                delay = Backoff(w.Failures);
                w.State = "failed";
                w.LastError = e.Message;
                w.RetryAt = DateTimeOffset.UtcNow + delay;
                w.NextRenewal = w.RetryAt;
            }

            _logger.LogWarning("acme {Name}: failed: {Error}; next attempt in {Delay}", m.Name, e.Message, Duration.Format(delay));
            return new RenewalOutcome(false, e.Message, null, []);
        }
        finally
        {
            _issuing.Release();
            TaskCompletionSource poked;
            lock (w)
            {
                poked = w.Poked;
                w.Poked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            poked.TrySetResult(); // the loop computes its due time again
        }
    }

    /// <summary>1 min, 2, 4, ... up to 6 h, each ±25% so that many appliances do not retry in step.</summary>
    internal static TimeSpan Backoff(int failures)
    {
        double minutes = MinBackoff.TotalMinutes * Math.Pow(2, Math.Min(failures - 1, 20));
        double jittered = minutes * (0.75 + Random.Shared.NextDouble() * 0.5);
        return TimeSpan.FromMinutes(Math.Clamp(jittered, MinBackoff.TotalMinutes, MaxBackoff.TotalMinutes));
    }

    private AcmeAccountStore Accounts(string directory)
    {
        lock (_accounts)
        {
            if (!_accounts.TryGetValue(directory, out AcmeAccountStore? store))
            {
                _accounts[directory] = store = new AcmeAccountStore(directory);
            }

            return store;
        }
    }

    public void Dispose()
    {
        lock (_workers)
        {
            _disposed = true;
            foreach (Worker w in _workers.Values)
            {
                w.Stop.Cancel();
            }

            _workers.Clear();
        }
    }

    private sealed class Worker(AcmeCertificateModel model)
    {
        public AcmeCertificateModel Model { get; } = model;
        public CancellationTokenSource Stop { get; } = new();
        public TaskCompletionSource Poked { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public string State { get; set; } = "pending";
        public string? LastError { get; set; }
        public DateTimeOffset? NextRenewal { get; set; }
        public DateTimeOffset? LastIssued { get; set; }
        public DateTimeOffset? RetryAt { get; set; }
        public int Failures { get; set; }
    }
}

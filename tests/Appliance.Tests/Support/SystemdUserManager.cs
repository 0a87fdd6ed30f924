using System.Diagnostics;

namespace Appliance.Tests.Support;

/// <summary>
/// A real systemd (the machine's /lib/systemd/systemd, as a --user manager) to run the appliance under, for the
/// service-integration tests: Type=notify, the watchdog, reload, stop and socket activation, as systemd does them.
/// The manager wants /run/systemd/system to exist, which it does not on these machines (PID 1 is not systemd), so it
/// runs in a private mount namespace with a tmpfs over /run/systemd; its control socket lives in a folder of ours,
/// reachable from outside the namespace by systemctl/systemd-run with XDG_RUNTIME_DIR pointed at it. Needs root
/// (unshare --mount), as CI has.
/// </summary>
public sealed class SystemdUserManager : IAsyncLifetime
{
    private Process? _manager;

    public string RuntimeDirectory { get; } = Path.Combine("/tmp", "sdu-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>
    /// The appliance to run: the AOT binary test.sh published (what ships), unless it is older than the test build
    /// (a stale publish from an earlier change), then the test build under dotnet.
    /// </summary>
    public static string[] ApplianceCommand =>
        ApplianceProcess.PublishedBinary is { } published ? [published] : ["/usr/bin/env", "dotnet", ApplianceProcess.AssemblyPath];

    public async Task InitializeAsync()
    {
        if (Environment.UserName != "root")
        {
            throw new InvalidOperationException("the systemd tests run a user manager in a private mount namespace, which needs root (CI runs as root)");
        }

        Directory.CreateDirectory(RuntimeDirectory);
        File.SetUnixFileMode(RuntimeDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var psi = new ProcessStartInfo("unshare")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in (string[])["--mount", "--propagation", "private", "sh", "-c",
            "mount -t tmpfs tmpfs /run/systemd 2>/dev/null || { mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd; }; " +
            "mkdir -p /run/systemd/system && exec /lib/systemd/systemd --user"])
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["XDG_RUNTIME_DIR"] = RuntimeDirectory;
        _manager = Process.Start(psi)!;
        _manager.BeginOutputReadLine();
        _manager.BeginErrorReadLine();
        string control = Path.Combine(RuntimeDirectory, "systemd", "private");
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var watcher = new FileSystemWatcher(RuntimeDirectory) { IncludeSubdirectories = true, EnableRaisingEvents = true };
        while (!File.Exists(control))
        {
            if (_manager.HasExited)
            {
                throw new InvalidOperationException($"systemd --user exited with {_manager.ExitCode}");
            }

            // The watcher wakes us when the socket appears; the timeout only bounds a missed event.
            await Task.Run(() => watcher.WaitForChanged(WatcherChangeTypes.Created, 200), deadline.Token);
        }
    }

    public async Task DisposeAsync()
    {
        if (_manager is { HasExited: false })
        {
            await Run("systemctl", "--user", "exit");
            if (!_manager.WaitForExit(10_000))
            {
                _manager.Kill(entireProcessTree: true);
            }
        }

        _manager?.Dispose();
        try
        {
            Directory.Delete(RuntimeDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Runs systemctl, systemd-run or journalctl against this manager.</summary>
    public async Task<Peer.Result> Run(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["XDG_RUNTIME_DIR"] = RuntimeDirectory;
        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync(), stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await p.WaitForExitAsync(cts.Token);
        return new Peer.Result(p.ExitCode, await stdout, await stderr);
    }

    /// <summary>One property of a unit (systemctl show -P).</summary>
    public async Task<string> Property(string unit, string name) =>
        (await Run("systemctl", "--user", "show", "-P", name, unit)).Stdout.Trim();

    /// <summary>Waits (by polling systemctl, bounded) until a unit property has the value.</summary>
    public async Task<string> WaitForProperty(string unit, string name, Func<string, bool> done, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        string value;
        while (!done(value = await Property(unit, name)))
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"{unit} {name} is still '{value}' after {timeout}");
            }

            await Task.Delay(100);
        }

        return value;
    }
}

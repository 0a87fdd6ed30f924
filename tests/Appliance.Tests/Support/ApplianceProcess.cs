using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Appliance.Tests.Support;

/// <summary>The appliance as a real child process (for signals and exit codes); ports are read from its log.</summary>
public sealed partial class ApplianceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly object _gate = new();
    private TaskCompletionSource _lineAdded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ApplianceProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static string AssemblyPath => Path.Combine(AppContext.BaseDirectory, "appliance.dll");

    /// <summary>
    /// Runs the built assembly under dotnet, or the native binary named by APPLIANCE_TEST_BINARY (to run the
    /// real-process tests against the AOT build: <c>APPLIANCE_TEST_BINARY=artifacts/publish/appliance</c>).
    /// </summary>
    public static ApplianceProcess Start(params string[] args) => StartUnder((string?)null, args);

    /// <summary>As <see cref="Start"/>, through <paramref name="launcher"/> (e.g. nohup), which execs the appliance.</summary>
    public static ApplianceProcess StartUnder(string? launcher, params string[] args)
    {
        string? binary = Environment.GetEnvironmentVariable("APPLIANCE_TEST_BINARY");
        string[] appliance = string.IsNullOrEmpty(binary) ? ["dotnet", AssemblyPath] : [Path.GetFullPath(binary)];
        return StartCommand(launcher is null ? appliance : [launcher, .. appliance], args);
    }

    /// <summary>Runs <paramref name="command"/> (the program and its first arguments) with <paramref name="args"/> after them.</summary>
    public static ApplianceProcess StartCommand(string[] command, params string[] args)
    {
        var psi = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in command[1..].Concat(args))
        {
            psi.ArgumentList.Add(a);
        }

        return new ApplianceProcess(Process.Start(psi)!);
    }

    /// <summary>
    /// The AOT binary test.sh publishes (what ships) when it is at least as new as the test build, else null (a stale
    /// publish from an earlier change).
    /// </summary>
    public static string? PublishedBinary
    {
        get
        {
            for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "Appliance.sln")))
                {
                    string published = Path.Combine(d.FullName, "artifacts", "publish", "appliance");
                    return File.Exists(published) && File.GetLastWriteTimeUtc(published) >= File.GetLastWriteTimeUtc(AssemblyPath) ? published : null;
                }
            }

            return null;
        }
    }

    public int Pid => _process.Id;

    public string Output
    {
        get
        {
            lock (_gate)
            {
                return string.Join('\n', _lines);
            }
        }
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        TaskCompletionSource tcs;
        lock (_gate)
        {
            _lines.Add(line);
            tcs = _lineAdded;
            _lineAdded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        tcs.TrySetResult();
    }

    /// <summary>Waits for a log line matching the pattern and returns its match.</summary>
    public async Task<Match> WaitForLineAsync(string pattern, TimeSpan? timeout = null)
    {
        var regex = new Regex(pattern);
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            Task next;
            lock (_gate)
            {
                foreach (string line in _lines)
                {
                    Match m = regex.Match(line);
                    if (m.Success)
                    {
                        return m;
                    }
                }

                next = _lineAdded.Task;
            }

            if (_process.HasExited && next.IsCompleted == false)
            {
                throw new InvalidOperationException($"appliance exited ({_process.ExitCode}) before logging /{pattern}/:\n{Output}");
            }

            try
            {
                await next.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no log line /{pattern}/ in time:\n{Output}");
            }
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public void Signal(string signal)
    {
        using Process kill = Process.Start("kill", ["-" + signal, _process.Id.ToString()])!;
        kill.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}

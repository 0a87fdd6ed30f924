using System.Diagnostics;
using System.Text;

namespace Appliance.Tests.Support;

/// <summary>Runs a real client program (curl, openssl, wrk) with a time box and captures its output.</summary>
public static class Peer
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string All => Stdout + Stderr;
    }

    public static async Task<Result> RunAsync(string file, IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }

        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in time");
        }

        return new Result(process.ExitCode, await stdout, await stderr);
    }

    public static Task<Result> CurlAsync(params string[] args) => RunAsync("curl", ["-sS", "--max-time", "20", .. args]);

    public static Task<Result> OpenSslAsync(string stdin, params string[] args) => RunAsync("openssl", args, stdin);

    /// <summary>An openssl command that must succeed (key and certificate making in fixtures).</summary>
    public static async Task OpenSslOkAsync(params string[] args)
    {
        Result r = await RunAsync("openssl", args);
        Xunit.Assert.True(r.ExitCode == 0, $"openssl {string.Join(' ', args)}\n{r.All}");
    }
}

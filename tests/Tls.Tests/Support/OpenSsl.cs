using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tls.Tests.Support;

/// <summary>Runs the real openssl CLI, time-boxed, and collects what it printed.</summary>
internal static class OpenSsl
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static async Task<Result> RunAsync(params string[] arguments)
    {
        var start = new ProcessStartInfo("openssl")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException("openssl did not start");
        // s_client reads stdin; an immediate EOF plus -ign_eof makes it wait for the server to close.
        process.StandardInput.Close();
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"openssl {string.Join(' ', arguments)} did not finish within {Timeout}");
        }

        return new Result(process.ExitCode, await output, await error);
    }

    public static async Task<Result> RunCheckedAsync(params string[] arguments)
    {
        Result result = await RunAsync(arguments);
        Assert.True(result.ExitCode == 0, $"openssl {string.Join(' ', arguments)} failed ({result.ExitCode}):\n{result.All}");
        return result;
    }

    /// <summary>openssl req -x509 with a fresh key; keyType is "ec" (P-256), "rsa" (2048) or an -newkey argument.</summary>
    public static async Task<(string Certificate, string Key)> CreateSelfSignedAsync(
        TempDirectory directory, string fileStem, string keyType, string commonName, params string[] dnsNames)
    {
        string certificate = directory.File(fileStem + ".crt");
        string key = directory.File(fileStem + ".key");
        var arguments = new List<string> { "req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=" + commonName, "-keyout", key, "-out", certificate };
        switch (keyType)
        {
            case "ec":
                arguments.AddRange(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
                break;
            case "rsa":
                arguments.AddRange(["-newkey", "rsa:2048"]);
                break;
            default:
                arguments.AddRange(["-newkey", keyType]);
                break;
        }

        if (dnsNames.Length > 0)
        {
            arguments.AddRange(["-addext", "subjectAltName=" + string.Join(',', dnsNames.Select(n => "DNS:" + n))]);
        }

        await RunCheckedAsync([.. arguments]);
        return (certificate, key);
    }

    /// <summary>The first PEM certificate in s_client output: the one the server sent.</summary>
    public static X509Certificate2 ServedCertificate(Result result)
    {
        const string Begin = "-----BEGIN CERTIFICATE-----";
        const string End = "-----END CERTIFICATE-----";
        int begin = result.Output.IndexOf(Begin, StringComparison.Ordinal);
        Assert.True(begin >= 0, "no certificate in s_client output:\n" + result.All);
        int end = result.Output.IndexOf(End, begin, StringComparison.Ordinal) + End.Length;
        return X509Certificate2.CreateFromPem(result.Output.AsSpan(begin, end - begin));
    }

    public sealed record Result(int ExitCode, string Output, string Error)
    {
        public string All => Output + "\n" + Error;
    }
}

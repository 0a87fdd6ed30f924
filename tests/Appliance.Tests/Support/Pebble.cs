using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Appliance.Tls;

namespace Appliance.Tests.Support;

/// <summary>
/// Debian's pebble (the ACME test server) with pebble-challtestsrv as its DNS server, so every name the tests use
/// resolves to 127.0.0.1 (A only: no AAAA answer, the appliance listens on IPv4 loopback). Pebble validates HTTP-01
/// on <c>httpPort</c> and TLS-ALPN-01 on <c>tlsPort</c>: the appliance's own listeners. Its API is HTTPS with a
/// certificate from a CA made here (the Debian package does not ship pebble's test certificates); that CA is the
/// appliance's <c>acme.caFile</c>. Validation without sleeps, no nonce rejection, no authorization reuse.
/// </summary>
public sealed class Pebble : IAsyncDisposable
{
    private readonly List<(Process Process, System.Text.StringBuilder Log)> _processes = [];

    private Pebble(string directory)
    {
        Folder = directory;
    }

    public string Folder { get; }

    public string DirectoryUrl { get; private set; } = "";

    /// <summary>The CA of pebble's API certificate (not of the certificates it issues).</summary>
    public string CaFile => Path.Combine(Folder, "pebble-api-ca.pem");

    public string Log => string.Join("\n---\n", _processes.Select(p =>
    {
        lock (p.Log)
        {
            return p.Log.ToString();
        }
    }));

    /// <summary>Where pebble validates HTTP-01: the appliance's plain listener must listen here.</summary>
    public int HttpPort { get; private set; }

    /// <summary>Where pebble validates TLS-ALPN-01: the appliance's TLS listener must listen here.</summary>
    public int TlsPort { get; private set; }

    public static async Task<Pebble> StartAsync(string folder)
    {
        Directory.CreateDirectory(folder);
        var pebble = new Pebble(folder);
        try
        {
            await pebble.RunAsync();
        }
        catch
        {
            await pebble.DisposeAsync();
            throw;
        }

        return pebble;
    }

    private async Task RunAsync()
    {
        using var ca = SelfSignedCertificate.Create([], TimeSpan.FromDays(2), certificateAuthority: true, commonName: "pebble API test CA");
        using var api = SelfSignedCertificate.Create(["localhost"], TimeSpan.FromDays(2), issuer: ca); // SAN localhost, 127.0.0.1, ::1
        string certificate = Path.Combine(Folder, "pebble-api.crt"), key = Path.Combine(Folder, "pebble-api.key");
        await File.WriteAllTextAsync(CaFile, ca.ExportCertificatePem() + "\n");
        await File.WriteAllTextAsync(certificate, api.ExportCertificatePem() + "\n");
        using (var apiKey = api.GetECDsaPrivateKey()!)
        {
            await File.WriteAllTextAsync(key, apiKey.ExportPkcs8PrivateKeyPem() + "\n");
        }

        // All six at once, so no two are the same; the appliance binds the first two.
        int[] ports = FreePorts(6);
        (HttpPort, TlsPort) = (ports[0], ports[1]);
        (int listenPort, int managementPort, int dnsManagementPort, int dnsPort) = (ports[2], ports[3], ports[4], ports[5]);
        Task dnsReady = Start("pebble-challtestsrv", "Starting challenge servers", [],
            "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dns01", $"127.0.0.1:{dnsPort}",
            "-http01", "", "-https01", "", "-tlsalpn01", "", "-management", $"127.0.0.1:{dnsManagementPort}");
        await dnsReady.WaitAsync(TimeSpan.FromSeconds(20));

        string config = Path.Combine(Folder, "pebble-config.json");
        await File.WriteAllTextAsync(config, $$"""
            { "pebble": {
                "listenAddress": "127.0.0.1:{{listenPort}}", "managementListenAddress": "127.0.0.1:{{managementPort}}",
                "certificate": "{{certificate}}", "privateKey": "{{key}}",
                "httpPort": {{HttpPort}}, "tlsPort": {{TlsPort}}, "ocspResponderURL": "", "externalAccountBindingRequired": false } }
            """);
        Task ready = Start("pebble", "ACME directory available at", [("PEBBLE_VA_NOSLEEP", "1"), ("PEBBLE_WFE_NONCEREJECT", "0"), ("PEBBLE_AUTHZREUSE", "0")],
            "-config", config, "-dnsserver", $"127.0.0.1:{dnsPort}");
        await ready.WaitAsync(TimeSpan.FromSeconds(30));
        DirectoryUrl = $"https://127.0.0.1:{listenPort}/dir";
    }

    /// <summary>Starts a program; the task completes when it logs a line containing <paramref name="readyText"/>.</summary>
    private Task Start(string file, string readyText, (string Name, string Value)[] environment, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach ((string name, string value) in environment)
        {
            psi.Environment[name] = value;
        }

        var log = new System.Text.StringBuilder();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        _processes.Add((process, log));
        void OnLine(string? line)
        {
            if (line is null)
            {
                ready.TrySetException(new InvalidOperationException($"{file} ended before it was ready:\n{Log}"));
                return;
            }

            lock (log)
            {
                log.AppendLine(line);
            }

            if (line.Contains(readyText, StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
        }

        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) OnLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return ready.Task;
    }

    /// <summary>
    /// Distinct free loopback ports: bound on port 0 together (so the kernel cannot hand out one twice), read back,
    /// released. The last is also free for UDP (pebble-challtestsrv serves DNS on TCP and UDP).
    /// </summary>
    private static int[] FreePorts(int count)
    {
        for (int attempt = 0; ; attempt++)
        {
            var sockets = new List<Socket>();
            try
            {
                for (int i = 0; i < count; i++)
                {
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    sockets.Add(s);
                    s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                }

                int[] ports = [.. sockets.Select(s => ((IPEndPoint)s.LocalEndPoint!).Port)];
                using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                udp.Bind(new IPEndPoint(IPAddress.Loopback, ports[^1]));
                return ports;
            }
            catch (SocketException) when (attempt < 20)
            {
            }
            finally
            {
                foreach (Socket s in sockets)
                {
                    s.Dispose();
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach ((Process process, _) in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            process.Dispose();
        }
    }
}

using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Appliance.Tests.Support;

namespace Appliance.Tests.Hosting;

/// <summary>
/// The appliance as a systemd service, under a real systemd (<see cref="SystemdUserManager"/>): READY=1 only once it
/// serves, STATUS= lines, reload on SIGHUP (ExecReload), drain on stop, the watchdog killing a hung process, and socket
/// activation keeping the port answering through a restart.
/// </summary>
public sealed class SystemdServiceTests : IAsyncLifetime
{
    private readonly SystemdUserManager _systemd = new();
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-systemd-" + Guid.NewGuid().ToString("N"));

    private string Config => Path.Combine(_dir, "appliance.json");
    private string AdminSocket => Path.Combine(_dir, "admin.sock");
    private string Log => Path.Combine(_dir, "out.log");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        await _systemd.InitializeAsync();
    }

    public async Task DisposeAsync() => await _systemd.DisposeAsync();

    private async Task WriteConfig(string address, params string[] extraRoutes)
    {
        string routes = string.Concat(extraRoutes.Select(r => $$""", { "id": "{{r}}", "match": { "path": "/{{r}}" }, "direct": { "status": 200, "body": "{{r}}" } }"""));
        await File.WriteAllTextAsync(Config, $$"""
        {
          "server": { "stateDirectory": "{{Path.Combine(_dir, "state")}}", "shutdownTimeout": "10s" },
          "admin": { "socketPath": "{{AdminSocket}}" },
          "listeners": [ { "name": "https", "address": "{{address}}", "tls": true, "defaultCertificate": "localhost" } ],
          "certificates": [ { "name": "localhost", "hosts": ["localhost"], "certificatePath": "{{TestCertificates.Cert("localhost")}}", "keyPath": "{{TestCertificates.Key("localhost")}}" } ],
          "routes": [ { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "body": "hello" } }{{routes}} ]
        }
        """);
    }

    private string[] Unit(string name, params string[] properties) =>
    [
        "--user", "--unit", name, "--working-directory", _dir,
        "-p", "Type=notify", "-p", "TimeoutStartSec=60", "-p", "TimeoutStopSec=30",
        "-p", "ExecReload=/bin/sh -c 'kill -HUP \"$1\"' reload $MAINPID",
        "-p", $"StandardOutput=append:{Log}", "-p", $"StandardError=append:{Log}",
        .. properties.SelectMany(p => new[] { "-p", p }),
        "--", .. SystemdUserManager.ApplianceCommand, "run", "--config", Config,
    ];

    private async Task<int> HttpsPort()
    {
        Peer.Result r = await Peer.CurlAsync("--unix-socket", AdminSocket, "http://a/v1/status");
        Match m = Regex.Match(r.Stdout, @"127\.0\.0\.1:(\d+)");
        Assert.True(m.Success, r.All);
        return int.Parse(m.Groups[1].Value);
    }

    [Fact]
    public async Task Ready_only_when_serving_then_status_reload_and_a_draining_stop()
    {
        await WriteConfig("127.0.0.1:0");
        // systemd-run returns when the start job is done: for Type=notify, when READY=1 arrived.
        Peer.Result started = await _systemd.Run("systemd-run", Unit("appliance-notify", "WatchdogSec=10s"));
        Assert.True(started.ExitCode == 0, started.All + File.ReadAllText(Log));
        Assert.Equal("running", await _systemd.Property("appliance-notify", "SubState"));
        Assert.Matches(@"^0 connection\(s\), config revision 1$", await _systemd.Property("appliance-notify", "StatusText"));

        // READY meant it: the listener and the admin socket answer at once, without retries.
        int port = await HttpsPort();
        Peer.Result hello = await Peer.CurlAsync("-k", $"https://127.0.0.1:{port}/");
        Assert.True(hello.Stdout == "hello", hello.All);

        // systemctl reload → SIGHUP → the new config is applied and reported.
        await WriteConfig("127.0.0.1:0", "added");
        Peer.Result reload = await _systemd.Run("systemctl", "--user", "reload", "appliance-notify");
        Assert.True(reload.ExitCode == 0, reload.All);
        await _systemd.WaitForProperty("appliance-notify", "StatusText", s => s.EndsWith("config revision 2", StringComparison.Ordinal), TimeSpan.FromSeconds(20));
        Assert.Equal("added", (await Peer.CurlAsync("-k", $"https://127.0.0.1:{port}/added")).Stdout);
        Assert.Equal(port, await HttpsPort()); // same socket kept

        // systemctl stop → SIGTERM → drain and a clean exit.
        Peer.Result stop = await _systemd.Run("systemctl", "--user", "stop", "appliance-notify");
        Assert.True(stop.ExitCode == 0, stop.All);
        string log = await File.ReadAllTextAsync(Log);
        Assert.Contains("stopping: no new connections", log);
        Assert.Contains("stopped", log);
    }

    [Fact]
    public async Task A_hung_process_is_killed_by_the_watchdog()
    {
        await WriteConfig("127.0.0.1:0");
        Peer.Result started = await _systemd.Run("systemd-run", Unit("appliance-hang", "WatchdogSec=2s"));
        Assert.True(started.ExitCode == 0, started.All);
        int pid = int.Parse(await _systemd.Property("appliance-hang", "MainPID"));

        // Alive and pinging: systemd records each WATCHDOG=1; two more arrive, past the 2 s interval.
        string ping = await _systemd.Property("appliance-hang", "WatchdogTimestampMonotonic");
        for (int i = 0; i < 2; i++)
        {
            string last = ping;
            ping = await _systemd.WaitForProperty("appliance-hang", "WatchdogTimestampMonotonic", v => v != last, TimeSpan.FromSeconds(10));
        }

        Assert.Equal("running", await _systemd.Property("appliance-hang", "SubState"));

        // Frozen (as a deadlocked process would be): no more pings, and systemd kills it.
        Assert.Equal(0, (await Peer.RunAsync("kill", ["-STOP", pid.ToString()])).ExitCode);
        await _systemd.WaitForProperty("appliance-hang", "Result", r => r == "watchdog", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Socket_activation_keeps_the_port_answering_through_a_restart()
    {
        int port = FreePort();
        await WriteConfig($"127.0.0.1:{port}");
        Peer.Result started = await _systemd.Run("systemd-run",
        [
            "--socket-property", $"ListenStream=127.0.0.1:{port}", "--socket-property", "FileDescriptorName=https",
            "--socket-property", "Backlog=1024",
            .. Unit("appliance-socket"),
        ]);
        Assert.True(started.ExitCode == 0, started.All);

        // The first connection starts the service (systemd holds the socket; nothing is bound by us).
        Assert.Equal("hello", await GetAsync(port));
        Assert.Contains("(socket passed by systemd)", await File.ReadAllTextAsync(Log));
        string firstPid = await _systemd.Property("appliance-socket", "MainPID");

        // Requests on fresh connections, back to back, while the service restarts: none may be refused or lost.
        using var stop = new CancellationTokenSource();
        var errors = new List<string>();
        int served = 0;
        Task load = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    Assert.Equal("hello", await GetAsync(port));
                    served++;
                }
                catch (Exception e)
                {
                    errors.Add(e.GetType().Name + ": " + e.Message);
                }
            }
        });

        Peer.Result restart = await _systemd.Run("systemctl", "--user", "restart", "appliance-socket.service");
        Assert.True(restart.ExitCode == 0, restart.All);
        int before = served;
        while (served < before + 20 && errors.Count == 0)
        {
            await Task.Yield();
            await Task.WhenAny(load, Task.Delay(50));
        }

        stop.Cancel();
        await load;
        Assert.True(errors.Count == 0, string.Join("\n", errors.Take(10)));
        Assert.NotEqual(firstPid, await _systemd.Property("appliance-socket", "MainPID"));
        Assert.True(served > 20, $"only {served} requests");
    }

    [Fact]
    public async Task The_shipped_hardening_runs_the_aot_binary()
    {
        // MemoryDenyWriteExecute, the system call filter and the address families are the settings that can break a
        // .NET process; they are taken from the shipped unit as they are. Left out: what names the installed system
        // (user, paths, credentials, sockets) and the four mounts this sandbox cannot make (ProtectHome, PrivateTmp,
        // ProtectKernelTunables, ProtectKernelLogs); the nspawn tier runs the unit whole.
        string[] command = SystemdUserManager.ApplianceCommand;
        Assert.True(command.Length == 1, "needs the AOT binary (test.sh publishes it before the tests): MemoryDenyWriteExecute forbids a JIT");
        string[] skipped = ["Type", "NotifyAccess", "Sockets", "ExecStart", "ExecReload", "Restart", "RestartSec", "WatchdogSec", "TimeoutStartSec",
            "TimeoutStopSec", "User", "Group", "WorkingDirectory", "LoadCredential", "ReadWritePaths", "AmbientCapabilities",
            "ProtectHome", "PrivateTmp", "ProtectKernelTunables", "ProtectKernelLogs"];
        string unit = await File.ReadAllTextAsync(Path.Combine(Packaging.DebianPackageFixture.RepositoryRoot, "packaging", "systemd", "appliance.service"));
        string service = unit[unit.IndexOf("[Service]", StringComparison.Ordinal)..unit.IndexOf("[Install]", StringComparison.Ordinal)];
        string[] hardening = [.. service.Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#') && l.Contains('=') && !skipped.Contains(l[..l.IndexOf('=')]))];
        Assert.Contains("MemoryDenyWriteExecute=yes", hardening);
        Assert.Contains("SystemCallFilter=@system-service", hardening);

        await WriteConfig("127.0.0.1:0");
        Peer.Result started = await _systemd.Run("systemd-run", Unit("appliance-hardened", ["WatchdogSec=10s", $"ReadWritePaths={_dir}", .. hardening]));
        Assert.True(started.ExitCode == 0, started.All + File.ReadAllText(Log));
        int port = await HttpsPort();
        Peer.Result hello = await Peer.CurlAsync("-k", $"https://127.0.0.1:{port}/");
        Assert.True(hello.Stdout == "hello", hello.All + File.ReadAllText(Log));
        string log = await File.ReadAllTextAsync(Log);
        Assert.DoesNotContain("TLS policy not applied", log);
        Assert.Contains("TLS 1.3 records sealed by the appliance", log); // its learning handshakes (two pipes, a thread) pass the filter
        Peer.Result stop = await _systemd.Run("systemctl", "--user", "stop", "appliance-hardened");
        Assert.True(stop.ExitCode == 0, stop.All);
        Assert.Contains("stopped", await File.ReadAllTextAsync(Log));
    }

    private static int FreePort()
    {
        // systemd binds the socket itself, so the test picks a port the kernel just handed out.
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private static async Task<string> GetAsync(int port)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        await using var tls = new SslStream(tcp.GetStream(), false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" });
        await tls.WriteAsync("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"u8.ToArray());
        using var reader = new StreamReader(tls, Encoding.ASCII);
        string response = await reader.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 200", response);
        return response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
    }
}

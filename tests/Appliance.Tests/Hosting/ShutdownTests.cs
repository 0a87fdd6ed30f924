using System.Net;
using Appliance.Tests.Support;

namespace Appliance.Tests.Hosting;

/// <summary>SIGTERM drains: in-flight requests complete, then the process exits 0.</summary>
public sealed class ShutdownTests
{
    private static string WriteConfig()
    {
        string dir = Path.Combine(Path.GetTempPath(), "appliance-shutdown-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "appliance.json");
        File.WriteAllText(path, """
        {
          "server": { "stateDirectory": "state", "shutdownTimeout": "20s" },
          "admin": { "socketPath": "admin.sock" },
          "listeners": [ { "name": "plain", "address": "127.0.0.1:0", "tls": false } ],
          "routes": [ { "id": "upload", "match": { "pathPrefix": "/" }, "direct": { "status": 200, "body": "done" } } ]
        }
        """);
        return path;
    }

    [Fact]
    public async Task Sigterm_during_a_slow_request_lets_it_complete_then_exits_zero()
    {
        await using ApplianceProcess app = ApplianceProcess.Start("run", "--config", WriteConfig());
        int port = int.Parse((await app.WaitForLineAsync(@"listener plain: http://127\.0\.0\.1:(\d+)")).Groups[1].Value);

        await using RawClient client = await RawClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        await client.SendAsync("POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n");
        // 100 Continue proves the handler is running and reading the body: the request is in flight.
        Assert.Equal(100, (await client.ReadResponsesAsync(1)).Single().Status);
        await client.SendAsync("hello");

        app.Signal("TERM");
        await app.WaitForLineAsync("stopping: no new connections");
        await client.SendAsync("world");

        string rest = await client.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 200 OK", rest);
        Assert.Contains("Connection: close", rest);
        Assert.EndsWith("done", rest);
        Assert.Equal(0, await app.WaitForExitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task Sigterm_with_idle_keep_alive_connections_exits_promptly()
    {
        await using ApplianceProcess app = ApplianceProcess.Start("run", "--config", WriteConfig());
        int port = int.Parse((await app.WaitForLineAsync(@"listener plain: http://127\.0\.0\.1:(\d+)")).Groups[1].Value);
        await using RawClient client = await RawClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        await client.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Equal(200, (await client.ReadResponsesAsync(1)).Single().Status);

        app.Signal("TERM");
        Assert.True(await client.IsClosedByServerAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, await app.WaitForExitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Sighup_still_reloads_when_started_under_nohup()
    {
        // nohup hands the process SIGHUP ignored, and .NET never delivers an ignored signal to a handler; the appliance
        // takes it back, as nginx does (the case where CI runs under nohup).
        string config = WriteConfig();
        await using ApplianceProcess app = ApplianceProcess.StartUnder("nohup", "run", "--config", config);
        await app.WaitForLineAsync("signals: SIGHUP inherited as ignored");
        int port = int.Parse((await app.WaitForLineAsync(@"listener plain: http://127\.0\.0\.1:(\d+)")).Groups[1].Value);
        await app.WaitForLineAsync(@"appliance \S+ ready: ");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"done\"", "\"reloaded\"").Replace("127.0.0.1:0", $"127.0.0.1:{port}"));
        app.Signal("HUP");
        await app.WaitForLineAsync("config revision 2 applied");
        await using RawClient client = await RawClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        await client.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Equal("reloaded", (await client.ReadResponsesAsync(1)).Single().Body);
    }

    [Fact]
    public async Task Sighup_reloads_the_config_file_and_a_bad_file_keeps_the_running_config()
    {
        string config = WriteConfig();
        await using ApplianceProcess app = ApplianceProcess.Start("run", "--config", config);
        int port = int.Parse((await app.WaitForLineAsync(@"listener plain: http://127\.0\.0\.1:(\d+)")).Groups[1].Value);
        async Task<string> GetAsync()
        {
            await using RawClient client = await RawClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
            await client.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
            return (await client.ReadResponsesAsync(1)).Single().Body;
        }

        Assert.Equal("done", await GetAsync());
        // the listener keeps its port 0 socket: rewrite the file with the bound port so it stays "unchanged"
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"done\"", "\"reloaded\"").Replace("127.0.0.1:0", $"127.0.0.1:{port}"));
        app.Signal("HUP");
        await app.WaitForLineAsync("config revision 2 applied");
        Assert.Equal("reloaded", await GetAsync());

        File.WriteAllText(config, "{ \"listeners\": [ ], \"routes\": [ {} ] }");
        app.Signal("HUP");
        await app.WaitForLineAsync("refused, running config kept");
        Assert.Equal("reloaded", await GetAsync());
    }
}

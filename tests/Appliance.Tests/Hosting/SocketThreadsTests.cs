using System.Net;
using Appliance.Tests.Support;

namespace Appliance.Tests.Hosting;

/// <summary>
/// server.socketThreads sets how many socket event threads the process runs, on either socket engine (counted by
/// name in /proc): with "epoll", our loops carry the connections and .NET's engine keeps one thread for accepting.
/// </summary>
public sealed class SocketThreadsTests
{
    [Theory]
    [InlineData(1, "epoll")]
    [InlineData(3, "epoll")]
    [InlineData(1, "dotnet")]
    [InlineData(3, "dotnet")]
    public async Task The_process_runs_the_configured_number_of_socket_threads(int threads, string engine)
    {
        string dir = Path.Combine(Path.GetTempPath(), "appliance-threads-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string config = Path.Combine(dir, "appliance.json");
        await File.WriteAllTextAsync(config, $$"""
        {
          "server": { "stateDirectory": "state", "socketThreads": {{threads}}, "socketEngine": "{{engine}}" },
          "admin": { "enabled": false },
          "listeners": [ { "name": "plain", "address": "127.0.0.1:0", "tls": false } ],
          "routes": [ { "id": "hello", "match": { "pathPrefix": "/" }, "direct": { "status": 200, "body": "hi" } } ]
        }
        """);
        await using ApplianceProcess app = ApplianceProcess.Start("run", "--config", config);
        int port = int.Parse((await app.WaitForLineAsync(@"listener plain: http://127\.0\.0\.1:(\d+)")).Groups[1].Value);
        await using RawClient client = await RawClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        await client.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.Equal(200, (await client.ReadResponsesAsync(1)).Single().Status); // the engine exists once a socket is served

        string[] names = [.. Directory.GetDirectories($"/proc/{app.Pid}/task").Select(t => File.ReadAllText(Path.Combine(t, "comm")).Trim())];
        Assert.Equal(engine == "epoll" ? 1 : threads, names.Count(n => n == ".NET Sockets"));
        Assert.Equal(engine == "epoll" ? threads : 0, names.Count(n => n == "appliance-epoll")); // comm keeps 15 characters
    }
}

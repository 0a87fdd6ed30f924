using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Appliance.Tests.Support;

namespace Appliance.Tests.Transport;

/// <summary>
/// A listener that runs out of file descriptors (EMFILE) under a real process limit: it keeps serving the
/// connections it has, pauses accepting instead of spinning its event loop on the connection still queued (the
/// listener is level-triggered), and takes the queued ones once descriptors are free again. The admin socket, on
/// .NET's accept loop, pauses the same way.
/// </summary>
public sealed class AcceptBackoffTests
{
    [Fact]
    public async Task A_listener_out_of_descriptors_pauses_keeps_serving_and_takes_the_queued_connections_later()
    {
        string dir = Directory.CreateTempSubdirectory("appliance-emfile-").FullName;
        string config = Path.Combine(dir, "appliance.json");
        string socket = Path.Combine(dir, "admin.sock");
        await File.WriteAllTextAsync(config, $$"""
        {
          "server": { "stateDirectory": "state", "socketThreads": 1 },
          "admin": { "socketPath": "{{socket}}" },
          "listeners": [ { "name": "plain", "address": "127.0.0.1:0", "tls": false } ],
          "routes": [ { "id": "home", "match": { "path": "/" }, "direct": { "status": 200, "body": "home" } } ]
        }
        """);

        // The AOT binary, as it ships: under dotnet, CoreCLR aborts the process ("Out of memory.") when it cannot
        // make the pipe each new thread of its own needs, which EMFILE prevents; native AOT threads need none.
        string? binary = ApplianceProcess.PublishedBinary;
        Assert.True(binary is not null, "this test runs artifacts/publish/appliance, published after the test build (test.sh publishes it first)");
        const int Limit = 64; // descriptors for the whole process: its own, then the connections
        var clients = new List<RawClient>();
        ApplianceProcess app = ApplianceProcess.StartCommand(["prlimit", $"--nofile={Limit}:{Limit}", binary], "run", "--config", config);
        try
        {
            int port = int.Parse((await app.WaitForLineAsync(@"listener plain: http://127\.0\.0\.1:(\d+)")).Groups[1].Value);
            var endPoint = new IPEndPoint(IPAddress.Loopback, port);

            // More connections than descriptors: the kernel completes them all, the appliance accepts until EMFILE.
            var paused = Stopwatch.StartNew(); // at most as long as the appliance spends out of descriptors
            for (int i = 0; i < Limit + 40; i++)
            {
                clients.Add(await RawClient.ConnectAsync(endPoint));
            }

            RawClient queued = clients[^1];
            await queued.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n"); // answered only once it is accepted
            await app.WaitForLineAsync(@"listener plain: accept failed: TooManyOpenSockets \(\d+ failed so far\); trying again every 50 ms");

            // The admin socket (.NET's accept loop) meets the same wall: it pauses too, and answers later.
            Task<Peer.Result> adminDuring = Peer.RunAsync("curl", ["-sS", "--max-time", "60", "--unix-socket", socket, "http://appliance/v1/status"]);
            await app.WaitForLineAsync(@"listener admin: accept failed: TooManyOpenSockets \(\d+ failed so far\); trying again every 50 ms");

            // The connections it has are served meanwhile: the loop is neither stuck nor lost in the listener.
            RawClient first = clients[0];
            for (int i = 0; i < 20; i++)
            {
                await first.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
                Assert.Equal("home", (await first.ReadResponsesAsync(1)).Single().Body);
            }

            // Descriptors back: the queued connection is accepted and answered.
            foreach (RawClient c in clients.Skip(1).SkipLast(1))
            {
                await c.DisposeAsync();
            }

            clients.RemoveRange(1, clients.Count - 2);
            Assert.Equal("home", (await queued.ReadResponsesAsync(1)).Single().Body);
            Peer.Result answered = await adminDuring;
            Assert.True(answered.ExitCode == 0 && answered.Stdout.Contains("\"listeners\""), answered.Stdout + answered.Stderr);
            long elapsed = paused.ElapsedMilliseconds;

            // Logged at most once a second per listener (a retry without a pause logs thousands of lines).
            int adminLines = app.Output.Split('\n').Count(l => l.Contains("listener admin: accept failed", StringComparison.Ordinal));
            Assert.InRange(adminLines, 1, (elapsed / 1000) + 2);

            // One failed accept per 50 ms pause at most (a spinning loop fails thousands of times in that time).
            Peer.Result status = await Peer.RunAsync("curl", ["-sS", "--max-time", "10", "--unix-socket", socket, "http://appliance/v1/status"]);
            Assert.True(status.ExitCode == 0, status.Stderr);
            JsonElement listener = JsonDocument.Parse(status.Stdout).RootElement.GetProperty("listeners").EnumerateArray().Single();
            long errors = listener.GetProperty("acceptErrors").GetInt64();
            Assert.InRange(errors, 1, (elapsed / 50) + 10);

            Peer.Result metrics = await Peer.RunAsync("curl", ["-sS", "--max-time", "10", "--unix-socket", socket, "http://appliance/v1/metrics"]);
            Assert.Contains($"appliance_listener_accept_errors_total{{listener=\"plain\"}} {errors}\n", metrics.Stdout);
            Assert.Contains("appliance_listener_rejected_connections_total{listener=\"plain\"} 0\n", metrics.Stdout);
        }
        finally
        {
            foreach (RawClient c in clients)
            {
                await c.DisposeAsync();
            }

            await app.DisposeAsync(); // before its folder goes
            Directory.Delete(dir, recursive: true);
        }
    }
}

using System.Text.Json;
using Appliance.State;
using Appliance.Tests.Support;

namespace Appliance.Tests.Admin;

/// <summary>
/// SIGKILL in the middle of a burst of admin writes — config applies (file + revision) and state writes (consumers) —
/// then a restart: the config file still parses and holds every apply that was acknowledged, the database passes
/// its integrity check and holds every consumer that was acknowledged.
/// </summary>
public sealed class AdminCrashTests
{
    [Fact]
    public async Task Sigkill_during_admin_writes_loses_nothing_acknowledged()
    {
        string dir = Path.Combine(Path.GetTempPath(), "appliance-crash-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string config = Path.Combine(dir, "appliance.json");
        string socket = Path.Combine(dir, "admin.sock");
        await File.WriteAllTextAsync(config, $$"""
        {
          "server": { "stateDirectory": "state" },
          "admin": { "socketPath": "{{socket}}" },
          "tenants": [ { "id": "acme", "hosts": ["acme.test"] } ],
          "listeners": [ { "name": "plain", "address": "127.0.0.1:0", "tls": false } ],
          "routes": [ { "id": "home", "match": { "path": "/" }, "direct": { "status": 200, "body": "home" } } ]
        }
        """);

        var routes = new List<string>();
        var consumers = new List<string>();
        string? stopped = null; // what the writer that stopped first was told
        await using (ApplianceProcess app = ApplianceProcess.Start("run", "--config", config))
        {
            await app.WaitForLineAsync("listener plain: http://");
            // Two writers side by side; the kill lands while both have requests in flight.
            using var stop = new CancellationTokenSource();
            var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            void Progress()
            {
                lock (routes) lock (consumers)
                {
                    if (routes.Count >= 8 && consumers.Count >= 8) ready.TrySetResult();
                }
            }

            Task routeWriter = Task.Run(async () =>
            {
                for (int i = 0; !stop.IsCancellationRequested; i++)
                {
                    string id = $"r{i}";
                    Peer.Result r = await Admin(socket, "PUT", $"/v1/routes/{id}", $$"""{ "match": { "path": "/{{id}}" }, "direct": { "status": 200, "body": "{{id}}" } }""");
                    if (!r.Stdout.EndsWith("\n201", StringComparison.Ordinal))
                    {
                        Interlocked.CompareExchange(ref stopped, $"PUT /v1/routes/{id}: {r.All}", null);
                        return; // the process is gone: this one was not acknowledged
                    }

                    lock (routes) routes.Add(id);
                    Progress();
                }
            });
            Task consumerWriter = Task.Run(async () =>
            {
                for (int i = 0; !stop.IsCancellationRequested; i++)
                {
                    Peer.Result r = await Admin(socket, "POST", "/v1/consumers", $$"""{ "tenant": "acme", "name": "c{{i}}", "id": "c{{i}}" }""");
                    if (!r.Stdout.EndsWith("\n201", StringComparison.Ordinal))
                    {
                        Interlocked.CompareExchange(ref stopped, $"POST /v1/consumers c{i}: {r.All}", null);
                        return;
                    }

                    lock (consumers) consumers.Add($"c{i}");
                    Progress();
                }
            });

            Task first = await Task.WhenAny(ready.Task, routeWriter, consumerWriter).WaitAsync(TimeSpan.FromSeconds(90));
            Assert.True(first == ready.Task, $"a writer stopped before the kill ({stopped}):\n" + app.Output);

            app.Signal("KILL");
            stop.Cancel();
            await Task.WhenAll(routeWriter, consumerWriter);
        }

        // The database first, offline: intact, and every acknowledged consumer is there.
        using (var store = new StateStore(Path.Combine(dir, "state", StateStore.FileName)))
        {
            Assert.Equal("ok", store.CheckIntegrity());
            foreach (string id in consumers)
            {
                Assert.NotNull(store.GetConsumer(id));
            }
        }

        // The config file: the appliance starts from it, and every acknowledged route answers.
        await using (ApplianceProcess again = ApplianceProcess.Start("run", "--config", config))
        {
            int port = int.Parse((await again.WaitForLineAsync(@"listener plain: http://127\.0\.0\.1:(\d+)")).Groups[1].Value);
            foreach (string id in routes)
            {
                Peer.Result r = await Peer.CurlAsync($"http://127.0.0.1:{port}/{id}");
                Assert.Equal(id, r.Stdout);
            }

            using JsonDocument doc = JsonDocument.Parse(await File.ReadAllTextAsync(config));
            Assert.True(doc.RootElement.GetProperty("routes").GetArrayLength() >= routes.Count + 1);
        }
    }

    private static Task<Peer.Result> Admin(string socket, string method, string path, string body) =>
        Peer.RunAsync("curl", ["-sS", "--max-time", "10", "--unix-socket", socket, "-X", method, "-w", "\n%{http_code}",
            "--data-binary", "@-", "http://appliance" + path], stdin: body);
}

using System.Text.Json;
using Appliance.Tests.Support;

namespace Appliance.Tests.Admin;

/// <summary>Routes, clusters, certificates, tenants and listeners as REST resources over the running config, with curl --unix-socket.</summary>
public sealed class ConfigResourcesTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-res-" + Guid.NewGuid().ToString("N"));
    private TestServer _server = null!;

    private string Socket => Path.Combine(_dir, "admin.sock");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _server = await TestServer.StartAsync(TestServer.DefaultConfig()
            .Replace("\"server\": {", $"\"admin\": {{ \"socketPath\": \"{Socket}\" }}, \"server\": {{"));
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<(string Body, int Status)> Admin(string method, string path, string? body = null)
    {
        var args = new List<string> { "-sS", "--max-time", "20", "--unix-socket", Socket, "-X", method, "-w", "\n%{http_code}" };
        if (body is not null)
        {
            args.AddRange(["--data-binary", "@-", "-H", "Content-Type: application/json"]);
        }

        args.Add("http://appliance" + path);
        Peer.Result r = await Peer.RunAsync("curl", args, stdin: body);
        int nl = r.Stdout.LastIndexOf('\n');
        return (r.Stdout[..nl], int.Parse(r.Stdout[(nl + 1)..]));
    }

    private async Task<string> GetAsync(string path) =>
        (await Peer.CurlAsync("-s", "-w", " %{http_code}", $"http://127.0.0.1:{_server.HttpPort}{path}")).Stdout;

    [Fact]
    public async Task Route_lifecycle_create_read_replace_delete()
    {
        const string route = """{ "id": "pong", "match": { "path": "/ping" }, "direct": { "status": 200, "body": "pong" } }""";
        (string created, int status) = await Admin("POST", "/v1/routes", route);
        Assert.Equal(201, status);
        Assert.Contains("\"applied\": true", created);
        Assert.Equal("pong 200", await GetAsync("/ping"));

        (string got, status) = await Admin("GET", "/v1/routes/pong");
        Assert.Equal(200, status);
        Assert.Equal("pong", JsonDocument.Parse(got).RootElement.GetProperty("direct").GetProperty("body").GetString());

        (_, status) = await Admin("POST", "/v1/routes", route);
        Assert.Equal(409, status); // POST never replaces

        (_, status) = await Admin("PUT", "/v1/routes/pong", route.Replace("\"pong\" }", "\"PONG\" }"));
        Assert.Equal(200, status);
        Assert.Equal("PONG 200", await GetAsync("/ping"));

        (_, status) = await Admin("DELETE", "/v1/routes/pong");
        Assert.Equal(200, status);
        Assert.EndsWith(" 404", await GetAsync("/ping"));
        (_, status) = await Admin("GET", "/v1/routes/pong");
        Assert.Equal(404, status);
        (_, status) = await Admin("DELETE", "/v1/routes/pong");
        Assert.Equal(404, status);
    }

    [Fact]
    public async Task Dry_run_validates_and_changes_nothing()
    {
        (string body, int status) = await Admin("PUT", "/v1/routes/dry?dryRun=true", """{ "match": { "path": "/dry" }, "direct": { "status": 200, "body": "dry" } }""");
        Assert.Equal(200, status);
        Assert.Contains("\"applied\": false", body);
        Assert.EndsWith(" 404", await GetAsync("/dry"));
    }

    [Theory]
    [InlineData("""{ "id": "x", "match": { "path": "/x" }, "cluster": "missing" }""", 422, "cluster")]              // references nothing
    [InlineData("""{ "id": "x", "match": { "path": "/x" }, "direct": { "status": "two hundred" } }""", 400, "routes.direct.status")] // wrong type
    [InlineData("""{ "id": "x", "match": { "path": "/x" }, "direct": { "status": 200 }, "surprise": 1 }""", 400, "surprise")]    // unknown field
    [InlineData("""{ "id": "x", "match": { "path": "/x" """, 400, "routes")]                                            // truncated
    [InlineData("""{ "id": "other", "match": { "path": "/x" }, "direct": { "status": 200 } }""", 400, "routes.id")]     // id differs from the path
    public async Task Bad_entries_are_refused_with_the_field_and_the_config_stays(string entry, int expected, string field)
    {
        (string before, _) = await Admin("GET", "/v1/config");
        (string body, int status) = await Admin("PUT", "/v1/routes/x", entry);
        Assert.Equal(expected, status);
        Assert.Contains("application/problem+json", (await Peer.RunAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{content_type}", "--unix-socket", Socket,
            "-X", "PUT", "--data-binary", "@-", "http://appliance/v1/routes/x"], stdin: entry)).Stdout);
        Assert.Contains(field, body);
        (string after, _) = await Admin("GET", "/v1/config");
        Assert.Equal(before, after);
    }

    [Fact]
    public async Task Deleting_a_cluster_still_in_use_is_refused()
    {
        const string cluster = """{ "id": "c1", "destinations": [ { "address": "127.0.0.1:9" } ] }""";
        Assert.Equal(201, (await Admin("POST", "/v1/clusters", cluster)).Status);
        Assert.Equal(201, (await Admin("PUT", "/v1/routes/uses-c1", """{ "match": { "pathPrefix": "/c1" }, "cluster": "c1" }""")).Status);
        (string body, int status) = await Admin("DELETE", "/v1/clusters/c1");
        Assert.Equal(422, status);
        Assert.Contains("c1", body);
        Assert.Equal(200, (await Admin("GET", "/v1/clusters/c1")).Status);
    }

    [Fact]
    public async Task Every_kind_answers_by_id()
    {
        Assert.Equal(200, (await Admin("GET", "/v1/certificates/localhost")).Status);
        Assert.Equal(200, (await Admin("GET", "/v1/listeners/https")).Status);
        Assert.Equal(201, (await Admin("PUT", "/v1/tenants/acme", """{ "hosts": ["acme.test"] }""")).Status);
        (string tenant, _) = await Admin("GET", "/v1/tenants/acme");
        Assert.Contains("acme.test", tenant);
        Assert.Equal(404, (await Admin("GET", "/v1/nothing/acme")).Status);
        Assert.Equal(405, (await Admin("PATCH", "/v1/tenants/acme", "{}")).Status);
    }

    [Fact]
    public async Task Oversized_entry_gets_413()
    {
        string huge = "{ \"id\": \"big\", \"match\": { \"path\": \"/big\" }, \"direct\": { \"status\": 200, \"body\": \""
            + new string('x', 17 * 1024 * 1024) + "\" } }";
        (_, int status) = await Admin("PUT", "/v1/routes/big", huge);
        Assert.Equal(413, status);
    }

    [Fact]
    public async Task Ctl_gets_puts_and_deletes_entries()
    {
        string file = Path.Combine(_dir, "route.json");
        await File.WriteAllTextAsync(file, """{ "match": { "path": "/ctl" }, "direct": { "status": 200, "body": "from ctl" } }""");
        Task<Peer.Result> Ctl(params string[] args) => Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "ctl", "--socket", Socket, .. args]);

        Peer.Result put = await Ctl("routes", "put", "via-ctl", file);
        Assert.True(put.ExitCode == 0, put.All);
        Assert.Equal("from ctl 200", await GetAsync("/ctl"));
        Peer.Result get = await Ctl("route", "get", "via-ctl");
        Assert.Equal(0, get.ExitCode);
        Assert.Contains("from ctl", get.Stdout);
        Peer.Result delete = await Ctl("routes", "delete", "via-ctl");
        Assert.Equal(0, delete.ExitCode);
        Peer.Result missing = await Ctl("routes", "get", "via-ctl");
        Assert.Equal(1, missing.ExitCode); // refused by the server: 404
        Peer.Result usage = await Ctl("routes", "put", "only-an-id");
        Assert.Equal(2, usage.ExitCode);
    }

    [Fact]
    public async Task Lists_page_with_offset_and_limit()
    {
        (string all, _) = await Admin("GET", "/v1/routes");
        int total = JsonDocument.Parse(all).RootElement.GetProperty("total").GetInt32();
        Assert.True(total >= 5);
        (string page, int status) = await Admin("GET", "/v1/routes?offset=1&limit=2");
        Assert.Equal(200, status);
        JsonElement root = JsonDocument.Parse(page).RootElement;
        Assert.Equal(total, root.GetProperty("total").GetInt32());
        Assert.Equal(2, root.GetProperty("items").GetArrayLength());
        Assert.Equal(JsonDocument.Parse(all).RootElement.GetProperty("items")[1].GetProperty("id").GetString(),
            root.GetProperty("items")[0].GetProperty("id").GetString());
    }

    [Fact]
    public async Task Logs_show_recent_lines_and_follow_new_ones()
    {
        (string recent, int status) = await Admin("GET", "/v1/logs?lines=50");
        Assert.Equal(200, status);
        Assert.Contains("listener https", recent);

        // Follow on a raw socket: its response head means the follower is in place, so every line logged from
        // then on must reach it. (curl holds a chunked response's head back until the first chunk.)
        using var follower = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream,
            System.Net.Sockets.ProtocolType.Unspecified);
        await follower.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(Socket));
        await follower.SendAsync(System.Text.Encoding.ASCII.GetBytes("GET /v1/logs?follow=true&lines=0 HTTP/1.1\r\nHost: a\r\n\r\n"));
        var received = new System.Text.StringBuilder();
        byte[] buffer = new byte[4096];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!received.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            int n = await follower.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, deadline.Token);
            Assert.True(n > 0);
            received.Append(System.Text.Encoding.UTF8.GetString(buffer, 0, n));
        }

        Assert.StartsWith("HTTP/1.1 200", received.ToString());
        Assert.Contains("Transfer-Encoding: chunked", received.ToString());
        // Something worth a log line: a config change through the API.
        Assert.Equal(201, (await Admin("PUT", "/v1/routes/logged", """{ "match": { "path": "/logged" }, "direct": { "status": 204 } }""")).Status);
        while (!received.ToString().Contains("routes/logged", StringComparison.Ordinal))
        {
            int n = await follower.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, deadline.Token);
            Assert.True(n > 0);
            received.Append(System.Text.Encoding.UTF8.GetString(buffer, 0, n));
        }

        Peer.Result ctl = await Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "ctl", "--socket", Socket, "logs", "tail", "-n", "3"]);
        Assert.Equal(0, ctl.ExitCode);
        Assert.Equal(3, ctl.Stdout.TrimEnd().Split('\n').Length);
    }
}

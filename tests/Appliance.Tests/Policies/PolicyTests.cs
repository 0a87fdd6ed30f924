using System.Text;
using System.Text.Json;
using Appliance.Config;
using Appliance.Tests.Support;

namespace Appliance.Tests.Policies;

/// <summary>Route policies end to end: curl over HTTPS/1.1 and HTTP/2, the admin metrics, a config apply.</summary>
public sealed class PolicyTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-policies-" + Guid.NewGuid().ToString("N"));
    private TestServer _server = null!;

    private string Socket => Path.Combine(_dir, "admin.sock");

    private const string Routes = """
        { "id": "office", "match": { "path": "/office" }, "direct": { "status": 200, "body": "office" },
          "policies": { "access": { "allow": ["10.0.0.0/8", "192.168.0.0/16"] } } },
        { "id": "open", "match": { "path": "/open" }, "direct": { "status": 200, "body": "open" },
          "policies": { "access": { "allow": ["127.0.0.0/8"], "deny": ["127.0.0.2"] } } },
        { "id": "limited", "match": { "path": "/limited" }, "direct": { "status": 200, "body": "limited" },
          "policies": { "rateLimit": { "requests": 2, "per": "1h" } } },
        { "id": "by-key", "match": { "path": "/by-key" }, "direct": { "status": 200, "body": "by-key" },
          "policies": { "rateLimit": { "requests": 1, "per": "1h", "key": "header:X-Api-Key", "status": 503 } } },
        { "id": "both", "match": { "path": "/both" }, "direct": { "status": 200, "body": "both" },
          "policies": { "access": { "deny": ["127.0.0.0/8"] }, "rateLimit": { "requests": 1, "per": "1h" } } },
        """;

    private string Config(string routes = Routes) => TestServer.DefaultConfig(extraRoutes: routes)
        .Replace("\"server\": {", $"\"admin\": {{ \"socketPath\": \"{Socket}\", \"group\": \"appliance-test-admins\" }}, \"server\": {{");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        Peer.Result group = await Peer.RunAsync("groupadd", ["-f", "appliance-test-admins"]);
        Assert.True(group.ExitCode == 0, group.All);
        _server = await TestServer.StartAsync(Config());
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    /// <summary>Status line and headers (lower-case names), then the body, of one request.</summary>
    private async Task<(int Status, string Head, string Body)> GetAsync(string protocol, string path, params string[] extra)
    {
        string head = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        Peer.Result r = await Peer.CurlAsync(["-k", protocol, "-D", head, "-w", "\n%{http_code}", "--resolve", $"localhost:{_server.HttpsPort}:127.0.0.1",
            .. extra, $"https://localhost:{_server.HttpsPort}{path}"]);
        int nl = r.Stdout.LastIndexOf('\n');
        Assert.True(nl >= 0, r.All);
        return (int.Parse(r.Stdout[(nl + 1)..]), (await File.ReadAllTextAsync(head)).ToLowerInvariant(), r.Stdout[..nl]);
    }

    private async Task<string> MetricsAsync()
    {
        Peer.Result r = await Peer.CurlAsync("--unix-socket", Socket, "http://appliance/v1/metrics");
        Assert.Equal(0, r.ExitCode);
        return r.Stdout;
    }

    [Theory]
    [InlineData("--http1.1")]
    [InlineData("--http2")]
    public async Task An_address_outside_the_allow_list_gets_403_and_the_handler_never_runs(string protocol)
    {
        (int status, string head, string body) = await GetAsync(protocol, "/office");
        Assert.Equal(403, status);
        Assert.Contains("content-type: application/problem+json", head);
        using JsonDocument problem = JsonDocument.Parse(body);
        Assert.Equal(403, problem.RootElement.GetProperty("status").GetInt32());
        Assert.DoesNotContain("office", body);
        Assert.Equal((200, "open"), await GetAsync(protocol, "/open") is var (s, _, b) ? (s, b) : default);
    }

    [Fact]
    public async Task A_denied_address_inside_an_allowed_network_is_refused()
    {
        // curl binds its side of the connection to 127.0.0.2, which the route denies inside its allowed 127.0.0.0/8.
        (int status, _, _) = await GetAsync("--http1.1", "/open", "--interface", "127.0.0.2");
        Assert.Equal(403, status);
        Assert.Equal(200, (await GetAsync("--http1.1", "/open", "--interface", "127.0.0.3")).Status);
    }

    [Theory]
    [InlineData("--http1.1")]
    [InlineData("--http2")]
    public async Task Past_the_burst_requests_get_429_with_retry_after_until_the_interval_passes(string protocol)
    {
        // Each case has its own client address (127.0.0.x): the two protocols count apart.
        string from = protocol == "--http2" ? "127.0.0.12" : "127.0.0.11";
        Assert.Equal(200, (await GetAsync(protocol, "/limited", "--interface", from)).Status);
        Assert.Equal(200, (await GetAsync(protocol, "/limited", "--interface", from)).Status);
        (int status, string head, string body) = await GetAsync(protocol, "/limited", "--interface", from);
        Assert.Equal(429, status);
        Assert.Contains("content-type: application/problem+json", head);
        int retryAfter = int.Parse(System.Text.RegularExpressions.Regex.Match(head, @"retry-after: (\d+)").Groups[1].Value);
        Assert.InRange(retryAfter, 1700, 1800); // 2 per hour: the next one conforms half an hour after the last
        Assert.DoesNotContain("limited", body);
        Assert.Equal(200, (await GetAsync(protocol, "/limited", "--interface", "127.0.0.13")).Status); // another client
    }

    [Fact]
    public async Task A_header_key_counts_each_value_apart_and_uses_the_configured_status()
    {
        Assert.Equal(200, (await GetAsync("--http2", "/by-key", "-H", "X-Api-Key: alpha")).Status);
        Assert.Equal(503, (await GetAsync("--http2", "/by-key", "-H", "X-Api-Key: alpha")).Status);
        Assert.Equal(200, (await GetAsync("--http1.1", "/by-key", "-H", "x-api-key: beta")).Status);
        string longKey = new('k', 5000); // counted by its hash
        Assert.Equal(200, (await GetAsync("--http1.1", "/by-key", "-H", $"X-Api-Key: {longKey}")).Status);
        Assert.Equal(503, (await GetAsync("--http1.1", "/by-key", "-H", $"X-Api-Key: {longKey}")).Status);
        Assert.Equal(200, (await GetAsync("--http1.1", "/by-key", "-H", $"X-Api-Key: {longKey}x")).Status);
        // Without the header the client's address is the key.
        Assert.Equal(200, (await GetAsync("--http1.1", "/by-key", "--interface", "127.0.0.21")).Status);
        Assert.Equal(503, (await GetAsync("--http1.1", "/by-key", "--interface", "127.0.0.21")).Status);
    }

    [Fact]
    public async Task Access_runs_before_the_rate_limit_and_refusals_are_counted_per_route_and_policy()
    {
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(403, (await GetAsync("--http1.1", "/both", "--interface", "127.0.0.31")).Status);
        }

        string metrics = await MetricsAsync();
        Assert.Contains("appliance_policy_refusals_total{route=\"both\",policy=\"access\"} 3\n", metrics);
        Assert.Contains("appliance_policy_refusals_total{route=\"both\",policy=\"rateLimit\"} 0\n", metrics); // never reached
        Assert.Contains("appliance_rate_limit_keys{route=\"both\"} 0\n", metrics);
        Assert.Contains("# TYPE appliance_rate_limit_table_full_total counter", metrics);

        Peer.Result routes = await Peer.CurlAsync("--unix-socket", Socket, "http://appliance/v1/routes?limit=1000");
        using JsonDocument doc = JsonDocument.Parse(routes.Stdout);
        JsonElement both = doc.RootElement.GetProperty("items").EnumerateArray().Single(r => r.GetProperty("id").GetString() == "both");
        Assert.Equal("""[{"name":"access","refusals":3},{"name":"rateLimit","refusals":0,"keys":0,"maxKeys":100000}]""",
            both.GetProperty("policies").GetRawText().Replace(" ", "").Replace("\n", ""));
        JsonElement hello = doc.RootElement.GetProperty("items").EnumerateArray().Single(r => r.GetProperty("id").GetString() == "hello");
        Assert.False(hello.TryGetProperty("policies", out _));
    }

    [Fact]
    public async Task An_apply_keeps_the_counts_of_an_unchanged_rate_limit_and_resets_a_changed_one()
    {
        Assert.Equal(200, (await GetAsync("--http1.1", "/limited", "--interface", "127.0.0.41")).Status);
        Assert.Equal(200, (await GetAsync("--http1.1", "/limited", "--interface", "127.0.0.41")).Status);
        Assert.Equal(429, (await GetAsync("--http1.1", "/limited", "--interface", "127.0.0.41")).Status);

        Assert.True((await _server.Host.ApplyAsync(Load(Config().Replace("\"body\": \"open\"", "\"body\": \"open2\"")), dryRun: false, "test")).Ok);
        Assert.Equal("open2", (await GetAsync("--http1.1", "/open")).Body); // the apply took effect
        Assert.Equal(429, (await GetAsync("--http1.1", "/limited", "--interface", "127.0.0.41")).Status);
        Assert.Contains("appliance_policy_refusals_total{route=\"limited\",policy=\"rateLimit\"} 2\n", await MetricsAsync());

        Assert.True((await _server.Host.ApplyAsync(Load(Config(Routes.Replace("\"requests\": 2, \"per\": \"1h\"", "\"requests\": 3, \"per\": \"1h\""))), dryRun: false, "test")).Ok);
        Assert.Equal(200, (await GetAsync("--http1.1", "/limited", "--interface", "127.0.0.41")).Status);
        Assert.Contains("appliance_policy_refusals_total{route=\"limited\",policy=\"rateLimit\"} 0\n", await MetricsAsync());
    }

    [Fact]
    public async Task A_bad_policy_in_an_apply_is_refused_and_the_running_one_stays()
    {
        Appliance.Admin.ApplyResult result = await _server.Host.ApplyAsync(Load(Config(Routes.Replace("\"requests\": 2,", "\"requests\": 0,"))), dryRun: false, "test");
        Assert.False(result.Ok);
        Assert.Contains(result.Errors, e => e.Path.EndsWith(".policies.rateLimit.requests", StringComparison.Ordinal));
        Assert.Equal(403, (await GetAsync("--http1.1", "/office")).Status);
    }

    private static ApplianceConfig Load(string json) => ConfigLoader.Parse(Encoding.UTF8.GetBytes(json));
}

using System.Text.Json;
using Appliance.Tests.Support;

namespace Appliance.Tests.Admin;

/// <summary>Consumers, API keys, subscriptions and usage through the admin socket (curl --unix-socket and `appliance ctl`).</summary>
public sealed class StateResourcesTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-state-api-" + Guid.NewGuid().ToString("N"));
    private TestServer _server = null!;

    private string Socket => Path.Combine(_dir, "admin.sock");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _server = await TestServer.StartAsync(TestServer.DefaultConfig()
            .Replace("\"server\": {", $"\"admin\": {{ \"socketPath\": \"{Socket}\" }}, \"tenants\": [ {{ \"id\": \"acme\", \"hosts\": [\"acme.test\"] }} ], \"server\": {{"));
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<(JsonElement Json, int Status, string Raw)> Admin(string method, string path, string? body = null)
    {
        var args = new List<string> { "-sS", "--max-time", "20", "--unix-socket", Socket, "-X", method, "-w", "\n%{http_code}" };
        if (body is not null)
        {
            args.AddRange(["--data-binary", "@-", "-H", "Content-Type: application/json"]);
        }

        args.Add("http://appliance" + path);
        Peer.Result r = await Peer.RunAsync("curl", args, stdin: body);
        int nl = r.Stdout.LastIndexOf('\n');
        string raw = r.Stdout[..nl];
        return (raw.Length > 0 ? JsonDocument.Parse(raw).RootElement.Clone() : default, int.Parse(r.Stdout[(nl + 1)..]), raw);
    }

    private async Task<string> NewConsumerAsync(string name = "Mobile app")
    {
        (JsonElement json, int status, string raw) = await Admin("POST", "/v1/consumers", $$"""{ "tenant": "acme", "name": "{{name}}" }""");
        Assert.True(status == 201, raw);
        return json.GetProperty("id").GetString()!;
    }

    [Fact]
    public async Task Consumer_key_lifecycle_shows_the_secret_once_and_never_stores_it()
    {
        string consumer = await NewConsumerAsync();
        (JsonElement key, int status, _) = await Admin("POST", $"/v1/consumers/{consumer}/keys");
        Assert.Equal(201, status);
        string secret = key.GetProperty("secret").GetString()!;
        string keyId = key.GetProperty("id").GetString()!;
        Assert.StartsWith("apk_", secret);
        Assert.StartsWith(key.GetProperty("prefix").GetString()!, secret);

        (JsonElement list, _, string listRaw) = await Admin("GET", $"/v1/consumers/{consumer}/keys");
        Assert.Equal(1, list.GetProperty("items").GetArrayLength());
        Assert.DoesNotContain(secret, listRaw);
        Assert.NotNull(_server.Host.State.VerifyApiKey(secret));
        foreach (string file in Directory.GetFiles(Path.GetDirectoryName(_server.Host.State.Path)!, "state.db*"))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            Assert.DoesNotContain(secret, await reader.ReadToEndAsync()); // hash only, in the database and its WAL
        }

        (JsonElement revoked, status, _) = await Admin("DELETE", $"/v1/keys/{keyId}");
        Assert.Equal(200, status);
        Assert.NotEqual(JsonValueKind.Null, revoked.GetProperty("revokedAt").ValueKind);
        Assert.Null(_server.Host.State.VerifyApiKey(secret));
    }

    [Fact]
    public async Task Subscription_is_approved_once()
    {
        string consumer = await NewConsumerAsync("Partner");
        (JsonElement sub, int status, _) = await Admin("POST", "/v1/subscriptions", $$"""{ "consumer": "{{consumer}}", "api": "hello" }""");
        Assert.Equal(201, status);
        Assert.Equal("pending", sub.GetProperty("status").GetString());
        string id = sub.GetProperty("id").GetString()!;
        (JsonElement pending, _, _) = await Admin("GET", "/v1/subscriptions?status=pending");
        Assert.Contains(pending.GetProperty("items").EnumerateArray(), s => s.GetProperty("id").GetString() == id);

        (JsonElement approved, status, _) = await Admin("POST", $"/v1/subscriptions/{id}/approve");
        Assert.Equal(200, status);
        Assert.Equal("approved", approved.GetProperty("status").GetString());
        Assert.Equal("uid:0", approved.GetProperty("decidedBy").GetString()); // the tests run as root: SO_PEERCRED says who
        Assert.Equal(409, (await Admin("POST", $"/v1/subscriptions/{id}/reject")).Status);
    }

    [Theory]
    [InlineData("POST", "/v1/consumers", """{ "tenant": "nope", "name": "x" }""", 422, "tenant")]
    [InlineData("POST", "/v1/consumers", """{ "tenant": "acme" }""", 400, "name")]
    [InlineData("POST", "/v1/consumers", """{ "tenant": "acme", "name": 5 }""", 400, "name")]
    [InlineData("POST", "/v1/consumers", """{ "tenant": "acme", "name": "x", "admin": true }""", 400, "admin")]
    [InlineData("POST", "/v1/consumers", """{ "tenant": "acme", "name": """, 400, "not valid JSON")]
    [InlineData("POST", "/v1/consumers", """[1, 2]""", 400, "JSON object")]
    [InlineData("POST", "/v1/consumers", """{ "tenant": "acme", "name": "x', 'y'); DROP TABLE consumers; --" }""", 201, "DROP TABLE")]
    [InlineData("GET", "/v1/consumers", null, 400, "tenant")]
    [InlineData("GET", "/v1/consumers?tenant=acme&limit=lots", null, 400, "limit")]
    [InlineData("GET", "/v1/consumers/con_missing", null, 404, "con_missing")]
    [InlineData("POST", "/v1/subscriptions", """{ "consumer": "con_missing", "api": "hello" }""", 404, "consumer")]
    [InlineData("GET", "/v1/subscriptions?status=maybe", null, 400, "status")]
    [InlineData("PATCH", "/v1/consumers/x", "{}", 405, "PATCH")]
    public async Task Bad_requests_name_the_field(string method, string path, string? body, int expected, string mention)
    {
        (_, int status, string raw) = await Admin(method, path, body);
        Assert.True(status == expected, raw);
        Assert.Contains(mention, raw);
    }

    [Fact]
    public async Task Oversized_body_gets_413()
    {
        (_, int status, _) = await Admin("POST", "/v1/consumers", "{ \"tenant\": \"acme\", \"name\": \"" + new string('n', 17 * 1024 * 1024) + "\" }");
        Assert.Equal(413, status);
    }

    [Fact]
    public async Task Ctl_creates_lists_and_revokes_keys()
    {
        Task<Peer.Result> Ctl(params string[] args) => Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "ctl", "--socket", Socket, "--json", .. args]);
        Peer.Result created = await Ctl("consumers", "create", "acme", "From ctl");
        Assert.True(created.ExitCode == 0, created.All);
        string consumer = JsonDocument.Parse(created.Stdout).RootElement.GetProperty("id").GetString()!;
        Peer.Result key = await Ctl("keys", "create", consumer);
        Assert.Equal(0, key.ExitCode);
        JsonElement k = JsonDocument.Parse(key.Stdout).RootElement;
        Assert.StartsWith("apk_", k.GetProperty("secret").GetString());
        Peer.Result list = await Ctl("keys", "list", consumer);
        Assert.Contains(k.GetProperty("prefix").GetString()!, list.Stdout);
        Assert.Equal(0, (await Ctl("keys", "revoke", k.GetProperty("id").GetString()!)).ExitCode);
        Assert.Equal(1, (await Ctl("keys", "revoke", "key_missing")).ExitCode);
        Peer.Result consumers = await Ctl("consumers", "acme");
        Assert.Contains("From ctl", consumers.Stdout);

        Peer.Result subscription = await Ctl("subscriptions", "create", consumer, "hello");
        Assert.True(subscription.ExitCode == 0, subscription.All);
        Assert.Equal("pending", JsonDocument.Parse(subscription.Stdout).RootElement.GetProperty("status").GetString());
        Assert.Equal(1, (await Ctl("subscriptions", "create", "con_missing", "hello")).ExitCode);
        _server.Host.State.AddUsage(consumer, "2025-11-29T12", 42);
        Peer.Result usage = await Ctl("usage", consumer);
        Assert.True(usage.ExitCode == 0, usage.All);
        JsonElement row = Assert.Single(JsonDocument.Parse(usage.Stdout).RootElement.GetProperty("items").EnumerateArray());
        Assert.Equal(42, row.GetProperty("requests").GetInt64());
    }

    [Fact]
    public async Task Tenants_follow_the_config()
    {
        Assert.NotNull(_server.Host.State.GetTenant("acme"));
        (JsonElement _, int status, string raw) = await Admin("PUT", "/v1/tenants/globex", """{ "hosts": ["globex.test"] }""");
        Assert.True(status == 201, raw);
        Assert.Equal(["globex.test"], _server.Host.State.GetTenant("globex")!.Domains);
        Assert.Equal(200, (await Admin("DELETE", "/v1/tenants/globex")).Status);
        Assert.Null(_server.Host.State.GetTenant("globex"));
    }
}

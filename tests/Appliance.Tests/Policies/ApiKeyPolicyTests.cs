using System.Text.Json;
using Appliance.Tests.Support;

namespace Appliance.Tests.Policies;

/// <summary>
/// routes[].policies.apiKey end to end: keys made and revoked through the admin socket, presented by curl over
/// HTTPS/1.1 and HTTP/2, proxied to nginx (which echoes what it received).
/// </summary>
public sealed class ApiKeyPolicyTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-apikey-" + Guid.NewGuid().ToString("N"));
    private NginxUpstream _nginx = null!;
    private TestServer _server = null!;

    private string Socket => Path.Combine(_dir, "admin.sock");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _nginx = await NginxUpstream.StartAsync();
        string routes = $$"""
            { "id": "acme-api", "tenant": "acme", "match": { "path": "/acme" }, "direct": { "status": 200, "body": "acme" },
              "policies": { "apiKey": {} } },
            { "id": "acme-echo", "tenant": "acme", "match": { "path": "/echo" }, "cluster": "nginx",
              "policies": { "apiKey": {} } },
            { "id": "acme-echo-visible", "tenant": "acme", "match": { "path": "/visible/echo" }, "cluster": "nginx",
              "transforms": { "stripPrefix": "/visible", "consumerHeader": "X-Custom" }, "policies": { "apiKey": { "hideCredentials": false } } },
            { "id": "acme-sub", "tenant": "acme", "match": { "path": "/sub" }, "direct": { "status": 200, "body": "subscribed" },
              "policies": { "apiKey": { "requireSubscription": true } } },
            { "id": "any-tenant", "match": { "path": "/any" }, "direct": { "status": 200, "body": "any" },
              "policies": { "apiKey": { "header": "X-Key", "bearer": false } } },
            { "id": "per-consumer", "tenant": "acme", "match": { "path": "/pc" }, "direct": { "status": 200, "body": "pc" },
              "policies": { "apiKey": {}, "rateLimit": { "requests": 1, "per": "1h", "key": "consumer" } } },
            { "id": "quota", "tenant": "acme", "match": { "path": "/quota" }, "direct": { "status": 200, "body": "quota" },
              "policies": { "apiKey": {}, "quota": { "requests": 2, "per": "day" } } },
            """;
        _server = await TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: routes)
            .Replace("\"server\": {", $$"""
                "admin": { "socketPath": "{{Socket}}" },
                "tenants": [ { "id": "acme", "hosts": ["acme.test"] }, { "id": "beta", "hosts": ["beta.test"] } ],
                "clusters": [ { "id": "nginx", "destinations": [ { "address": "{{_nginx.Address}}" } ] } ],
                "server": {
                """));
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _nginx.DisposeAsync();
    }

    private async Task<(JsonElement Json, int Status)> Admin(string method, string path, string? body = null)
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
        return (raw.Length > 0 ? JsonDocument.Parse(raw).RootElement.Clone() : default, int.Parse(r.Stdout[(nl + 1)..]));
    }

    /// <summary>A new consumer of the tenant with one key: (consumer id, key id, secret).</summary>
    private async Task<(string Consumer, string KeyId, string Secret)> NewKeyAsync(string tenant = "acme", string? expiresAt = null)
    {
        (JsonElement consumer, int status) = await Admin("POST", "/v1/consumers", $$"""{ "tenant": "{{tenant}}", "name": "app" }""");
        Assert.Equal(201, status);
        string id = consumer.GetProperty("id").GetString()!;
        (JsonElement key, status) = await Admin("POST", $"/v1/consumers/{id}/keys", expiresAt is null ? null : $$"""{ "expiresAt": "{{expiresAt}}" }""");
        Assert.Equal(201, status);
        return (id, key.GetProperty("id").GetString()!, key.GetProperty("secret").GetString()!);
    }

    private async Task<(int Status, string Head, string Body)> GetAsync(string protocol, string path, params string[] extra)
    {
        string head = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        Peer.Result r = await Peer.CurlAsync(["-k", protocol, "-D", head, "-w", "\n%{http_code}", "--resolve", $"localhost:{_server.HttpsPort}:127.0.0.1",
            .. extra, $"https://localhost:{_server.HttpsPort}{path}"]);
        int nl = r.Stdout.LastIndexOf('\n');
        Assert.True(nl >= 0, r.All);
        return (int.Parse(r.Stdout[(nl + 1)..]), (await File.ReadAllTextAsync(head)).ToLowerInvariant(), r.Stdout[..nl]);
    }

    [Theory]
    [InlineData("--http1.1")]
    [InlineData("--http2")]
    public async Task A_key_in_X_Api_Key_or_a_bearer_token_passes_and_its_absence_is_a_401_challenge(string protocol)
    {
        (_, _, string secret) = await NewKeyAsync();
        Assert.Equal((200, "acme"), Pick(await GetAsync(protocol, "/acme", "-H", $"X-Api-Key: {secret}")));
        Assert.Equal((200, "acme"), Pick(await GetAsync(protocol, "/acme", "-H", $"Authorization: Bearer {secret}")));
        Assert.Equal((200, "acme"), Pick(await GetAsync(protocol, "/acme", "-H", $"authorization: bearer   {secret}")));

        (int status, string head, string body) = await GetAsync(protocol, "/acme");
        Assert.Equal(401, status);
        Assert.Contains("www-authenticate: bearer realm=\"acme\"\r\n", head);
        Assert.Contains("content-type: application/problem+json", head);
        Assert.DoesNotContain("acme\"", body);
    }

    [Theory]
    [InlineData("apk_0000000000000000000000000000000A")] // well-formed, unknown
    [InlineData("apk_short")]
    [InlineData("not-a-key")]
    [InlineData("apk_00000000000000000000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("apk_000000000000000000000000000000é")]
    public async Task Unknown_or_malformed_keys_get_the_same_invalid_token_answer(string presented)
    {
        (int status, string head, string body) = await GetAsync("--http1.1", "/acme", "-H", $"X-Api-Key: {presented}");
        Assert.Equal(401, status);
        Assert.Contains("www-authenticate: bearer realm=\"acme\", error=\"invalid_token\"\r\n", head);
        Assert.Contains("not valid", body);
        Assert.Equal(401, (await GetAsync("--http2", "/acme", "-H", "Authorization: Basic dXNlcjpwYXNz")).Status); // not a bearer token: no key
        (status, head, _) = await GetAsync("--http2", "/acme", "-H", "Authorization: Bearer");
        Assert.Equal(400, status); // RFC 6750 §3.1: invalid_request
        Assert.Contains("www-authenticate: bearer realm=\"acme\", error=\"invalid_request\"\r\n", head);
    }

    [Fact]
    public async Task A_revoked_key_stops_working_as_soon_as_the_admin_call_answers()
    {
        (_, string keyId, string secret) = await NewKeyAsync();
        Assert.Equal(200, (await GetAsync("--http2", "/acme", "-H", $"X-Api-Key: {secret}")).Status);
        Assert.Equal(200, (await Admin("DELETE", $"/v1/keys/{keyId}")).Status);
        Assert.Equal(401, (await GetAsync("--http2", "/acme", "-H", $"X-Api-Key: {secret}")).Status);
    }

    [Fact]
    public async Task A_key_of_another_tenant_is_refused_on_a_tenant_route_and_accepted_on_a_route_without_one()
    {
        (_, _, string beta) = await NewKeyAsync("beta");
        Assert.Equal(401, (await GetAsync("--http1.1", "/acme", "-H", $"X-Api-Key: {beta}")).Status);
        Assert.Equal((200, "any"), Pick(await GetAsync("--http1.1", "/any", "-H", $"X-Key: {beta}")));
        Assert.Equal(401, (await GetAsync("--http1.1", "/any", "-H", $"Authorization: Bearer {beta}")).Status); // bearer off there
        (int status, string head, _) = await GetAsync("--http1.1", "/any", "-H", $"X-Api-Key: {beta}"); // another header name
        Assert.Equal(401, status);
        Assert.Contains("www-authenticate: apikey header=\"x-key\"\r\n", head); // no bearer there: the challenge names the header
    }

    [Fact]
    public async Task A_required_subscription_gives_403_until_approved_and_again_once_deleted()
    {
        (string consumer, _, string secret) = await NewKeyAsync();
        Assert.Equal(403, (await GetAsync("--http2", "/sub", "-H", $"X-Api-Key: {secret}")).Status);
        (JsonElement sub, int status) = await Admin("POST", "/v1/subscriptions", $$"""{ "consumer": "{{consumer}}", "api": "acme-sub" }""");
        Assert.Equal(201, status);
        Assert.Equal(403, (await GetAsync("--http2", "/sub", "-H", $"X-Api-Key: {secret}")).Status); // pending
        string id = sub.GetProperty("id").GetString()!;
        Assert.Equal(200, (await Admin("POST", $"/v1/subscriptions/{id}/approve")).Status);
        Assert.Equal((200, "subscribed"), Pick(await GetAsync("--http2", "/sub", "-H", $"X-Api-Key: {secret}")));
        Assert.Equal(200, (await Admin("DELETE", $"/v1/subscriptions/{id}")).Status);
        Assert.Equal(403, (await GetAsync("--http2", "/sub", "-H", $"X-Api-Key: {secret}")).Status);
    }

    [Fact]
    public async Task The_key_is_removed_before_proxying_unless_the_route_keeps_it()
    {
        (_, _, string secret) = await NewKeyAsync();
        (int status, _, string body) = await GetAsync("--http1.1", "/echo", "-H", $"X-Api-Key: {secret}", "-H", "X-Custom: kept");
        Assert.Equal(200, status);
        Assert.Contains("custom=kept", body);
        Assert.Contains("|apikey=|authz=", body);
        (status, _, body) = await GetAsync("--http2", "/echo", "-H", $"Authorization: Bearer {secret}");
        Assert.Equal(200, status);
        Assert.Contains("|apikey=|authz=", body);
        (status, _, body) = await GetAsync("--http2", "/echo", "-H", $"X-Api-Key: {secret}", "-H", $"Authorization: Bearer {secret}");
        Assert.Equal(200, status);
        Assert.Contains("|apikey=|authz=", body); // the bearer copy goes too
        (status, _, body) = await GetAsync("--http1.1", "/echo", "-H", $"X-Api-Key: {secret}", "-H", "Authorization: Basic dXNlcjpwYXNz");
        Assert.Contains("|apikey=|authz=Basic dXNlcjpwYXNz", body); // another scheme's credentials are the upstream's business
        (string consumer, _, string visible) = await NewKeyAsync();
        (status, _, body) = await GetAsync("--http2", "/visible/echo", "-H", $"X-Api-Key: {visible}", "-H", "X-Custom: con_spoofed");
        Assert.Equal(200, status);
        Assert.Contains($"|apikey={visible}|", body);
        Assert.Contains($"|custom={consumer}|", body); // consumerHeader: the gateway's word, the client's copy dropped
        (status, _, body) = await GetAsync("--http1.1", "/visible/echo", "-H", $"X-Api-Key: {visible}");
        Assert.Contains($"|custom={consumer}|", body);
    }

    [Fact]
    public async Task A_rate_limit_by_consumer_counts_each_consumer_apart_whatever_address_it_comes_from()
    {
        (_, _, string first) = await NewKeyAsync();
        (_, _, string second) = await NewKeyAsync();
        Assert.Equal(200, (await GetAsync("--http1.1", "/pc", "-H", $"X-Api-Key: {first}", "--interface", "127.0.0.51")).Status);
        Assert.Equal(429, (await GetAsync("--http1.1", "/pc", "-H", $"X-Api-Key: {first}", "--interface", "127.0.0.52")).Status);
        Assert.Equal(200, (await GetAsync("--http1.1", "/pc", "-H", $"X-Api-Key: {second}", "--interface", "127.0.0.51")).Status);
        Assert.Equal(401, (await GetAsync("--http1.1", "/pc")).Status); // no key: refused before the limit counts
    }

    [Fact]
    public async Task A_quota_counts_the_consumers_requests_on_every_route_and_refuses_past_it_until_the_period_ends()
    {
        for (int attempt = 0; ; attempt++)
        {
            (_, _, string secret) = await NewKeyAsync();
            DateTimeOffset before = DateTimeOffset.UtcNow;
            Assert.Equal(200, (await GetAsync("--http1.1", "/acme", "-H", $"X-Api-Key: {secret}")).Status); // counts toward the quota
            Assert.Equal((200, "quota"), Pick(await GetAsync("--http2", "/quota", "-H", $"X-Api-Key: {secret}")));
            (int status, string head, string body) = await GetAsync("--http2", "/quota", "-H", $"X-Api-Key: {secret}");
            DateTimeOffset after = DateTimeOffset.UtcNow;
            if (before.UtcDateTime.Date != after.UtcDateTime.Date && attempt == 0)
            {
                continue; // the requests straddled midnight UTC, where the daily count starts again: once more
            }

            Assert.Equal(429, status);
            Assert.Contains("daily quota of 2 requests", body);
            DateTimeOffset midnight = new(before.UtcDateTime.Date.AddDays(1), TimeSpan.Zero);
            int retryAfter = int.Parse(System.Text.RegularExpressions.Regex.Match(head, @"retry-after: (\d+)").Groups[1].Value);
            Assert.InRange(retryAfter, Math.Ceiling((midnight - after).TotalSeconds), Math.Ceiling((midnight - before).TotalSeconds));
            (_, _, string other) = await NewKeyAsync();
            Assert.Equal(200, (await GetAsync("--http1.1", "/quota", "-H", $"X-Api-Key: {other}")).Status); // its own count
            return;
        }
    }

    [Fact]
    public async Task Usage_counts_the_requests_every_policy_let_through_and_reads_current()
    {
        (string consumer, _, string secret) = await NewKeyAsync();
        Assert.Equal(200, (await GetAsync("--http1.1", "/acme", "-H", $"X-Api-Key: {secret}")).Status);
        Assert.Equal(200, (await GetAsync("--http2", "/acme", "-H", $"X-Api-Key: {secret}")).Status);
        Assert.Equal(200, (await GetAsync("--http2", "/pc", "-H", $"X-Api-Key: {secret}")).Status);
        Assert.Equal(429, (await GetAsync("--http2", "/pc", "-H", $"X-Api-Key: {secret}")).Status); // refused: not counted
        Assert.Equal(403, (await GetAsync("--http2", "/sub", "-H", $"X-Api-Key: {secret}")).Status); // refused: not counted

        // Read at once: the admin call writes what is counted in memory before it reads.
        (JsonElement usage, int status) = await Admin("GET", $"/v1/consumers/{consumer}/usage");
        Assert.Equal(200, status);
        JsonElement[] rows = [.. usage.GetProperty("items").EnumerateArray()]; // one hour, or two across an hour's end
        Assert.Equal(3, rows.Sum(r => r.GetProperty("requests").GetInt64()));
        Assert.All(rows, r => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d$", r.GetProperty("period").GetString()));
    }

    private static (int, string) Pick((int Status, string Head, string Body) r) => (r.Status, r.Body);
}

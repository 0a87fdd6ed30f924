using System.Diagnostics;
using System.Text.Json;
using Appliance.Tests.Support;

namespace Appliance.Tests.Admin;

/// <summary>The admin API over its Unix socket, driven by curl --unix-socket and by `appliance ctl`.</summary>
public sealed class AdminApiTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-admin-" + Guid.NewGuid().ToString("N"));
    private TestServer _server = null!;

    private string Socket => Path.Combine(_dir, "admin.sock");

    private string Config(string body = "Hello, World!") => TestServer.DefaultConfig().Replace("\"Hello, World!\"", $"\"{body}\"")
        .Replace("\"server\": {", $"\"admin\": {{ \"socketPath\": \"{Socket}\", \"group\": \"appliance-test-admins\" }}, \"server\": {{");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        await Root("groupadd", "-f", "appliance-test-admins"); // the admin group must exist when the socket is made
        _server = await TestServer.StartAsync(Config());
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private Task<Peer.Result> Admin(string method, string path, string? body = null, params string[] extra)
    {
        var args = new List<string> { "-sS", "--max-time", "20", "--unix-socket", Socket, "-X", method, "-w", "\n%{http_code}" };
        if (body is not null)
        {
            args.AddRange(["--data-binary", "@-", "-H", "Content-Type: application/json"]);
        }

        args.AddRange(extra);
        args.Add("http://appliance" + path);
        return Peer.RunAsync("curl", args, stdin: body);
    }

    private static (string Body, int Status) Split(Peer.Result r)
    {
        int nl = r.Stdout.LastIndexOf('\n');
        return (r.Stdout[..nl], int.Parse(r.Stdout[(nl + 1)..]));
    }

    private async Task<string> HelloAsync()
    {
        Peer.Result r = await Peer.CurlAsync("-k", "--resolve", $"localhost:{_server.HttpsPort}:127.0.0.1", $"https://localhost:{_server.HttpsPort}/");
        return r.Stdout;
    }

    [Fact]
    public void Socket_file_is_a_0660_socket()
    {
        UnixFileMode mode = File.GetUnixFileMode(Socket);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, mode);
    }

    [Fact]
    public async Task Status_reports_version_listeners_and_revision()
    {
        (string body, int status) = Split(await Admin("GET", "/v1/status"));
        Assert.Equal(200, status);
        using JsonDocument doc = JsonDocument.Parse(body);
        Assert.True(doc.RootElement.GetProperty("configRevision").GetInt32() >= 1);
        Assert.Equal(2, doc.RootElement.GetProperty("listeners").GetArrayLength());
        Assert.False(string.IsNullOrEmpty(doc.RootElement.GetProperty("version").GetString()));
    }

    [Fact]
    public async Task Config_put_applies_hot_and_rollback_restores()
    {
        Assert.Equal("Hello, World!", await HelloAsync());
        (string dry, int dryStatus) = Split(await Admin("PUT", "/v1/config?dryRun=true", Config("Changed")));
        Assert.Equal(200, dryStatus);
        Assert.Contains("route hello changed", dry);
        Assert.Equal("Hello, World!", await HelloAsync()); // a dry run changes nothing

        (string applied, int status) = Split(await Admin("PUT", "/v1/config", Config("Changed")));
        Assert.Equal(200, status);
        int revision = JsonDocument.Parse(applied).RootElement.GetProperty("revision").GetInt32();
        Assert.Equal("Changed", await HelloAsync());

        (string revisions, _) = Split(await Admin("GET", "/v1/config/revisions"));
        Assert.Contains($"\"revision\": {revision}", revisions);

        (_, int rolled) = Split(await Admin("POST", $"/v1/config/rollback?revision={revision - 1}"));
        Assert.Equal(200, rolled);
        Assert.Equal("Hello, World!", await HelloAsync());
    }

    public static TheoryData<string, int, string> BadConfigs => new()
    {
        { "{", 400, "" },
        { "{\"listeners\": 5}", 400, "listeners" },
        { "{\"listeners\": [], \"colour\": 1}", 400, "colour" },
        { "{\"listeners\": [ { \"name\": \"x\", \"address\": \"127.0.0.1:0\", \"tls\": \"yes\" } ]}", 400, "listeners[0].tls" },
        { "{\"listeners\": [ { \"name\": \"x\", \"address\": \"127.0.0.1:0\", \"tls\": false } ], \"routes\": [ { \"id\": \"r\", \"cluster\": \"missing\" } ]}", 422, "routes[0].cluster" },
        { "{\"listeners\": [ { \"name\": \"x\", \"address\": \"127.0.0.1:0\", \"tls\": true, \"defaultCertificate\": \"nope\" } ]}", 422, "listeners[0].defaultCertificate" },
        { "null", 400, "" },
        { "[1,2]", 400, "" },
        { "\"text\"", 400, "" },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public async Task Bad_config_is_refused_with_the_field_and_the_running_config_stays(string body, int expectedStatus, string path)
    {
        (string problem, int status) = Split(await Admin("PUT", "/v1/config", body));
        Assert.Equal(expectedStatus, status);
        using JsonDocument doc = JsonDocument.Parse(problem);
        Assert.Equal(expectedStatus, doc.RootElement.GetProperty("status").GetInt32());
        if (path.Length > 0)
        {
            Assert.Contains(doc.RootElement.GetProperty("errors").EnumerateArray(), e => e.GetProperty("path").GetString() == path);
        }

        Assert.Equal("Hello, World!", await HelloAsync());
    }

    [Fact]
    public async Task Oversized_body_gets_413()
    {
        string huge = "{\"x\": \"" + new string('a', 17 * 1024 * 1024) + "\"}";
        (_, int status) = Split(await Admin("PUT", "/v1/config", huge));
        Assert.Equal(413, status);
    }

    [Fact]
    public async Task Unknown_endpoint_and_wrong_method_are_problems()
    {
        Assert.Equal(404, Split(await Admin("GET", "/v1/nope")).Status);
        Assert.Equal(405, Split(await Admin("DELETE", "/v1/status")).Status);
        Assert.Equal(400, Split(await Admin("POST", "/v1/config/rollback?revision=x")).Status);
        Assert.Equal(422, Split(await Admin("POST", "/v1/config/rollback?revision=999999")).Status);
    }

    [Fact]
    public async Task Metrics_are_prometheus_text()
    {
        (string body, int status) = Split(await Admin("GET", "/v1/metrics"));
        Assert.Equal(200, status);
        Assert.Contains("# TYPE appliance_connections gauge", body);
        Assert.Matches(@"appliance_config_revision \d+", body);
        // Managed memory apart from RSS: how native (OpenSSL) and managed memory per connection are told apart.
        // The heap size is as of the last collection (0 before the first); bytes in use and RSS are never 0.
        foreach ((string gauge, long least) in new[] { ("dotnet_gc_heap_size_bytes", 0L), ("dotnet_gc_committed_bytes", 0L), ("dotnet_gc_total_memory_bytes", 1L), ("process_resident_memory_bytes", 1L) })
        {
            Assert.Contains($"# TYPE {gauge} gauge", body);
            long value = long.Parse(System.Text.RegularExpressions.Regex.Match(body, $@"(?m)^{gauge} (\d+)$").Groups[1].Value);
            Assert.True(value >= least, gauge);
        }
    }

    [Fact]
    public async Task Ctl_shows_status_and_refuses_bad_configs_with_exit_1()
    {
        Peer.Result status = await Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "ctl", "--socket", Socket, "status"]);
        Assert.Equal(0, status.ExitCode);
        Assert.Contains("configRevision:", status.Stdout);

        string bad = Path.Combine(_dir, "bad.json");
        await File.WriteAllTextAsync(bad, "{\"listeners\": [], \"routes\": [ { \"id\": \"r\" } ]}");
        Peer.Result refused = await Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "ctl", "--socket", Socket, "config", "apply", bad]);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("routes[0]:", refused.Stderr);

        Peer.Result usage = await Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "ctl", "frobnicate"]);
        Assert.Equal(2, usage.ExitCode);

        Peer.Result noSocket = await Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "ctl", "--socket", Path.Combine(_dir, "missing.sock"), "status"]);
        Assert.Equal(3, noSocket.ExitCode);
        Assert.Contains("no admin socket", noSocket.Stderr);
    }

    [Fact]
    public async Task Twenty_applies_under_wrk_load_cause_no_errors()
    {
        Task<Peer.Result> load = Peer.RunAsync("wrk", ["-t1", "-c16", "-d4s", $"https://localhost:{_server.HttpsPort}/"], timeout: TimeSpan.FromSeconds(30));
        for (int i = 0; i < 20; i++)
        {
            (_, int status) = Split(await Admin("PUT", "/v1/config", Config(i % 2 == 0 ? "A" : "B")));
            Assert.Equal(200, status);
        }

        Peer.Result r = await load;
        Assert.True(r.ExitCode == 0, r.All);
        Assert.DoesNotContain("Socket errors", r.Stdout);
        Assert.DoesNotContain("Non-2xx", r.Stdout);
    }

    [Fact]
    public async Task Unprivileged_user_is_refused_and_admin_group_member_is_served()
    {
        const string user = "appliance-test-user";
        if ((await Peer.RunAsync("id", [user])).ExitCode != 0)
        {
            await Root("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user);
        }

        await Peer.RunAsync("gpasswd", ["-d", user, "appliance-test-admins"]); // not a member (fails harmlessly if it was not)
        File.SetUnixFileMode(_dir, (UnixFileMode)0b111_101_101);

        // Not in the group: the 0660 socket cannot even be opened.
        Peer.Result denied = await Peer.RunAsync("runuser", ["-u", user, "--", "curl", "-sS", "--unix-socket", Socket, "http://a/v1/status"]);
        Assert.NotEqual(0, denied.ExitCode);

        // The socket file opened up by mistake: the SO_PEERCRED check still answers 403.
        File.SetUnixFileMode(Socket, (UnixFileMode)0b110_110_110);
        Peer.Result forbidden = await Peer.RunAsync("runuser", ["-u", user, "--", "curl", "-sS", "-w", "|%{http_code}", "--unix-socket", Socket, "http://a/v1/status"]);
        Assert.EndsWith("|403", forbidden.Stdout);
        File.SetUnixFileMode(Socket, (UnixFileMode)0b110_110_000);

        // A member of the admin group (the socket's group) is served.
        await Root("gpasswd", "-a", user, "appliance-test-admins");
        Peer.Result served = await Peer.RunAsync("runuser", ["-u", user, "--", "curl", "-sS", "-w", "|%{http_code}", "--unix-socket", Socket, "http://a/v1/status"]);
        Assert.EndsWith("|200", served.Stdout);
        await Peer.RunAsync("gpasswd", ["-d", user, "appliance-test-admins"]);
    }

    private static async Task Root(string file, params string[] args)
    {
        Peer.Result r = await Peer.RunAsync(file, args);
        Assert.True(r.ExitCode == 0, $"{file} {string.Join(' ', args)}: {r.All}");
    }
}

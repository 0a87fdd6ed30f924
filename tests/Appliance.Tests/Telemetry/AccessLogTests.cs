using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Appliance.Config;
using Appliance.Tests.Support;

namespace Appliance.Tests.Telemetry;

/// <summary>
/// The access log of the real gateway, driven by curl (HTTP/1.1 and HTTP/2), openssl s_client (TLS resumption), raw
/// sockets (hostile bytes) and nginx as upstream; rotated segments read back with the lz4 CLI.
/// </summary>
public sealed class AccessLogTests : IAsyncLifetime
{
    private NginxUpstream _nginx = null!;

    public async Task InitializeAsync() => _nginx = await NginxUpstream.StartAsync();

    public async Task DisposeAsync() => await _nginx.DisposeAsync();

    private string Config(string accessLog = """{ "path": "access.log" }""", string extraRoutes = "") =>
        TestServer.DefaultConfig(extraRoutes: extraRoutes + """
            { "id": "health", "match": { "path": "/healthz" }, "accessLog": false, "direct": { "status": 200, "body": "ok" } },
            { "id": "proxy", "match": { "pathPrefix": "/p" }, "cluster": "nginx" },
            """)
            .Replace("\"shutdownTimeout\": \"5s\" }", $"\"shutdownTimeout\": \"5s\", \"accessLog\": {accessLog} }}")
            .Replace("\"routes\": [", $$"""
              "clusters": [ { "id": "nginx", "destinations": [ { "address": "{{_nginx.Address}}" } ] } ],
              "routes": [
            """);

    private static string LogPath(TestServer server) => server.Host.AccessLog.Options!.Path;

    private static Task<string[]> LinesAsync(TestServer server, int expected) => server.AccessLogLinesAsync(expected);

    private static JsonElement Parse(string line)
    {
        using JsonDocument doc = JsonDocument.Parse(line);
        return doc.RootElement.Clone();
    }

    private static string[] Https(TestServer server, string path, params string[] extra) =>
        ["-k", "--resolve", $"localhost:{server.HttpsPort}:127.0.0.1", .. extra, $"https://localhost:{server.HttpsPort}{path}"];

    [Fact]
    public async Task Http11_request_is_logged_with_connection_tls_and_request_fields()
    {
        await using TestServer server = await TestServer.StartAsync(Config());
        Peer.Result r = await Peer.CurlAsync(Https(server, "/?a=b", "--http1.1", "--tlsv1.3", "-A", "curl-test/1.0", "-e", "https://ref.example/x",
            "-H", "X-Request-Id: req-123"));
        Assert.Equal("Hello, World!", r.Stdout);

        JsonElement e = Parse(Assert.Single(await LinesAsync(server, 1)));
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e.GetProperty("time").GetString());
        Assert.True(e.GetProperty("connection").GetInt64() > 0);
        Assert.Equal(JsonValueKind.Null, e.GetProperty("stream").ValueKind);
        Assert.Matches(@"^127\.0\.0\.1:\d+$", e.GetProperty("client").GetString());
        Assert.Equal("https", e.GetProperty("listener").GetString());
        Assert.Equal("HTTP/1.1", e.GetProperty("protocol").GetString());
        Assert.Equal("TLSv1.3", e.GetProperty("tls_version").GetString());
        Assert.StartsWith("TLS_", e.GetProperty("tls_cipher").GetString());
        Assert.Equal("localhost", e.GetProperty("sni").GetString());
        Assert.False(e.GetProperty("tls_resumed").GetBoolean());
        Assert.Equal(JsonValueKind.Null, e.GetProperty("client_subject").ValueKind);
        Assert.Equal("GET", e.GetProperty("method").GetString());
        Assert.Equal($"localhost:{server.HttpsPort}", e.GetProperty("authority").GetString());
        Assert.Equal("/?a=b", e.GetProperty("target").GetString());
        Assert.Equal(200, e.GetProperty("status").GetInt32());
        Assert.Equal(0, e.GetProperty("request_bytes").GetInt64());
        Assert.Equal(13, e.GetProperty("response_bytes").GetInt64());
        Assert.True(e.GetProperty("duration_us").GetInt64() >= 0);
        Assert.Equal("hello", e.GetProperty("route").GetString());
        Assert.Equal(JsonValueKind.Null, e.GetProperty("upstream_cluster").ValueKind);
        Assert.Equal(JsonValueKind.Null, e.GetProperty("upstream_status").ValueKind);
        Assert.Equal("req-123", e.GetProperty("request_id").GetString());
        Assert.Equal("curl-test/1.0", e.GetProperty("user_agent").GetString());
        Assert.Equal("https://ref.example/x", e.GetProperty("referer").GetString());
    }

    [Theory]
    [InlineData("json")]
    [InlineData("combined")]
    public async Task The_consumer_of_an_accepted_api_key_is_logged(string format)
    {
        await using TestServer server = await TestServer.StartAsync(Config($$"""{ "path": "access.log", "format": "{{format}}" }""", """
            { "id": "keyed", "match": { "path": "/keyed" }, "direct": { "status": 200, "body": "k" }, "policies": { "apiKey": {} } },
            """).Replace("\"clusters\": [", "\"tenants\": [ { \"id\": \"acme\", \"hosts\": [\"acme.test\"] } ], \"clusters\": ["));
        Appliance.State.Consumer consumer = server.Host.State.CreateConsumer("acme", "app");
        string secret = server.Host.State.CreateApiKey(consumer.Id).Secret;
        Assert.Equal("k", (await Peer.CurlAsync(Https(server, "/keyed", "--http1.1", "-H", $"X-Api-Key: {secret}"))).Stdout);
        Assert.Contains("401", (await Peer.CurlAsync(Https(server, "/keyed", "--http2", "-o", "/dev/null", "-w", "%{http_code}"))).Stdout);
        string[] lines = (await LinesAsync(server, 2)).OrderBy(l => l.Contains(" 401 ") || l.Contains("\"status\":401")).ToArray();
        Assert.Equal(2, lines.Length);
        if (format == "json")
        {
            Assert.Equal(consumer.Id, Parse(lines[0]).GetProperty("consumer").GetString());
            Assert.Equal(JsonValueKind.Null, Parse(lines[1]).GetProperty("consumer").ValueKind);
            Assert.DoesNotContain(secret, string.Join('\n', lines));
        }
        else
        {
            Assert.Matches($@"^127\.0\.0\.1 - {consumer.Id} \[", lines[0]); // nginx's $remote_user
            Assert.Matches(@"^127\.0\.0\.1 - - \[.* 401 ", lines[1]);
        }
    }

    [Fact]
    public async Task Http2_request_is_logged_with_its_stream_and_body_sizes()
    {
        await using TestServer server = await TestServer.StartAsync(Config());
        Peer.Result r = await Peer.CurlAsync(Https(server, "/upload/x", "--http2", "--data-binary", new string('x', 5000)));
        Assert.Equal("uploaded", r.Stdout);

        JsonElement e = Parse(Assert.Single(await LinesAsync(server, 1)));
        Assert.Equal("HTTP/2", e.GetProperty("protocol").GetString());
        Assert.Equal(1, e.GetProperty("stream").GetInt32());
        Assert.Equal("POST", e.GetProperty("method").GetString());
        Assert.Equal("/upload/x", e.GetProperty("target").GetString());
        Assert.Equal($"localhost:{server.HttpsPort}", e.GetProperty("authority").GetString());
        Assert.Equal(200, e.GetProperty("status").GetInt32());
        Assert.Equal(5000, e.GetProperty("request_bytes").GetInt64());
        Assert.Equal(8, e.GetProperty("response_bytes").GetInt64());
        Assert.Equal("echo-ok", e.GetProperty("route").GetString());
    }

    [Fact]
    public async Task Resumed_tls_session_is_logged_as_resumed_and_a_full_one_as_not()
    {
        await using TestServer server = await TestServer.StartAsync(Config());
        string session = Path.Combine(Path.GetTempPath(), $"session-{Guid.NewGuid():N}.pem");
        const string request = "GET /?full HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        try
        {
            // -ign_eof: s_client reads until the server closes, so the session ticket has arrived when it saves it.
            Peer.Result full = await Peer.OpenSslAsync(request, "s_client", "-connect", $"127.0.0.1:{server.HttpsPort}", "-servername", "localhost",
                "-ign_eof", "-sess_out", session);
            Assert.Contains("Hello, World!", full.Stdout);
            Peer.Result resumed = await Peer.OpenSslAsync(request.Replace("?full", "?resumed"), "s_client", "-connect", $"127.0.0.1:{server.HttpsPort}",
                "-servername", "localhost", "-ign_eof", "-sess_in", session);
            Assert.Contains("Reused, TLSv1.3", resumed.Stdout);
            Assert.Contains("Hello, World!", resumed.Stdout);
        }
        finally
        {
            File.Delete(session);
        }

        JsonElement[] lines = [.. (await LinesAsync(server, 2)).Select(Parse)];
        Assert.False(lines.Single(l => l.GetProperty("target").GetString() == "/?full").GetProperty("tls_resumed").GetBoolean());
        Assert.True(lines.Single(l => l.GetProperty("target").GetString() == "/?resumed").GetProperty("tls_resumed").GetBoolean());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Proxied_request_logs_the_upstream_and_the_request_id_it_forwarded(bool http2)
    {
        await using TestServer server = await TestServer.StartAsync(Config());
        Directory.CreateDirectory(Path.Combine(_nginx.Root, "p"));
        await File.WriteAllTextAsync(Path.Combine(_nginx.Root, "p", "hello.txt"), "Hello from nginx");
        Peer.Result r = await Peer.CurlAsync(Https(server, "/p/./hello.txt?x=1", http2 ? "--http2" : "--http1.1", "--path-as-is"));
        Assert.Equal("Hello from nginx", r.Stdout);
        Peer.Result missing = await Peer.CurlAsync(Https(server, "/p/missing.txt", http2 ? "--http2" : "--http1.1"));

        JsonElement[] lines = [.. (await LinesAsync(server, 2)).Select(Parse)];
        JsonElement e = lines[0];
        Assert.Equal("/p/./hello.txt?x=1", e.GetProperty("target").GetString()); // as received, not as normalised
        Assert.Equal(200, e.GetProperty("status").GetInt32());
        Assert.Equal("proxy", e.GetProperty("route").GetString());
        Assert.Equal("nginx", e.GetProperty("upstream_cluster").GetString());
        Assert.Equal(_nginx.Address, e.GetProperty("upstream_address").GetString());
        Assert.Equal(200, e.GetProperty("upstream_status").GetInt32());
        Assert.True(e.GetProperty("upstream_header_us").GetInt64() > 0);
        Assert.Equal(16, e.GetProperty("response_bytes").GetInt64());
        Assert.Matches("^[0-9a-f]{32}$", e.GetProperty("request_id").GetString());
        Assert.Equal(http2 ? "HTTP/2" : "HTTP/1.1", e.GetProperty("protocol").GetString());

        // The upstream's own status is logged beside the one the client got.
        JsonElement notFound = lines[1];
        Assert.Equal(404, notFound.GetProperty("status").GetInt32());
        Assert.Equal(404, notFound.GetProperty("upstream_status").GetInt32());
        Assert.Contains("404", missing.Stdout);
    }

    [Fact]
    public async Task Route_with_access_log_false_leaves_no_line()
    {
        await using TestServer server = await TestServer.StartAsync(Config());
        Assert.Equal("ok", (await Peer.CurlAsync(Https(server, "/healthz"))).Stdout);
        Assert.Equal("Hello, World!", (await Peer.CurlAsync(Https(server, "/"))).Stdout);

        string line = Assert.Single(await LinesAsync(server, 1));
        Assert.Equal("/", Parse(line).GetProperty("target").GetString());
    }

    [Fact]
    public async Task Engine_answers_are_logged_too()
    {
        await using TestServer server = await TestServer.StartAsync(Config());
        Assert.Contains("404", (await Peer.CurlAsync(Https(server, "/nothing/here", "-w", "%{http_code}"))).Stdout);
        Assert.EndsWith("405", (await Peer.CurlAsync(Https(server, "/users/7", "-X", "DELETE", "-w", "%{http_code}"))).Stdout);
        await using (RawClient raw = await RawClient.ConnectAsync(server.EndPoint("http")))
        {
            await raw.SendAsync("GET /bad HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
            Assert.StartsWith("HTTP/1.1 400", await raw.ReadToEndAsync());
        }

        // This test's own lines: a loaded CI run once logged three more 400s here, from a client of another test
        // whose port this server's listener had been given again (the lines below show any such).
        string[] all;
        JsonElement[] lines;
        var waited = System.Diagnostics.Stopwatch.StartNew();
        do
        {
            all = await LinesAsync(server, 3);
            lines = [.. all.Select(Parse).Where(l => l.GetProperty("target").GetString() is "/nothing/here" or "/users/7" or "/bad")];
        }
        while (lines.Length < 3 && waited.Elapsed < TimeSpan.FromSeconds(10));

        Assert.True(lines.Select(l => l.GetProperty("status").GetInt32()).SequenceEqual([404, 405, 400]), string.Join("\n", all));
        Assert.Equal(JsonValueKind.Null, lines[0].GetProperty("route").ValueKind);
        Assert.Equal("http", lines[2].GetProperty("listener").GetString());
        Assert.Equal("/bad", lines[2].GetProperty("target").GetString());
        Assert.Equal(JsonValueKind.Null, lines[2].GetProperty("tls_version").ValueKind);
        Assert.True(lines[2].GetProperty("response_bytes").GetInt64() > 0);
    }

    // Quotes and backslashes in the target (visible ASCII: the parser lets them through), and a tab, valid UTF-8 (€)
    // and invalid bytes (a lone 0xFF, a cut sequence) in User-Agent and Referer: the JSON line parses to the same
    // text, and the combined line is escaped as nginx escapes. Control bytes in a target are the formatter tests' part.
    private const string Hostile = "GET /a\"b\\c?q=\"x\\ HTTP/1.1\r\nHost: localhost\r\nUser-Agent: x\"y\\z\tw \u00E2\u0082\u00AC \u00E2\u0082\r\n" +
        "Referer: \"\\\u00FF\r\nConnection: close\r\n\r\n";

    [Fact]
    public async Task Hostile_bytes_in_target_and_headers_give_valid_json()
    {
        await using TestServer server = await TestServer.StartAsync(Config());
        await SendHostileAsync(server);

        JsonElement e = Parse(Assert.Single(await LinesAsync(server, 1)));
        Assert.Equal("/a\"b\\c?q=\"x\\", e.GetProperty("target").GetString());
        Assert.Equal("x\"y\\z\tw € \u00E2\u0082", e.GetProperty("user_agent").GetString());
        Assert.Equal("\"\\\u00FF", e.GetProperty("referer").GetString());
    }

    [Fact]
    public async Task Hostile_bytes_in_target_and_headers_are_escaped_like_nginx_in_combined()
    {
        await using TestServer server = await TestServer.StartAsync(Config("""{ "path": "access.log", "format": "combined" }"""));
        string status = await SendHostileAsync(server);

        string line = Assert.Single(await LinesAsync(server, 1));
        Assert.Matches(@"^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\] ""GET ", line);
        Assert.Contains(@"""GET /a\x22b\x5Cc?q=\x22x\x5C HTTP/1.1"" " + status + " ", line);
        Assert.EndsWith(@" ""\x22\x5C\xFF"" ""x\x22y\x5Cz\x09w \xE2\x82\xAC \xE2\x82""", line);
    }

    /// <summary>Sends <see cref="Hostile"/>; returns the status it got.</summary>
    private static async Task<string> SendHostileAsync(TestServer server)
    {
        await using RawClient raw = await RawClient.ConnectAsync(server.EndPoint("http"));
        await raw.SendAsync(Hostile);
        string answer = await raw.ReadToEndAsync();
        return Regex.Match(answer, @"^HTTP/1\.1 (\d{3})").Groups[1].Value;
    }

    [Theory]
    [InlineData("lz4")]
    [InlineData("none")]
    public async Task Rotation_keeps_max_files_segments_holding_exactly_the_lines_written(string compress)
    {
        await using TestServer server = await TestServer.StartAsync(Config(
            $$"""{ "path": "access.log", "maxSize": "2KiB", "maxFiles": 3, "compress": "{{compress}}" }"""));
        string[] urls = [.. Enumerable.Range(1, 40).Select(i => $"https://localhost:{server.HttpsPort}/?n={i}")];
        Peer.Result r = await Peer.CurlAsync(["-k", "--http1.1", "--resolve", $"localhost:{server.HttpsPort}:127.0.0.1", .. urls]);
        Assert.Equal(0, r.ExitCode);
        await server.Host.AccessLog.FlushAsync();

        string path = LogPath(server);
        string directory = Path.GetDirectoryName(path)!;
        string suffix = compress == "lz4" ? ".lz4" : "";
        string[] files = [.. Directory.GetFiles(directory, "access.log*").Select(Path.GetFileName).Order()!];
        Assert.Equal(["access.log", $"access.log.1{suffix}", $"access.log.2{suffix}", $"access.log.3{suffix}"], files);

        var kept = new List<string>();
        for (int i = 3; i >= 1; i--)
        {
            string segment = $"{path}.{i}{suffix}";
            string text = compress == "lz4" ? await Lz4Async(segment) : await File.ReadAllTextAsync(segment);
            Assert.EndsWith("\n", text);
            kept.AddRange(text.TrimEnd('\n').Split('\n'));
        }

        kept.AddRange(await File.ReadAllLinesAsync(path));
        // Whole lines, in order, ending with the last request: a contiguous run of what was written.
        int[] numbers = [.. kept.Select(l => int.Parse(Parse(l).GetProperty("target").GetString()!["/?n=".Length..]))];
        Assert.Equal(40, numbers[^1]);
        Assert.Equal(Enumerable.Range(numbers[0], numbers.Length), numbers);
        Assert.True(numbers[0] > 1, "older segments beyond maxFiles are deleted");
    }

    private static async Task<string> Lz4Async(string file)
    {
        Peer.Result r = await Peer.RunAsync("lz4", ["-dc", file]);
        Assert.True(r.ExitCode == 0, r.All);
        return r.Stdout;
    }

    [Fact]
    public async Task Reopen_after_the_file_was_moved_away_writes_a_new_file()
    {
        string socket = Path.Combine(Path.GetTempPath(), $"adm-{Guid.NewGuid():N}"[..20] + ".sock");
        string config = Config().Replace("\"server\": {", $"\"admin\": {{ \"socketPath\": \"{socket}\" }}, \"server\": {{");
        await using TestServer server = await TestServer.StartAsync(config);
        string path = LogPath(server);
        await Peer.CurlAsync(Https(server, "/?before"));
        await server.Host.AccessLog.FlushAsync();

        // What logrotate does: rename, then tell the appliance (its nginx postrotate sends SIGUSR1; here the admin API).
        File.Move(path, path + ".rotated");
        await Peer.CurlAsync(Https(server, "/?between"));
        Peer.Result reopen = await Peer.CurlAsync("--unix-socket", socket, "-X", "POST", "-w", "|%{http_code}", "http://appliance/v1/access-log/reopen");
        Assert.EndsWith("|200", reopen.Stdout);
        Assert.Contains(JsonEncodedText.Encode(path).ToString(), reopen.Stdout);
        await Peer.CurlAsync(Https(server, "/?after"));

        string[] after = await LinesAsync(server, 1);
        Assert.Equal("/?after", Parse(Assert.Single(after)).GetProperty("target").GetString());
        string[] rotated = await File.ReadAllLinesAsync(path + ".rotated");
        Assert.Equal(["/?before", "/?between"], rotated.Select(l => Parse(l).GetProperty("target").GetString()));

        Peer.Result ctl = await Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "ctl", "--socket", socket, "access-log", "reopen"]);
        Assert.True(ctl.ExitCode == 0, ctl.All);
        Assert.Contains("reopened: " + path, ctl.Stdout);
    }

    /// <summary>A folder with the config the real-process tests run: a plain listener, one route, a combined-format access log in state/.</summary>
    private static async Task<(string Dir, string Config)> WriteProcessConfigAsync()
    {
        string dir = Path.Combine(Path.GetTempPath(), "appliance-accesslog-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string config = Path.Combine(dir, "appliance.json");
        await File.WriteAllTextAsync(config, """
            {
              "server": { "stateDirectory": "state", "accessLog": { "path": "access.log", "format": "combined" } },
              "admin": { "enabled": false },
              "listeners": [ { "name": "plain", "address": "127.0.0.1:0", "tls": false } ],
              "routes": [ { "id": "all", "match": { "pathPrefix": "/" }, "direct": { "status": 200, "body": "done" } } ]
            }
            """);
        return (dir, config);
    }

    [Fact]
    public async Task Sighup_and_sigusr1_during_the_start_act_once_it_is_ready_instead_of_ending_it()
    {
        // Their default action terminates a process: a logrotate postrotate or a scripted reload that lands while the
        // service restarts must not take it down. The handlers are in place before the state is opened (the first
        // line the start logs), and what they ask for runs when the start ends.
        (_, string config) = await WriteProcessConfigAsync();
        await using ApplianceProcess app = ApplianceProcess.Start("run", "--config", config);
        await app.WaitForLineAsync("state: ");
        app.Signal("HUP");
        app.Signal("USR1");

        await app.WaitForLineAsync(@"appliance \S+ ready: ");
        await app.WaitForLineAsync("config revision 2 applied");
        await app.WaitForLineAsync("access log: reopened");
        int port = int.Parse((await app.WaitForLineAsync(@"listener plain: http://127\.0\.0\.1:(\d+)")).Groups[1].Value);
        Peer.Result r = await Peer.CurlAsync($"http://127.0.0.1:{port}/");
        Assert.True(r.Stdout == "done", r.All + app.Output);
    }

    [Fact]
    public async Task Sigusr1_reopens_the_file_in_the_running_process_and_sigterm_flushes_it()
    {
        (string dir, string config) = await WriteProcessConfigAsync();
        string log = Path.Combine(dir, "state", "access.log");
        await using ApplianceProcess app = ApplianceProcess.Start("run", "--config", config);
        int port = int.Parse((await app.WaitForLineAsync(@"listener plain: http://127\.0\.0\.1:(\d+)")).Groups[1].Value);
        Assert.Equal("done", (await Peer.CurlAsync($"http://127.0.0.1:{port}/before")).Stdout);

        File.Move(log, log + ".1");
        app.Signal("USR1");
        await app.WaitForLineAsync("access log: reopened");
        Assert.Equal("done", (await Peer.CurlAsync($"http://127.0.0.1:{port}/after")).Stdout);
        app.Signal("TERM");
        Assert.Equal(0, await app.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        Assert.Contains("\"GET /before HTTP/1.1\" 200 4 ", Assert.Single(await File.ReadAllLinesAsync(log + ".1")));
        Assert.Contains("\"GET /after HTTP/1.1\" 200 4 ", Assert.Single(await File.ReadAllLinesAsync(log)));
    }

    [Fact]
    public async Task Reopen_without_an_access_log_is_404()
    {
        string socket = Path.Combine(Path.GetTempPath(), $"adm-{Guid.NewGuid():N}"[..20] + ".sock");
        await using TestServer server = await TestServer.StartAsync(TestServer.DefaultConfig().Replace("\"server\": {", $"\"admin\": {{ \"socketPath\": \"{socket}\" }}, \"server\": {{"));
        Peer.Result reopen = await Peer.CurlAsync("--unix-socket", socket, "-X", "POST", "-w", "|%{http_code}", "http://appliance/v1/access-log/reopen");
        Assert.EndsWith("|404", reopen.Stdout);
    }

    [Fact]
    public async Task Reload_turns_the_log_on_changes_its_format_and_turns_it_off_without_restart()
    {
        await using TestServer server = await TestServer.StartAsync(Config().Replace(", \"accessLog\": { \"path\": \"access.log\" }", ""));
        Assert.Null(server.Host.AccessLog.Options);
        string path = Path.Combine(server.Host.Snapshot.StateDirectory, "access.log");

        Assert.True((await server.Host.ApplyAsync(Load(Config()), dryRun: false, "test")).Ok);
        await Peer.CurlAsync(Https(server, "/?json"));
        Assert.True((await server.Host.ApplyAsync(Load(Config("""{ "path": "access.log", "format": "combined" }""")), dryRun: false, "test")).Ok);
        await Peer.CurlAsync(Https(server, "/?combined"));
        Assert.True((await server.Host.ApplyAsync(Load(Config().Replace(", \"accessLog\": { \"path\": \"access.log\" }", "")), dryRun: false, "test")).Ok);
        await Peer.CurlAsync(Https(server, "/?off"));

        await server.Host.AccessLog.FlushAsync();
        string[] lines = await File.ReadAllLinesAsync(path);
        Assert.True(lines.Length == 2, string.Join("\n", lines));
        Assert.True(lines[0].StartsWith('{'), string.Join("\n", lines));
        Assert.Equal("/?json", Parse(lines[0]).GetProperty("target").GetString());
        Assert.Contains("\"GET /?combined HTTP/2.0\" 200 13 ", lines[1]); // curl's default over TLS is h2

        static ApplianceConfig Load(string json) => ConfigLoader.Parse(Encoding.UTF8.GetBytes(json));
    }

    [Fact]
    public async Task Reload_with_an_access_log_that_cannot_be_opened_is_refused_and_the_old_one_stays()
    {
        await using TestServer server = await TestServer.StartAsync(Config());
        string blocker = Path.Combine(server.Host.Snapshot.StateDirectory, "not-a-dir");
        await File.WriteAllTextAsync(blocker, "");
        Appliance.Admin.ApplyResult result = await server.Host.ApplyAsync(
            ConfigLoader.Parse(Encoding.UTF8.GetBytes(Config("""{ "path": "not-a-dir/access.log" }"""))), dryRun: false, "test");
        Assert.False(result.Ok);
        Assert.Contains(result.Errors, e => e.Path == "server.accessLog.path");

        await Peer.CurlAsync(Https(server, "/?still"));
        string[] lines = await LinesAsync(server, 1);
        Assert.True(lines.Length == 1, "one request, one line; got:\n" + string.Join('\n', lines)); // whole lines: a rare second one is unexplained
        Assert.Equal("/?still", Parse(lines[0]).GetProperty("target").GetString());
    }

    [Fact]
    public async Task Shutdown_writes_every_queued_line()
    {
        TestServer server = await TestServer.StartAsync(Config());
        string path = LogPath(server);
        string[] urls = [.. Enumerable.Range(1, 20).Select(i => $"https://localhost:{server.HttpsPort}/?n={i}")];
        await Peer.CurlAsync(["-k", "--http2", "--resolve", $"localhost:{server.HttpsPort}:127.0.0.1", .. urls]);
        await server.DisposeAsync();

        Assert.Equal(20, (await File.ReadAllLinesAsync(path)).Length);
    }
}

using System.Net;
using System.Text.RegularExpressions;
using Appliance.Tests.Support;

namespace Appliance.Tests.Proxy;

/// <summary>The reverse proxy in front of a real nginx, driven by curl over HTTP/1.1 and HTTP/2.</summary>
public sealed class ProxyTests : IAsyncLifetime
{
    private NginxUpstream _nginx = null!;
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _nginx = await NginxUpstream.StartAsync();
        int dead = NginxUpstream.FreePort();
        string config = TestServer.DefaultConfig(extraRoutes: """
            { "id": "proxy", "match": { "pathPrefix": "/p" }, "cluster": "nginx" },
            { "id": "dead", "match": { "pathPrefix": "/dead" }, "cluster": "dead" },
            """)
            .Replace("\"routes\": [", $$"""
              "clusters": [
                { "id": "nginx", "destinations": [ { "address": "{{_nginx.Address}}" } ] },
                { "id": "dead", "destinations": [ { "address": "127.0.0.1:{{dead}}" } ], "timeouts": { "connect": "2s" } }
              ],
              "routes": [
            """);
        _server = await TestServer.StartAsync(config);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _nginx.DisposeAsync();
    }

    private string Url(string path) => $"https://localhost:{_server.HttpsPort}{path}";

    private string[] Base(string path, bool http2) =>
        ["-k", http2 ? "--http2" : "--http1.1", "--resolve", $"localhost:{_server.HttpsPort}:127.0.0.1", Url(path)];

    // nginx serves /p/... from its root: the route forwards the path unchanged, so files live under www/p.
    private async Task PutFileAsync(string name, byte[] content)
    {
        Directory.CreateDirectory(Path.Combine(_nginx.Root, "p"));
        await File.WriteAllBytesAsync(Path.Combine(_nginx.Root, "p", name), content);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Forwarding_headers_reach_the_upstream(bool http2)
    {
        await using TestServer server = await StartWithEchoRouteAsync();
        Peer.Result r = await Peer.CurlAsync("-k", http2 ? "--http2" : "--http1.1", "--resolve", $"localhost:{server.HttpsPort}:127.0.0.1",
            "-H", "X-Forwarded-For: 6.6.6.6", "-H", "Connection: X-Secret", "-H", "X-Secret: leaked", "-H", "TE: trailers",
            $"https://localhost:{server.HttpsPort}/echo?q=1");
        Assert.Equal(0, r.ExitCode);
        string echo = r.Stdout;
        Assert.Contains("xff=127.0.0.1|", echo);            // client copy not trusted, replaced
        Assert.Contains("proto=https|", echo);
        Assert.Contains($"xfh=localhost:{server.HttpsPort}|", echo);
        Assert.Matches(http2 ? "via=2 appliance\\|" : "via=1.1 appliance\\|", echo);
        Assert.Matches("rid=[0-9a-f]{32}\\|", echo);
        Assert.Matches("tp=00-[0-9a-f]{32}-[0-9a-f]{16}-01\\|", echo);
        // HTTP/1.1: a field named by Connection is hop-by-hop. HTTP/2 has no Connection field (curl drops it),
        // so there X-Secret is an ordinary end-to-end field.
        Assert.Contains(http2 ? "secret=leaked|" : "secret=|", echo);
        Assert.Contains("te=|", echo);
        Assert.Contains($"host=localhost|", echo);
        Assert.Contains("uri=/echo?q=1", echo);
    }

    [Fact]
    public async Task Upstream_connections_are_reused()
    {
        await using TestServer server = await StartWithEchoRouteAsync();
        string last = "";
        for (int i = 0; i < 5; i++)
        {
            await using RawClient client = await RawClient.ConnectAsync(server.EndPoint("http"));
            await client.SendAsync("GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n");
            last = (await client.ReadResponsesAsync(1)).Single().Body;
        }

        int requestsOnConnection = int.Parse(Regex.Match(last, @"cr=(\d+)").Groups[1].Value);
        Assert.True(requestsOnConnection > 1, last);
    }

    [Fact]
    public async Task Request_id_sent_by_the_client_is_propagated()
    {
        await using TestServer server = await StartWithEchoRouteAsync();
        await using RawClient client = await RawClient.ConnectAsync(server.EndPoint("http"));
        await client.SendAsync("GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: abc-123\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n");
        string body = (await client.ReadResponsesAsync(1)).Single().Body;
        Assert.Contains("rid=abc-123|", body);
        Assert.Contains("tp=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01|", body);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Large_download_arrives_intact(bool http2)
    {
        byte[] content = new byte[3 * 1024 * 1024 + 5];
        new Random(7).NextBytes(content);
        await PutFileAsync("large.bin", content);
        string output = Path.Combine(Path.GetTempPath(), $"dl-{Guid.NewGuid():N}");
        Peer.Result r = await Peer.CurlAsync([.. Base("/p/large.bin", http2), "-o", output, "-w", "%{http_code}"]);
        Assert.Equal("200", r.Stdout);
        Assert.Equal(content, await File.ReadAllBytesAsync(output));
        File.Delete(output);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public async Task Upload_is_forwarded_with_its_length_or_rechunked(bool http2, bool chunked)
    {
        await using TestServer server = await StartWithEchoRouteAsync();
        string file = Path.Combine(Path.GetTempPath(), $"up-{Guid.NewGuid():N}");
        await File.WriteAllBytesAsync(file, new byte[2_000_000]);
        var args = new List<string> { "-k", http2 ? "--http2" : "--http1.1", "--resolve", $"localhost:{server.HttpsPort}:127.0.0.1", "--data-binary", "@" + file };
        if (chunked)
        {
            args.AddRange(["-H", "Transfer-Encoding: chunked"]);
        }

        args.Add($"https://localhost:{server.HttpsPort}/upload");
        Peer.Result r = await Peer.CurlAsync([.. args]);
        File.Delete(file);
        // A chunked request is re-chunked for the upstream; a known length is forwarded as Content-Length.
        Assert.EndsWith(chunked ? "|te=chunked" : "len=2000000|te=", r.Stdout);
    }

    [Fact]
    public async Task Chunked_upstream_response_is_relayed()
    {
        await using TestServer server = await StartWithEchoRouteAsync();
        Peer.Result r = await Peer.CurlAsync("-k", "--http1.1", "--compressed", "-D", "-", "--resolve", $"localhost:{server.HttpsPort}:127.0.0.1",
            $"https://localhost:{server.HttpsPort}/gz/text.txt");
        Assert.Contains("content-encoding: gzip", r.Stdout, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("transfer-encoding: chunked", r.Stdout, StringComparison.OrdinalIgnoreCase);
        Assert.EndsWith(string.Concat(Enumerable.Repeat("compressible text line\n", 5000)), r.Stdout);
    }

    [Fact]
    public async Task Head_through_the_proxy_has_the_length_and_no_body()
    {
        await using TestServer server = await StartWithEchoRouteAsync();
        await using RawClient client = await RawClient.ConnectAsync(server.EndPoint("http"));
        await client.SendAsync("HEAD /big.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        string head = await client.ReadToEndAsync();
        Assert.Contains($"Content-Length: {1024 * 1024 + 17}\r\n", head);
        Assert.EndsWith("\r\n\r\n", head);
    }

    [Fact]
    public async Task Upstream_connection_close_is_not_reused_and_nothing_breaks()
    {
        await using TestServer server = await StartWithEchoRouteAsync();
        for (int i = 0; i < 3; i++)
        {
            await using RawClient client = await RawClient.ConnectAsync(server.EndPoint("http"));
            await client.SendAsync("GET /close HTTP/1.1\r\nHost: localhost\r\n\r\n");
            HttpResponse response = (await client.ReadResponsesAsync(1)).Single();
            Assert.Equal("closing", response.Body);
            Assert.Null(response.Header("connection")); // hop-by-hop: not relayed
        }
    }

    [Fact]
    public async Task Unreachable_upstream_gets_502_problem()
    {
        Peer.Result r = await Peer.CurlAsync([.. Base("/dead/x", false), "-w", "|%{http_code}"]);
        Assert.EndsWith("|502", r.Stdout);
        Assert.Contains("\"status\":502", r.Stdout);
    }

    [Fact]
    public async Task Wrk_through_the_proxy_has_no_errors()
    {
        await using TestServer server = await StartWithEchoRouteAsync();
        Peer.Result r = await Peer.RunAsync("wrk", ["-t1", "-c16", "-d2s", $"https://localhost:{server.HttpsPort}/hello.txt"], timeout: TimeSpan.FromSeconds(30));
        Assert.True(r.ExitCode == 0, r.All);
        Assert.DoesNotContain("Socket errors", r.Stdout);
        Assert.DoesNotContain("Non-2xx", r.Stdout);
    }

    private async Task<TestServer> StartWithEchoRouteAsync()
    {
        string config = TestServer.DefaultConfig(extraRoutes: """
            { "id": "everything", "order": -1, "match": { "pathPrefix": "/" }, "cluster": "nginx" },
            """).Replace("\"routes\": [", $$"""
              "clusters": [ { "id": "nginx", "destinations": [ { "address": "{{_nginx.Address}}" } ] } ],
              "routes": [
            """);
        return await TestServer.StartAsync(config);
    }

    [Fact]
    public async Task Route_transforms_rewrite_path_and_headers_both_ways()
    {
        string config = TestServer.DefaultConfig(extraRoutes: """
            { "id": "api", "order": -1, "match": { "pathPrefix": "/api" }, "cluster": "nginx",
              "transforms": { "stripPrefix": "/api", "addPrefix": "/",
                "requestHeaders": { "set": { "X-Custom": "from-gateway" }, "remove": [ "User-Agent" ] },
                "responseHeaders": { "set": { "X-Served-By": "appliance" }, "remove": [ "Content-Type" ] },
                "forwarded": true } },
            """).Replace("\"routes\": [", $$"""
              "clusters": [ { "id": "nginx", "destinations": [ { "address": "{{_nginx.Address}}" } ] } ],
              "routes": [
            """);
        await using TestServer server = await TestServer.StartAsync(config);
        await using RawClient client = await RawClient.ConnectAsync(server.EndPoint("http"));
        await client.SendAsync("GET /api/echo?z=9 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: secret-agent\r\nX-Custom: from-client\r\n\r\n");
        HttpResponse response = (await client.ReadResponsesAsync(1)).Single();
        Assert.Contains("uri=/echo?z=9", response.Body);
        Assert.Contains("custom=from-gateway|", response.Body);
        Assert.Contains("ua=|", response.Body);
        Assert.Contains("fwd=for=127.0.0.1;proto=http;host=\"localhost\"|", response.Body);
        Assert.Equal("appliance", response.Header("x-served-by"));
        Assert.Null(response.Header("content-type"));
    }

    [Fact]
    public async Task Trusted_proxy_copy_of_x_forwarded_for_is_appended_to()
    {
        string config = TestServer.DefaultConfig(extraRoutes: """
            { "id": "all", "order": -1, "match": { "pathPrefix": "/" }, "cluster": "nginx", "transforms": { "xForwarded": "append" } },
            """).Replace("\"routes\": [", $$"""
              "clusters": [ { "id": "nginx", "destinations": [ { "address": "{{_nginx.Address}}" } ] } ],
              "routes": [
            """).Replace("\"shutdownTimeout\": \"5s\"", "\"shutdownTimeout\": \"5s\", \"trustedProxies\": [ \"127.0.0.0/8\" ]");
        await using TestServer server = await TestServer.StartAsync(config);
        await using RawClient client = await RawClient.ConnectAsync(server.EndPoint("http"));
        await client.SendAsync("GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n");
        Assert.Contains("xff=6.6.6.6, 127.0.0.1|", (await client.ReadResponsesAsync(1)).Single().Body);
    }

    [Fact]
    public async Task A_dual_stack_listener_forwards_an_ipv4_client_as_ipv4_and_an_ipv6_client_quoted_in_forwarded()
    {
        // "[::]:port" takes IPv4 too, whose clients the socket reports as ::ffff:a.b.c.d: the forwarding fields (and the
        // trusted-proxy check) see the plain IPv4 address, formatted once per connection and reused by its requests.
        string config = TestServer.DefaultConfig(extraRoutes: """
            { "id": "all", "order": -1, "match": { "pathPrefix": "/" }, "cluster": "nginx", "transforms": { "xForwarded": "append", "forwarded": true } },
            """).Replace("\"routes\": [", $$"""
              "clusters": [ { "id": "nginx", "destinations": [ { "address": "{{_nginx.Address}}" } ] } ],
              "routes": [
            """).Replace("\"shutdownTimeout\": \"5s\"", "\"shutdownTimeout\": \"5s\", \"trustedProxies\": [ \"127.0.0.0/8\" ]")
            .Replace("{ \"name\": \"http\", \"address\": \"127.0.0.1:0\"", "{ \"name\": \"http\", \"address\": \"[::]:0\"");
        await using TestServer server = await TestServer.StartAsync(config);
        int port = server.Port("http");

        await using (RawClient v4 = await RawClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)))
        {
            for (int i = 0; i < 2; i++)
            {
                await v4.SendAsync("GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n");
                string body = (await v4.ReadResponsesAsync(1)).Single().Body;
                Assert.Contains("xff=6.6.6.6, 127.0.0.1|", body); // trusted: 127.0.0.0/8 matches the mapped address
                Assert.Contains("fwd=for=127.0.0.1;proto=http;host=\"localhost\"|", body);
            }
        }

        await using RawClient v6 = await RawClient.ConnectAsync(new IPEndPoint(IPAddress.IPv6Loopback, port));
        for (int i = 0; i < 2; i++)
        {
            await v6.SendAsync("GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n");
            string body = (await v6.ReadResponsesAsync(1)).Single().Body;
            Assert.Contains("xff=::1|", body); // not trusted: the client's copy is replaced
            Assert.Contains("fwd=for=\"[::1]\";proto=http;host=\"localhost\"|", body); // RFC 7239 §6: IPv6 quoted in brackets
        }
    }

    [Fact]
    public async Task Http2_cookie_fields_are_joined_for_the_http11_upstream()
    {
        await using TestServer server = await StartWithEchoRouteAsync();
        Peer.Result r = await Peer.CurlAsync("-k", "--http2", "--resolve", $"localhost:{server.HttpsPort}:127.0.0.1",
            "-H", "Cookie: a=1", "-H", "Cookie: b=2", $"https://localhost:{server.HttpsPort}/echo");
        Assert.Contains("cookie=a=1; b=2|", r.Stdout);
    }

    [Fact]
    public async Task Config_apply_that_leaves_a_cluster_unchanged_keeps_its_warm_upstream_connections()
    {
        string config = TestServer.DefaultConfig(extraRoutes: """
            { "id": "everything", "order": -1, "match": { "pathPrefix": "/" }, "cluster": "nginx" },
            """).Replace("\"routes\": [", $$"""
              "clusters": [ { "id": "nginx", "destinations": [ { "address": "{{_nginx.Address}}" } ] } ],
              "routes": [
            """);
        await using TestServer server = await TestServer.StartAsync(config);
        async Task<int> RequestsOnUpstreamConnectionAsync()
        {
            await using RawClient client = await RawClient.ConnectAsync(server.EndPoint("http"));
            await client.SendAsync("GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n");
            string body = (await client.ReadResponsesAsync(1)).Single().Body;
            return int.Parse(Regex.Match(body, @"cr=(\d+)").Groups[1].Value);
        }

        int before = await RequestsOnUpstreamConnectionAsync();
        string changed = config.Replace("\"Hello, World!\"", "\"Changed\"") + " ";
        Appliance.Admin.ApplyResult result = await server.Host.ApplyAsync(
            Appliance.Config.ConfigLoader.Parse(System.Text.Encoding.UTF8.GetBytes("{ \"admin\": { \"enabled\": false }," + changed.TrimStart()[1..])), false, "test");
        Assert.True(result.Ok, string.Join("; ", result.Errors));
        Assert.Equal(before + 1, await RequestsOnUpstreamConnectionAsync());
    }
}

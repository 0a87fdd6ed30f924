using Appliance.Tests.Support;

namespace Appliance.Tests.Proxy;

/// <summary>
/// HTTP/2 upstreams: gRPC (Node's @grpc/grpc-js client and server: unary, server, client and bidi streaming,
/// metadata, trailers, error status) through the gateway over h2c, and nginx over TLS with h2 chosen by ALPN
/// (many requests multiplexed on one connection, large bodies, uploads).
/// </summary>
public sealed class Http2UpstreamTests : IAsyncLifetime
{
    private NodePeer _grpc = null!;
    private NginxUpstream _nginx = null!;
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _grpc = await NodePeer.StartAsync("grpc_server.js");
        _nginx = await NginxUpstream.StartAsync();
        _server = await TestServer.StartAsync(TestServer.DefaultConfig(httpProtocols: ["h2", "http/1.1"], extraRoutes: """
            { "id": "grpc", "match": { "pathPrefix": "/test.Echo" }, "cluster": "grpc" },
            { "id": "nginx-h2", "match": { "pathPrefix": "/h2echo" }, "cluster": "nginx-h2" },
            { "id": "nginx-files", "match": { "pathPrefix": "/files" }, "cluster": "nginx-h2" },
            """).Replace("\"routes\": [", $$"""
              "clusters": [
                { "id": "grpc", "protocol": "http2", "destinations": [ { "address": "127.0.0.1:{{_grpc.Port}}" } ] },
                { "id": "nginx-h2", "protocol": "http2", "destinations": [ { "address": "127.0.0.1:{{_nginx.TlsPort}}" } ],
                  "tls": { "serverName": "localhost", "insecureSkipVerify": true } },
                { "id": "probe-h2", "protocol": "http2", "destinations": [ { "address": "127.0.0.1:{{_nginx.TlsPort}}" } ],
                  "tls": { "serverName": "localhost", "insecureSkipVerify": true },
                  "healthCheck": { "active": { "interval": "100ms", "path": "/h2echo", "healthyThreshold": 1, "unhealthyThreshold": 1 } } },
                { "id": "probe-h2-wrong", "protocol": "http2", "destinations": [ { "address": "127.0.0.1:{{_nginx.TlsPort}}" } ],
                  "tls": { "serverName": "localhost", "insecureSkipVerify": true },
                  "healthCheck": { "active": { "interval": "100ms", "path": "/h2echo", "expectedStatus": "204", "healthyThreshold": 1, "unhealthyThreshold": 1 } } },
                { "id": "probe-tls", "destinations": [ { "address": "127.0.0.1:{{_nginx.TlsPort}}" } ],
                  "tls": { "serverName": "localhost", "insecureSkipVerify": true },
                  "healthCheck": { "active": { "interval": "100ms", "path": "/", "healthyThreshold": 1, "unhealthyThreshold": 1 } } },
                { "id": "probe-grpc", "protocol": "http2", "destinations": [ { "address": "127.0.0.1:{{_grpc.Port}}" } ],
                  "healthCheck": { "active": { "interval": "100ms", "path": "/", "expectedStatus": "200-599", "healthyThreshold": 1, "unhealthyThreshold": 1 } } }
              ],
              "routes": [
            """));
        // nginx's workers (nobody, when the tests run as root) store the PUT uploads here
        File.SetUnixFileMode(_nginx.Root, (UnixFileMode)0b111_111_111);
        await File.WriteAllBytesAsync(Path.Combine(_nginx.Root, "ten.bin"), Enumerable.Range(0, 10 * 1024 * 1024).Select(i => (byte)(i % 251)).ToArray());
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _nginx.DisposeAsync();
        await _grpc.DisposeAsync();
    }

    [Fact]
    public async Task Grpc_calls_of_every_kind_pass_through_with_metadata_and_trailers()
    {
        Peer.Result r = await NodePeer.RunAsync("grpc_client.js", $"127.0.0.1:{_server.HttpPort}");
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Contains("\"trailer\":\"done\"", r.Stdout);
        Assert.Contains("\"failCode\":5", r.Stdout);
        Assert.Contains("\"bidi\":20", r.Stdout);
    }

    [Fact]
    public async Task Grpc_direct_to_the_upstream_gives_the_same_answers()
    {
        // The same client straight to the server: what the gateway must not change.
        Peer.Result r = await NodePeer.RunAsync("grpc_client.js", $"127.0.0.1:{_grpc.Port}");
        Assert.True(r.ExitCode == 0, r.All);
    }

    [Theory]
    [InlineData("--http1.1")]
    [InlineData("--http2")]
    public async Task Tls_upstream_speaks_h2_chosen_by_alpn(string clientProtocol)
    {
        Peer.Result r = await Peer.CurlAsync("-k", clientProtocol, "--resolve", $"localhost:{_server.HttpsPort}:127.0.0.1",
            "-H", "TE: trailers", $"https://localhost:{_server.HttpsPort}/h2echo?x=1");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("protocol=HTTP/2.0", r.Stdout);
        Assert.Contains("xff=127.0.0.1", r.Stdout);
        Assert.Contains("uri=/h2echo?x=1", r.Stdout);
    }

    [Theory]
    [InlineData("--http1.1")]
    [InlineData("--http2")]
    public async Task Large_download_and_upload_through_an_h2_upstream(string clientProtocol)
    {
        string file = Path.Combine(Path.GetTempPath(), "h2-up-" + Guid.NewGuid().ToString("N"));
        try
        {
            Peer.Result r = await Peer.CurlAsync("-k", clientProtocol, "--resolve", $"localhost:{_server.HttpsPort}:127.0.0.1",
                "-o", file, "-w", "%{http_code} %{size_download}", $"https://localhost:{_server.HttpsPort}/files/ten.bin");
            Assert.Equal("200 10485760", r.Stdout);
            Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(_nginx.Root, "ten.bin")), await File.ReadAllBytesAsync(file));

            // PUT through the gateway: nginx (WebDAV) stores what arrived over h2.
            string name = "up-" + Guid.NewGuid().ToString("N") + ".bin";
            r = await Peer.CurlAsync("-k", clientProtocol, "--resolve", $"localhost:{_server.HttpsPort}:127.0.0.1",
                "-T", file, "-w", "%{http_code}", "-o", "/dev/null", $"https://localhost:{_server.HttpsPort}/files/{name}");
            Assert.True(r.Stdout == "201", r.All);
            Assert.Equal(await File.ReadAllBytesAsync(file), await File.ReadAllBytesAsync(Path.Combine(_nginx.Root, name)));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Many_concurrent_requests_share_few_upstream_connections()
    {
        Peer.Result r = await Peer.RunAsync("h2load", ["-n", "2000", "-c", "20", "-m", "10", $"http://127.0.0.1:{_server.HttpPort}/h2echo"],
            timeout: TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Contains("2000 succeeded", r.Stdout);
        Assert.Contains("status codes: 2000 2xx", r.Stdout);
        // nginx allows 128 streams per connection: 200 concurrent requests fit on a handful of connections.
        Assert.InRange(_server.Host.Snapshot.Clusters.Single(c => c.Id == "nginx-h2").Destinations[0].OpenConnections, 1, 4);
    }

    [Theory]
    [InlineData("probe-h2", true)]        // h2 over TLS (ALPN), nginx answers 200
    [InlineData("probe-h2-wrong", false)] // the same answer where 204 is expected: the probe reads the real status
    [InlineData("probe-tls", true)]       // HTTP/1.1 over TLS
    [InlineData("probe-grpc", true)]      // h2c by prior knowledge (any answer counts here)
    public async Task Active_probes_speak_the_cluster_protocol_and_tls(string cluster, bool healthy)
    {
        Appliance.Proxy.DestinationHealth health = _server.Host.Snapshot.Clusters.Single(c => c.Id == cluster).Destinations[0].Health;
        for (int i = 0; i < 3; i++)
        {
            await health.NextProbe.WaitAsync(TimeSpan.FromSeconds(10));
        }

        Assert.Equal(healthy, health.ActiveHealthy);
    }
}

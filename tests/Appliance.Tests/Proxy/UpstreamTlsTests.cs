using Appliance.Tests.Support;

namespace Appliance.Tests.Proxy;

/// <summary>TLS to the upstream (nginx with the tests' localhost certificate): trust, names, SNI, insecure mode.</summary>
public sealed class UpstreamTlsTests : IAsyncLifetime
{
    private NginxUpstream _nginx = null!;

    public async Task InitializeAsync() => _nginx = await NginxUpstream.StartAsync();

    public async Task DisposeAsync() => await _nginx.DisposeAsync();

    private async Task<HttpResponse> GetAsync(string tls)
    {
        await using TestServer server = await TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: """
            { "id": "tls", "order": -1, "match": { "pathPrefix": "/" }, "cluster": "tls" },
            """).Replace("\"routes\": [", $$"""
              "clusters": [ { "id": "tls", "destinations": [ { "address": "127.0.0.1:{{_nginx.TlsPort}}" } ], "tls": {{tls}},
                              "healthCheck": { "passive": { "consecutiveFailures": 0 } } } ],
              "routes": [
            """));
        await using RawClient client = await RawClient.ConnectAsync(server.EndPoint("http"));
        await client.SendAsync("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        return (await client.ReadResponsesAsync(1)).Single();
    }

    [Fact]
    public async Task Upstream_certificate_trusted_by_the_ca_file_and_name_is_accepted_with_sni()
    {
        HttpResponse r = await GetAsync($$"""{ "caFile": "{{TestCertificates.Cert("localhost")}}", "serverName": "localhost" }""");
        Assert.Equal(200, r.Status);
        Assert.Equal("tls-ok sni=localhost", r.Body);
    }

    [Fact]
    public async Task Upstream_certificate_not_in_the_system_trust_store_gets_502()
    {
        HttpResponse r = await GetAsync("""{ "serverName": "localhost" }""");
        Assert.Equal(502, r.Status);
    }

    [Fact]
    public async Task Upstream_certificate_for_another_name_gets_502()
    {
        HttpResponse r = await GetAsync($$"""{ "caFile": "{{TestCertificates.Cert("localhost")}}", "serverName": "alpha.test" }""");
        Assert.Equal(502, r.Status);
    }

    [Fact]
    public async Task Insecure_mode_skips_verification()
    {
        HttpResponse r = await GetAsync("""{ "serverName": "whatever.test", "insecureSkipVerify": true }""");
        Assert.Equal(200, r.Status);
        Assert.Equal("tls-ok sni=whatever.test", r.Body);
    }
}

using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Appliance.Tests.Support;

namespace Appliance.Tests.Tls;

/// <summary>
/// Mutual TLS on listeners, with curl --cert/--key: a client certificate from the configured CA is accepted and
/// passed upstream in the configured header; none (where required) and one from another CA are refused in the
/// handshake; a client-sent copy of the header never reaches the upstream.
/// </summary>
public sealed class MutualTlsTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-mtls-" + Guid.NewGuid().ToString("N"));
    private NginxUpstream _nginx = null!;
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        (X509Certificate2 ca, ECDsa caKey) = ClientCertificates.MakeCa("CN=Test Client CA");
        (X509Certificate2 otherCa, ECDsa otherKey) = ClientCertificates.MakeCa("CN=Someone Else's CA");
        await File.WriteAllTextAsync(Path.Combine(_dir, "ca.pem"), ca.ExportCertificatePem());
        ClientCertificates.Write(_dir, "good", "CN=client-a", ca, caKey);
        ClientCertificates.Write(_dir, "stranger", "CN=client-b", otherCa, otherKey);

        _nginx = await NginxUpstream.StartAsync();
        string listeners = $$"""
            { "name": "required", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "localhost",
              "clientCertificates": { "mode": "required", "caFile": "{{_dir}}/ca.pem" } },
            { "name": "optional", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "localhost",
              "clientCertificates": { "mode": "optional", "caFile": "{{_dir}}/ca.pem" } },
            """;
        _server = await TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: """
            { "id": "echo", "order": -1, "match": { "path": "/echo" }, "cluster": "nginx", "transforms": { "clientCertificateHeader": "X-Custom" } },
            """).Replace("\"listeners\": [", "\"listeners\": [" + listeners).Replace("\"routes\": [", $$"""
              "clusters": [ { "id": "nginx", "destinations": [ { "address": "{{_nginx.Address}}" } ] } ],
              "routes": [
            """));
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _nginx.DisposeAsync();
    }

    private Task<Peer.Result> Curl(string listener, string? client)
    {
        int port = _server.EndPoint(listener).Port;
        var args = new List<string> { "-k", "--resolve", $"localhost:{port}:127.0.0.1", "-H", "X-Custom: forged" };
        if (client is not null)
        {
            args.AddRange(["--cert", Path.Combine(_dir, client + ".crt"), "--key", Path.Combine(_dir, client + ".key")]);
        }

        args.Add($"https://localhost:{port}/echo");
        return Peer.CurlAsync([.. args]);
    }

    [Theory]
    [InlineData("required")]
    [InlineData("optional")]
    public async Task A_trusted_client_certificate_is_accepted_and_reaches_the_upstream(string listener)
    {
        Peer.Result r = await Curl(listener, "good");
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Contains("custom=Hash=", r.Stdout);
        Assert.Contains("Subject=\"CN=client-a\";DNS=client-a.clients.test|", r.Stdout);
        Assert.DoesNotContain("forged", r.Stdout);
    }

    [Fact]
    public async Task Required_without_a_certificate_is_refused_in_the_handshake()
    {
        Peer.Result r = await Curl("required", null);
        Assert.NotEqual(0, r.ExitCode);
        Assert.DoesNotContain("xff=", r.Stdout);
    }

    [Theory]
    [InlineData("required")]
    [InlineData("optional")]
    public async Task A_certificate_from_another_ca_is_refused(string listener)
    {
        Peer.Result r = await Curl(listener, "stranger");
        Assert.NotEqual(0, r.ExitCode);
        Assert.DoesNotContain("xff=", r.Stdout);
    }

    [Fact]
    public async Task Optional_without_a_certificate_is_served_and_the_forged_header_is_dropped()
    {
        Peer.Result r = await Curl("optional", null);
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Contains("custom=|", r.Stdout);
    }
}

/// <summary>Strict-Transport-Security per route: on HTTPS responses (HTTP/1.1 and HTTP/2), never over plain HTTP.</summary>
public sealed class HstsTests
{
    [Theory]
    [InlineData("--http1.1")]
    [InlineData("--http2")]
    public async Task Hsts_is_sent_over_https_only(string protocol)
    {
        await using TestServer server = await TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: """
            { "id": "secure", "match": { "path": "/secure" }, "direct": { "status": 200, "body": "s", "headers": { "Strict-Transport-Security": "max-age=1" } },
              "hsts": { "maxAge": "365d", "includeSubDomains": true, "preload": true } },
            """));
        Peer.Result https = await Peer.CurlAsync("-k", "-i", protocol, "--resolve", $"localhost:{server.HttpsPort}:127.0.0.1", $"https://localhost:{server.HttpsPort}/secure");
        Assert.Contains("strict-transport-security: max-age=31536000; includeSubDomains; preload", https.Stdout, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("max-age=1\r", https.Stdout); // the route's policy replaced the handler's own
        Peer.Result http = await Peer.CurlAsync("-i", $"http://127.0.0.1:{server.HttpPort}/secure");
        Assert.DoesNotContain("strict-transport-security: max-age=31536000", http.Stdout, StringComparison.OrdinalIgnoreCase);
    }
}

using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Appliance.Tests.Support;

namespace Appliance.Tests.Tls;

/// <summary>
/// Client certificates per route and per tenant, with curl --cert/--key against a real listener that asks for them
/// (clientCertificates optional with the listener's CA, nginx's ssl_verify_client optional): a route that requires one
/// answers 403 problem+json without a certificate trusted by its CA set (the route's caFile, its tenant's, else the
/// listener's), and passes the verified identity upstream; optional and off routes serve everyone.
/// </summary>
public sealed class RouteClientCertificateTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-route-mtls-" + Guid.NewGuid().ToString("N"));
    private NginxUpstream _nginx = null!;
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        (X509Certificate2 listenerCa, ECDsa listenerKey) = ClientCertificates.MakeCa("CN=Listener Client CA");
        (X509Certificate2 tenantCa, ECDsa tenantKey) = ClientCertificates.MakeCa("CN=Tenant T Client CA");
        (X509Certificate2 otherCa, ECDsa otherKey) = ClientCertificates.MakeCa("CN=Nobody's CA");
        await File.WriteAllTextAsync(Path.Combine(_dir, "listener-ca.pem"), listenerCa.ExportCertificatePem());
        await File.WriteAllTextAsync(Path.Combine(_dir, "tenant-ca.pem"), tenantCa.ExportCertificatePem());
        ClientCertificates.Write(_dir, "operator", "CN=operator-client", listenerCa, listenerKey, new Uri("spiffe://example.test/operator"), "operator@example.test");
        ClientCertificates.Write(_dir, "tenant", "CN=tenant-client", tenantCa, tenantKey, new Uri("spiffe://example.test/tenant"), "tenant@example.test");
        ClientCertificates.Write(_dir, "stranger", "CN=stranger", otherCa, otherKey, new Uri("spiffe://example.test/stranger"), "stranger@example.test");

        _nginx = await NginxUpstream.StartAsync();
        string Route(string id, string host, string clientCertificates, string tenant = "") => $$"""
            { "id": "{{id}}", {{tenant}} "match": { "hosts": ["{{host}}"], "path": "/echo" }, "cluster": "nginx",
              "transforms": { "clientCertificateHeader": "X-Custom" }{{clientCertificates}} },
            """;
        _server = await TestServer.StartAsync($$"""
        {
          "server": { "stateDirectory": "state" },
          "listeners": [
            { "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "localhost",
              "clientCertificates": { "mode": "optional", "caFile": "{{_dir}}/listener-ca.pem" } }
          ],
          "tenants": [ { "id": "t", "hosts": ["tenant.test"], "clientCertificates": { "caFile": "{{_dir}}/tenant-ca.pem" } } ],
          "certificates": [
            { "name": "localhost", "hosts": ["localhost"], "certificatePath": "{{TestCertificates.Cert("localhost")}}", "keyPath": "{{TestCertificates.Key("localhost")}}" }
          ],
          "clusters": [ { "id": "nginx", "destinations": [ { "address": "{{_nginx.Address}}" } ] } ],
          "routes": [
            {{Route("required", "required.test", """, "clientCertificates": { "mode": "required" }""")}}
            {{Route("tenant-required", "tenant.test", """, "clientCertificates": { "mode": "required" }""", "\"tenant\": \"t\",")}}
            {{Route("route-ca", "route-ca.test", $$""", "clientCertificates": { "mode": "required", "caFile": "{{_dir}}/tenant-ca.pem" }""")}}
            {{Route("optional", "optional.test", """, "clientCertificates": { "mode": "optional" }""")}}
            {{Route("off", "off.test", "")}}
          ]
        }
        """);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _nginx.DisposeAsync();
    }

    private Task<Peer.Result> Curl(string host, string? client, string protocol = "--http2")
    {
        int port = _server.HttpsPort;
        var args = new List<string> { "-k", "-i", protocol, "--resolve", $"{host}:{port}:127.0.0.1", "-H", "X-Custom: forged" };
        if (client is not null)
        {
            args.AddRange(["--cert", Path.Combine(_dir, client + ".crt"), "--key", Path.Combine(_dir, client + ".key")]);
        }

        args.Add($"https://{host}:{port}/echo");
        return Peer.CurlAsync([.. args]);
    }

    private static void AssertStatus(Peer.Result r, int status)
    {
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Matches($"^HTTP/[0-9.]+ {status}", r.Stdout);
    }

    [Theory]
    [InlineData("--http1.1")]
    [InlineData("--http2")]
    public async Task Required_with_a_trusted_certificate_reaches_the_upstream_with_the_identity(string protocol)
    {
        Peer.Result r = await Curl("required.test", "operator", protocol);

        AssertStatus(r, 200);
        Assert.Contains("custom=Hash=", r.Stdout);
        Assert.Contains("Subject=\"CN=operator-client\";URI=spiffe://example.test/operator;DNS=operator-client.clients.test|", r.Stdout);
        Assert.DoesNotContain("forged", r.Stdout);
    }

    [Theory]
    [InlineData("--http1.1")]
    [InlineData("--http2")]
    public async Task Required_without_a_certificate_is_403_problem_json(string protocol)
    {
        Peer.Result r = await Curl("required.test", null, protocol);

        AssertStatus(r, 403);
        Assert.Contains("content-type: application/problem+json", r.Stdout, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("\"detail\":\"client certificate required\"", r.Stdout);
        Assert.DoesNotContain("xff=", r.Stdout);
        await _server.Host.Logs.WaitForLineAsync(0, "route required: 403, client certificate required but none was sent");
    }

    [Fact]
    public async Task A_tenant_route_trusts_the_tenants_ca_not_the_listeners()
    {
        Peer.Result tenant = await Curl("tenant.test", "tenant");
        AssertStatus(tenant, 200);
        Assert.Contains("Subject=\"CN=tenant-client\";URI=spiffe://example.test/tenant;DNS=tenant-client.clients.test|", tenant.Stdout);

        Peer.Result operatorOnly = await Curl("tenant.test", "operator");
        AssertStatus(operatorOnly, 403);
        Assert.Contains("\"detail\":\"client certificate not trusted for this route\"", operatorOnly.Stdout);
        Assert.DoesNotContain("xff=", operatorOnly.Stdout);
        await _server.Host.Logs.WaitForLineAsync(0, "route tenant-required: 403, client certificate 'CN=operator-client' refused");
    }

    [Fact]
    public async Task A_routes_own_ca_file_is_its_ca_set()
    {
        AssertStatus(await Curl("route-ca.test", "tenant"), 200);
        AssertStatus(await Curl("route-ca.test", "operator"), 403);
        // And the tenant's CA, accepted in the handshake, is no good for a route that uses the listener's.
        AssertStatus(await Curl("required.test", "tenant"), 403);
    }

    [Theory]
    [InlineData("optional.test")]
    [InlineData("off.test")]
    public async Task Optional_and_off_routes_serve_with_or_without_a_certificate(string host)
    {
        Peer.Result none = await Curl(host, null);
        AssertStatus(none, 200);
        Assert.Contains("custom=|", none.Stdout);

        Peer.Result trusted = await Curl(host, "operator");
        AssertStatus(trusted, 200);
        Assert.Contains("Subject=\"CN=operator-client\"", trusted.Stdout);

        // Accepted in the handshake for the tenant's routes, but not trusted by these routes' CAs: no identity.
        Peer.Result tenant = await Curl(host, "tenant");
        AssertStatus(tenant, 200);
        Assert.Contains("custom=|", tenant.Stdout);
    }

    [Fact]
    public async Task A_certificate_no_configured_ca_issued_is_refused_in_the_handshake()
    {
        Peer.Result r = await Curl("off.test", "stranger");

        Assert.NotEqual(0, r.ExitCode);
        Assert.DoesNotContain("xff=", r.Stdout);
    }
}

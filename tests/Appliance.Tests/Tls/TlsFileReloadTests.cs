using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Appliance.Config;
using Appliance.Proxy;
using Appliance.Tests.Support;

namespace Appliance.Tests.Tls;

/// <summary>
/// TLS files other than the served certificates follow their files too: a listener's client CA bundle and a cluster's
/// upstream CA bundle, rewritten in place, are taken by the running process without a restart (the watcher's reload,
/// seen in its log line), and the compiler rebuilds a cluster exactly when its upstream TLS files changed.
/// </summary>
public sealed class TlsFileReloadTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-tlsfiles-" + Guid.NewGuid().ToString("N"));
    private X509Certificate2 _ca1 = null!, _ca2 = null!;
    private ECDsa _key1 = null!, _key2 = null!;

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        (_ca1, _key1) = ClientCertificates.MakeCa("CN=First Client CA");
        (_ca2, _key2) = ClientCertificates.MakeCa("CN=Second Client CA");
        ClientCertificates.Write(_dir, "one", "CN=client-one", _ca1, _key1);
        ClientCertificates.Write(_dir, "two", "CN=client-two", _ca2, _key2);
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        _ca1.Dispose();
        _ca2.Dispose();
        _key1.Dispose();
        _key2.Dispose();
        return Task.CompletedTask;
    }

    private string File(string name) => Path.Combine(_dir, name);

    private async Task<ApplianceProcess> StartAsync(string listeners, string clusters, string routes)
    {
        string config = File("appliance.json");
        await System.IO.File.WriteAllTextAsync(config, $$"""
        {
          "server": { "stateDirectory": "state" },
          "admin": { "socketPath": "{{File("admin.sock")}}" },
          "listeners": [ {{listeners}} ],
          "certificates": [ { "name": "localhost", "hosts": ["localhost"], "certificatePath": "{{TestCertificates.Cert("localhost")}}", "keyPath": "{{TestCertificates.Key("localhost")}}" } ],
          "clusters": [ {{clusters}} ],
          "routes": [ {{routes}} ]
        }
        """);
        return ApplianceProcess.Start("run", "--config", config);
    }

    [Fact]
    public async Task A_listener_client_ca_bundle_rewritten_in_place_is_taken_without_a_restart()
    {
        await System.IO.File.WriteAllTextAsync(File("cas.pem"), _ca1.ExportCertificatePem());
        await using ApplianceProcess app = await StartAsync(
            $$"""{ "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "localhost", "clientCertificates": { "mode": "required", "caFile": "{{File("cas.pem")}}" } }""",
            "", """{ "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "body": "hello" } }""");
        int port = int.Parse((await app.WaitForLineAsync(@"listener https: https://127\.0\.0\.1:(\d+)")).Groups[1].Value);
        Task<Peer.Result> Curl(string client) => Peer.CurlAsync("-k", "--resolve", $"localhost:{port}:127.0.0.1",
            "--cert", File(client + ".crt"), "--key", File(client + ".key"), $"https://localhost:{port}/");

        Assert.Equal("hello", (await Curl("one")).Stdout);
        Assert.NotEqual("hello", (await Curl("two")).Stdout); // its CA is not in the bundle yet

        await System.IO.File.WriteAllTextAsync(File("cas.pem"), _ca1.ExportCertificatePem() + "\n" + _ca2.ExportCertificatePem());
        await app.WaitForLineAsync(@"certificates reloaded \(.*\): files re-read: .*cas\.pem");

        Peer.Result two = await Curl("two");
        Assert.True(two.Stdout == "hello", two.All + app.Output);
        Assert.Equal("hello", (await Curl("one")).Stdout);
    }

    [Fact]
    public async Task An_upstream_ca_bundle_rewritten_in_place_rebuilds_the_cluster_without_a_restart()
    {
        await using NginxUpstream nginx = await NginxUpstream.StartAsync();
        await System.IO.File.WriteAllTextAsync(File("upstream-ca.pem"), _ca1.ExportCertificatePem()); // not nginx's issuer
        await using ApplianceProcess app = await StartAsync(
            """{ "name": "http", "address": "127.0.0.1:0", "tls": false }""",
            $$"""{ "id": "tls", "destinations": [ { "address": "127.0.0.1:{{nginx.TlsPort}}" } ], "tls": { "caFile": "{{File("upstream-ca.pem")}}", "serverName": "localhost" }, "healthCheck": { "passive": { "consecutiveFailures": 0 } } }""",
            """{ "id": "up", "match": { "pathPrefix": "/" }, "cluster": "tls" }""");
        int port = int.Parse((await app.WaitForLineAsync(@"listener http: http://127\.0\.0\.1:(\d+)")).Groups[1].Value);
        Task<Peer.Result> Curl() => Peer.CurlAsync("-w", "|%{http_code}", $"http://127.0.0.1:{port}/");

        Assert.EndsWith("|502", (await Curl()).Stdout); // the upstream's certificate does not chain to that CA

        await System.IO.File.WriteAllTextAsync(File("upstream-ca.pem"), await System.IO.File.ReadAllTextAsync(TestCertificates.Cert("localhost")));
        await app.WaitForLineAsync(@"certificates reloaded \(.*cluster tls: upstream TLS files reloaded");

        Peer.Result r = await Curl();
        Assert.True(r.Stdout == "tls-ok sni=localhost|200", r.All + app.Output);
    }

    [Fact]
    public async Task The_compiler_carries_a_cluster_over_unless_its_upstream_tls_files_changed()
    {
        string ca = File("compile-ca.pem");
        await System.IO.File.WriteAllTextAsync(ca, _ca1.ExportCertificatePem());
        ApplianceConfig config = ConfigLoader.Parse(System.Text.Encoding.UTF8.GetBytes(TestServer.DefaultConfig().Replace("\"routes\": [", $$"""
            "clusters": [ { "id": "c", "destinations": [ { "address": "127.0.0.1:9" } ], "tls": { "caFile": "{{ca}}" } } ],
            "routes": [ { "id": "to-c", "match": { "pathPrefix": "/c" }, "cluster": "c" },
            """)));
        ConfigSnapshot first = ConfigCompiler.Compile(config, _dir);
        Assert.Contains(ca, first.TlsFiles.Keys);
        Assert.Contains(TestCertificates.Cert("localhost"), first.TlsFiles.Keys);

        ConfigSnapshot same = ConfigCompiler.Compile(config, _dir, previous: first);
        ClusterModel kept = Assert.Single(same.Clusters);
        Assert.Same(Assert.Single(first.Clusters), kept);

        await System.IO.File.WriteAllTextAsync(ca, _ca1.ExportCertificatePem() + "\n" + _ca2.ExportCertificatePem());
        ConfigSnapshot rotated = ConfigCompiler.Compile(config, _dir, previous: same);
        ClusterModel rebuilt = Assert.Single(rotated.Clusters);
        Assert.NotSame(kept, rebuilt);
        Assert.Equal(2, rebuilt.Tls!.TrustedCertificates!.Count);
        Assert.NotEqual(same.TlsFiles[ca], rotated.TlsFiles[ca]);

        kept.Dispose();
        rebuilt.Dispose();
    }
}

using System.Net;
using Appliance.Config;
using Appliance.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Tests.Support;

/// <summary>
/// The real gateway (GatewayHost: sockets, TLS, HTTP engine, routing) started in-process on port 0 from a
/// config; ports are read back from the bound sockets.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly GatewayHost _host;

    private TestServer(GatewayHost host)
    {
        _host = host;
    }

    /// <summary>
    /// The standard test config: "https" (TLS, certificates localhost/alpha.test/*.wild.test) and "http" (plain);
    /// <paramref name="httpProtocols"/> sets the plain listener's "protocols" (list "h2" for h2c prior knowledge).
    /// </summary>
    public static string DefaultConfig(string extraRoutes = "", string httpsLimits = "{}", bool redirect = false, string[]? httpProtocols = null) => $$"""
    {
      "server": { "stateDirectory": "state", "shutdownTimeout": "5s" },
      "listeners": [
        { "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "localhost", "limits": {{httpsLimits}} },
        { "name": "http", "address": "127.0.0.1:0", "tls": false, "redirectToHttps": {{(redirect ? "true" : "false")}}, "httpsPort": 8443, "limits": {{httpsLimits}}{{ProtocolsJson(httpProtocols)}} }
      ],
      "certificates": [
        { "name": "localhost", "hosts": ["localhost"], "certificatePath": "{{Escape(TestCertificates.Cert("localhost"))}}", "keyPath": "{{Escape(TestCertificates.Key("localhost"))}}" },
        { "name": "alpha", "hosts": ["alpha.test"], "certificatePath": "{{Escape(TestCertificates.Cert("alpha"))}}", "keyPath": "{{Escape(TestCertificates.Key("alpha"))}}" },
        { "name": "wild", "hosts": ["*.wild.test"], "certificatePath": "{{Escape(TestCertificates.Cert("wild"))}}", "keyPath": "{{Escape(TestCertificates.Key("wild"))}}" }
      ],
      "routes": [
        {{extraRoutes}}
        { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "contentType": "text/plain", "body": "Hello, World!" } },
        { "id": "echo-ok", "match": { "pathPrefix": "/upload" }, "direct": { "status": 200, "body": "uploaded" } },
        { "id": "user", "match": { "path": "/users/{id}", "methods": ["GET"] }, "direct": { "status": 200, "body": "user" } },
        { "id": "old", "match": { "path": "/old/{**rest}" }, "redirect": { "status": 301, "location": "/new/{rest}{query}" } },
        { "id": "alpha-only", "match": { "hosts": ["alpha.test"], "path": "/" }, "direct": { "status": 200, "body": "alpha" } }
      ]
    }
    """;

    private static string Escape(string s) => s.Replace("\\", "\\\\");

    private static string ProtocolsJson(string[]? protocols) =>
        protocols is null ? "" : $", \"protocols\": [{string.Join(", ", protocols.Select(p => $"\"{p}\""))}]";

    public static async Task<TestServer> StartAsync(string? json = null, ILoggerFactory? loggers = null)
    {
        json ??= DefaultConfig();
        if (!json.Contains("\"admin\"", StringComparison.Ordinal))
        {
            // Tests that do not ask for the admin API must not bind the system default socket.
            json = "{ \"admin\": { \"enabled\": false }," + json.TrimStart()[1..];
        }

        ApplianceConfig config = ConfigLoader.Parse(System.Text.Encoding.UTF8.GetBytes(json));
        // Each server gets its own folder: relative paths (the state directory with its config revisions)
        // never collide between tests running in parallel.
        string baseDirectory = Path.Combine(Path.GetTempPath(), "appliance-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(baseDirectory);
        ConfigSnapshot snapshot = ConfigCompiler.Compile(config, baseDirectory);
        var host = new GatewayHost(new ConfigSource(null, snapshot), loggers ?? NullLoggerFactory.Instance);
        await host.StartAsync(CancellationToken.None);
        return new TestServer(host);
    }

    public GatewayHost Host => _host;

    public int Port(string listener) =>
        _host.Listeners.Single(l => l.Options.Name == listener).Port;

    public int HttpsPort => Port("https");

    public int HttpPort => Port("http");

    public IPEndPoint EndPoint(string listener) => new(IPAddress.Loopback, Port(listener));

    /// <summary>
    /// The access log's lines once it holds <paramref name="expected"/> of them (flushed and read again until then, for
    /// at most 10 s): a request's line is written as it ends, which may be just after its client had the whole response.
    /// </summary>
    public async Task<string[]> AccessLogLinesAsync(int expected)
    {
        string path = _host.AccessLog.Options!.Path;
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            await _host.AccessLog.FlushAsync();
            string[] lines = File.Exists(path) ? await File.ReadAllLinesAsync(path) : [];
            if (lines.Length >= expected || deadline.Elapsed > TimeSpan.FromSeconds(10))
            {
                return lines;
            }

            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _host.StopAsync(cts.Token);
    }
}

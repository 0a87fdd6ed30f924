using System.Net;

namespace Appliance.Tests.Support;

/// <summary>
/// One gateway shared by the HTTP/2 test classes, with a listener per need:
/// "https" (TLS, ALPN h2 and http/1.1, default limits), "h2c" (cleartext, prior knowledge, default limits),
/// "h2c-small" (a 4 KiB stream receive window, so a DATA frame can overrun it deterministically) and
/// "h2c-noread" (control-frame flood limits out of the way and a small output queue, to reach the
/// queued-control-frame cap) and "h2c-table" (a 256-byte HPACK table for the client's requests).
/// </summary>
public sealed class Http2Fixture : IAsyncLifetime
{
    /// <summary>Body of /big: 200,000 bytes of a repeating pattern.</summary>
    public static readonly string BigBody = string.Concat(Enumerable.Range(0, 20_000).Select(i => (i % 10).ToString() + "abcdefghi"));

    /// <summary>Body of /huge: 3,000,000 bytes, more than MaxQueuedOutputBytes (1 MiB) and every window.</summary>
    public static readonly string HugeBody = string.Concat(Enumerable.Repeat(BigBody, 15));

    /// <summary>Body of /medium: 1,000 bytes.</summary>
    public static readonly string MediumBody = BigBody[..1000];

    public TestServer Server { get; private set; } = null!;

    public IPEndPoint Https => Server.EndPoint("https");

    public IPEndPoint H2c => Server.EndPoint("h2c");

    public IPEndPoint H2cSmall => Server.EndPoint("h2c-small");

    public IPEndPoint H2cNoRead => Server.EndPoint("h2c-noread");

    public IPEndPoint H2cTable => Server.EndPoint("h2c-table");

    public static string Config(string shutdownTimeout = "5s") => $$"""
    {
      "server": { "stateDirectory": "{{Escape(Path.GetTempPath())}}", "shutdownTimeout": "{{shutdownTimeout}}" },
      "listeners": [
        { "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "localhost" },
        { "name": "h2c", "address": "127.0.0.1:0", "tls": false, "protocols": ["h2", "http/1.1"] },
        { "name": "h2c-small", "address": "127.0.0.1:0", "tls": false, "protocols": ["h2"],
          "limits": { "http2": { "initialStreamWindowSize": 4096 } } },
        { "name": "h2c-noread", "address": "127.0.0.1:0", "tls": false, "protocols": ["h2"],
          "limits": { "http2": { "maxControlFramesPerInterval": 100000000, "maxQueuedOutputBytes": 16384 } } },
        { "name": "h2c-table", "address": "127.0.0.1:0", "tls": false, "protocols": ["h2"],
          "limits": { "http2": { "headerTableSize": 256 } } }
      ],
      "certificates": [
        { "name": "localhost", "hosts": ["localhost"], "certificatePath": "{{Escape(TestCertificates.Cert("localhost"))}}", "keyPath": "{{Escape(TestCertificates.Key("localhost"))}}" }
      ],
      "routes": [
        { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "contentType": "text/plain", "body": "Hello, World!" } },
        { "id": "upload", "match": { "pathPrefix": "/upload" }, "direct": { "status": 200, "body": "uploaded" } },
        { "id": "big", "match": { "path": "/big" }, "direct": { "status": 200, "contentType": "text/plain", "body": "{{BigBody}}" } },
        { "id": "huge", "match": { "path": "/huge" }, "direct": { "status": 200, "contentType": "text/plain", "body": "{{HugeBody}}" } },
        { "id": "bigheaders", "match": { "path": "/bigheaders" }, "direct": { "status": 200, "body": "ok", "headers": { "X-Large": "{{new string('h', 40_000)}}" } } },
        { "id": "medium", "match": { "path": "/medium" }, "direct": { "status": 200, "contentType": "text/plain", "body": "{{MediumBody}}" } },
        { "id": "user", "match": { "path": "/users/{id}", "methods": ["GET"] }, "direct": { "status": 200, "body": "user", "headers": { "Cache-Control": "no-store", "X-Custom": "Mixed-Case" } } }
      ]
    }
    """;

    private static string Escape(string s) => s.Replace("\\", "\\\\");

    public async Task InitializeAsync() => Server = await TestServer.StartAsync(Config());

    public async Task DisposeAsync() => await Server.DisposeAsync();

    /// <summary>A raw client on <paramref name="endPoint"/> (TLS when it is the https listener), handshake done.</summary>
    public async Task<RawH2Client> ConnectAsync(IPEndPoint? endPoint = null, params Appliance.Protocol.Http2.Http2Setting[] settings)
    {
        endPoint ??= H2c;
        RawH2Client client = await RawH2Client.ConnectAsync(endPoint, tls: endPoint.Port == Https.Port);
        await client.HandshakeAsync(settings);
        return client;
    }
}

[CollectionDefinition(Name)]
public sealed class Http2Collection : ICollectionFixture<Http2Fixture>
{
    public const string Name = "HTTP/2 server";
}

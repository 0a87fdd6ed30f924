using System.IO.Pipelines;
using System.Net;
using Appliance.Routing;
using Appliance.Server;
using Appliance.Transport;

namespace Appliance.Tests.Support;

/// <summary>
/// One gateway shared by the HTTP/2 test classes, with a listener per need:
/// "https" (TLS, ALPN h2 and http/1.1, default limits), "h2c" (cleartext, prior knowledge, default limits),
/// "h2c-small" (a 4 KiB stream receive window, so a DATA frame can overrun it deterministically) and
/// "h2c-noread" (control-frame flood limits out of the way and a small output queue, to reach the
/// queued-control-frame cap) and "h2c-table" (a 256-byte HPACK table for the client's requests).
/// Two more h2c listeners are built in code, on the same HttpConnection engine and the gateway's routes plus two
/// test routes (/8m, /echo): "timeouts" (<see cref="TimeoutLimits"/>: one-second timeouts, and StreamSendTimeout,
/// which has no config field yet; its heartbeat ticks every 250 ms so the timeouts fire promptly) and "direct"
/// (default limits, for the 8 MiB response: in the config it would be copied into every recorded config revision).
/// </summary>
public sealed class Http2Fixture : IAsyncLifetime
{
    /// <summary>Limits of the "timeouts" listener.</summary>
    public static readonly ServerLimits TimeoutLimits = new()
    {
        RequestHeadersTimeout = TimeSpan.FromSeconds(1),
        KeepAliveTimeout = TimeSpan.FromSeconds(1),
        MinRequestBodyRate = 1000,
        MinRequestBodyRateGracePeriod = TimeSpan.FromSeconds(1),
        Http2 = new Http2Limits { StreamSendTimeout = TimeSpan.FromSeconds(1) },
    };

    /// <summary>Body of /big: 200,000 bytes of a repeating pattern.</summary>
    public static readonly string BigBody = string.Concat(Enumerable.Range(0, 20_000).Select(i => (i % 10).ToString() + "abcdefghi"));

    /// <summary>Body of /huge: 3,000,000 bytes, more than MaxQueuedOutputBytes (1 MiB) and every window.</summary>
    public static readonly string HugeBody = string.Concat(Enumerable.Repeat(BigBody, 15));

    /// <summary>Body of /medium: 1,000 bytes.</summary>
    public static readonly string MediumBody = BigBody[..1000];

    /// <summary>Body of /8m on the code-built listeners: 8 MiB of printable ASCII (so a peer's stdout can be compared).</summary>
    public static readonly byte[] EightMiB = [.. Enumerable.Range(0, 8 * 1024 * 1024).Select(i => (byte)('a' + ((i / 7) % 26)))];

    private readonly ConnectionRegistry _registry = new(period: TimeSpan.FromMilliseconds(250));
    private readonly List<SocketListener> _codeListeners = [];

    public TestServer Server { get; private set; } = null!;

    public IPEndPoint Https => Server.EndPoint("https");

    public IPEndPoint H2c => Server.EndPoint("h2c");

    public IPEndPoint H2cSmall => Server.EndPoint("h2c-small");

    public IPEndPoint H2cNoRead => Server.EndPoint("h2c-noread");

    public IPEndPoint H2cTable => Server.EndPoint("h2c-table");

    /// <summary>h2c with <see cref="TimeoutLimits"/>.</summary>
    public IPEndPoint H2cTimeouts { get; private set; } = null!;

    /// <summary>h2c with default limits, serving /8m and /echo besides the routes.</summary>
    public IPEndPoint H2cDirect { get; private set; } = null!;

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

    public async Task InitializeAsync()
    {
        Server = await TestServer.StartAsync(Config());
        H2cTimeouts = StartCodeListener("timeouts", TimeoutLimits);
        H2cDirect = StartCodeListener("direct", new ServerLimits());
    }

    public async Task DisposeAsync()
    {
        foreach (SocketListener listener in _codeListeners)
        {
            await listener.DisposeAsync();
        }

        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            await _registry.DrainAsync(cts.Token);
        }

        _registry.Dispose();
        await Server.DisposeAsync();
    }

    private IPEndPoint StartCodeListener(string name, ServerLimits limits)
    {
        var dispatcher = new TestRoutes(new RouteDispatcher(() => Server.Host.Snapshot.Routes));
        var runtime = new ListenerRuntime(name, new ListenerRuntime.State(null, limits, dispatcher, Http2Enabled: true));
        SocketListener listener = CodeListener.Start(runtime, _registry, backlog: 512, maxConnections: 10_000);
        _codeListeners.Add(listener);
        return new IPEndPoint(IPAddress.Loopback, listener.Port);
    }

    /// <summary>
    /// The gateway's routes, plus /8m (<see cref="EightMiB"/>) and /echo: a response that starts (HEADERS) before the
    /// request body is read, then carries the body back as it arrives.
    /// </summary>
    private sealed class TestRoutes(IRequestDispatcher routes) : IRequestDispatcher
    {
        public ValueTask DispatchAsync(RequestContext context) => context.PathString switch
        {
            "/8m" => context.RespondAsync(200, "application/octet-stream"u8, EightMiB),
            "/echo" => EchoAsync(context),
            _ => routes.DispatchAsync(context),
        };

        private static async ValueTask EchoAsync(RequestContext context)
        {
            context.StatusCode = 200;
            await context.FlushAsync();
            while (true)
            {
                ReadResult read = await context.Body.ReadAsync();
                foreach (ReadOnlyMemory<byte> segment in read.Buffer)
                {
                    await context.WriteAsync(segment);
                }

                context.Body.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    break;
                }
            }

            await context.CompleteAsync();
        }
    }

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

/// <summary>
/// The timeout tests mostly wait for the server's own timeouts: with a gateway of their own they run beside the
/// other HTTP/2 tests instead of after them.
/// </summary>
[CollectionDefinition(Name)]
public sealed class Http2TimeoutCollection : ICollectionFixture<Http2Fixture>
{
    public const string Name = "HTTP/2 timeouts";
}

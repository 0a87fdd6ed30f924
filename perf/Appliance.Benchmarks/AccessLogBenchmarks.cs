using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using Appliance.Server;
using Appliance.Telemetry;
using BenchmarkDotNet.Attributes;
using HttpMethod = Appliance.Protocol.Http1.HttpMethod;
using HttpVersion = Appliance.Protocol.Http1.HttpVersion;

namespace Appliance.Benchmarks;

/// <summary>
/// What the access log costs a request's thread: formatting a proxied HTTP/2 request's line (every field filled: TLS,
/// SNI, upstream, request id, user agent, referer) and handing it to the writer's queue. The writer thread runs
/// meanwhile, writing to /dev/null (no rotation), so the allocation column (process-wide) covers both sides; the
/// steady state must be 0 B.
/// </summary>
[MemoryDiagnoser]
public class AccessLogBenchmarks
{
    private AccessLog _log = null!;
    private RequestContext _context = null!;

    [Params(AccessLogFormat.Json, AccessLogFormat.Combined)]
    public AccessLogFormat Format { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _log = new AccessLog();
        _log.Configure(new AccessLogOptions("/dev/null", Format, MaxSize: 0, MaxFiles: 1, Lz4: false));
        var info = new ConnectionInfo
        {
            Id = 4711,
            ListenerName = "https",
            RemoteEndPoint = new IPEndPoint(IPAddress.Parse("203.0.113.7"), 52114),
            LocalEndPoint = null,
            IsTls = true,
            ServerName = "api.example.com",
            TlsProtocol = SslProtocols.Tls13,
            CipherSuite = TlsCipherSuite.TLS_AES_128_GCM_SHA256,
            TlsResumed = true,
        };
        _context = new RequestContext(info) { Version = HttpVersion.Http2 };
        _context.SetMethod(HttpMethod.Get, "GET"u8);
        _context.SetTarget("/api/items?page=2&sort=name"u8);
        _context.SetAuthority("api.example.com"u8);
        _context.RequestHeaders.Add(KnownHeader.UserAgent, "user-agent"u8, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"u8);
        _context.RequestHeaders.Add(KnownHeader.Referer, "referer"u8, "https://www.example.com/shop/cart?x=\"1\""u8);
        _context.SetGeneratedRequestId("0af7651916cd43dd8448eb211c80319c"u8);
        _context.RouteId = "api";
        _context.UpstreamCluster = "origin";
        _context.UpstreamAddress = "10.0.0.12:8080";
        _context.UpstreamStatus = 200;
        _context.UpstreamHeaderTicks = 1_234_567;
        _context.StatusCode = 200;
        _context.StartTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();
    }

    [GlobalCleanup]
    public void Cleanup() => _log.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [Benchmark]
    public long FormatAndEnqueue()
    {
        _log.Record(_context, 3, 0);
        return _log.Lines;
    }
}

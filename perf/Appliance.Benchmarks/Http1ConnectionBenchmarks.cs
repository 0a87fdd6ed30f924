using System.Text;
using Appliance.Server;
using BenchmarkDotNet.Attributes;

namespace Appliance.Benchmarks;

/// <summary>
/// The whole HTTP/1.1 keep-alive path — parse, route, direct handler, response writer — over in-memory pipes:
/// one request in, one response out per operation. The allocation column proves the steady state allocates nothing.
/// </summary>
[MemoryDiagnoser]
public class Http1ConnectionBenchmarks
{
    private static readonly byte[] s_request = Encoding.ASCII.GetBytes(
        "GET /hello HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n" +
        "Accept-Language: en\r\nConnection: keep-alive\r\nCookie: a=b\r\nReferer: https://localhost/\r\n" +
        "Cache-Control: no-cache\r\nX-Request-Id: 123\r\n\r\n");

    private InlineHttp1Connection _connection = null!;

    [GlobalSetup]
    public void Setup()
    {
        _connection = new InlineHttp1Connection("""
        { "listeners": [ { "name": "b", "address": "127.0.0.1:0", "tls": false } ],
          "routes": [ { "id": "hello", "match": { "pathPrefix": "/" }, "direct": { "status": 200, "contentType": "text/plain", "body": "Hello, World!" } } ] }
        """);
        long first = KeepAliveRequest();
        if (first < 100)
        {
            throw new InvalidOperationException($"no response came out inline ({first} bytes)");
        }
    }

    [Benchmark]
    public long KeepAliveRequest() => _connection.RoundTrip(s_request);
}

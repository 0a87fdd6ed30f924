using System.Text;
using Appliance.Server;
using BenchmarkDotNet.Attributes;

namespace Appliance.Benchmarks;

/// <summary>
/// The HTTP/1.1 response head as <see cref="Http1Connection"/> writes it (status line, Date, Server, the response's
/// fields, Content-Length) for responses carrying 0, 8 and 16 fields: a minimal request through the real connection
/// to a direct route whose configured headers are copied into the response each time. The request side is the same
/// for every case, so the difference between the cases is the cost of the field lines (copy in + write out); the
/// allocation column shows the head writer allocates nothing however many fields it writes.
/// </summary>
[MemoryDiagnoser]
public class Http1ResponseHeadBenchmarks
{
    private static readonly byte[] s_request = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");

    // Fields of a typical proxied API response.
    private static readonly (string Name, string Value)[] s_fields =
    [
        ("Cache-Control", "private, max-age=0, must-revalidate"), ("ETag", "\"5f2c-1b0a3e9d7c44\""),
        ("Last-Modified", "Sun, 29 Nov 2026 00:00:00 GMT"), ("Vary", "Accept-Encoding, Origin"),
        ("X-Request-Id", "0af7651916cd43dd8448eb211c80319c"), ("X-Content-Type-Options", "nosniff"),
        ("Access-Control-Allow-Origin", "https://app.example.com"), ("Set-Cookie", "sid=5b8f0c2e; Path=/; Secure; HttpOnly; SameSite=Lax"),
        ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"), ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ("X-Frame-Options", "DENY"), ("Permissions-Policy", "geolocation=(), camera=()"),
        ("Timing-Allow-Origin", "*"), ("X-Served-By", "appliance"), ("Age", "0"), ("X-Cache", "MISS"),
    ];

    private InlineHttp1Connection _connection = null!;

    [Params(0, 8, 16)]
    public int Fields { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        string headers = string.Join(", ", s_fields.Take(Fields).Select(f => $"\"{f.Name}\": \"{f.Value.Replace("\"", "\\\"")}\""));
        _connection = new InlineHttp1Connection($$"""
        { "listeners": [ { "name": "b", "address": "127.0.0.1:0", "tls": false } ],
          "routes": [ { "id": "r", "match": { "pathPrefix": "/" },
                        "direct": { "status": 200, "contentType": "application/json", "body": "{}", "headers": { {{headers}} } } } ] }
        """);
        long length = Response();
        if (length < 100 + Fields * 10)
        {
            throw new InvalidOperationException($"no whole response came out inline ({length} bytes)");
        }
    }

    [Benchmark]
    public long Response() => _connection.RoundTrip(s_request);
}

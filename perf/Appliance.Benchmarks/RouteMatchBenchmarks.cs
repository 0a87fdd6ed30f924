using System.Text;
using Appliance.Config;
using Appliance.Protocol.Http1;
using Appliance.Routing;
using Appliance.Server;
using BenchmarkDotNet.Attributes;

namespace Appliance.Benchmarks;

/// <summary>
/// Route matching against a table the size of a busy gateway: 204 routes compiled from config by
/// <see cref="ConfigCompiler"/> (20 exact hosts with 8 routes each — exact paths, templates, prefixes, method
/// lists — 4 wildcard hosts with 6 routes each, 20 host-less routes), matched for requests already parsed into a
/// <see cref="RequestContext"/>. Lookup works on the request's host and path bytes: every case must allocate 0 B.
/// </summary>
[MemoryDiagnoser]
public class RouteMatchBenchmarks
{
    private RouteTable _table = null!;
    private RequestContext _template = null!;
    private RequestContext _wildcardPrefix = null!;
    private RequestContext _anyHostExact = null!;
    private RequestContext _notFound = null!;

    [GlobalSetup]
    public void Setup()
    {
        var routes = new List<string>();
        for (int h = 0; h < 20; h++)
        {
            string host = $"\"api{h}.example.com\"";
            routes.Add($$"""{ "id": "h{{h}}-health", "match": { "hosts": [{{host}}], "path": "/health" }, "direct": {} }""");
            routes.Add($$"""{ "id": "h{{h}}-user", "match": { "hosts": [{{host}}], "path": "/users/{id}", "methods": ["GET", "PUT", "DELETE"] }, "direct": {} }""");
            routes.Add($$"""{ "id": "h{{h}}-orders", "match": { "hosts": [{{host}}], "path": "/users/{id}/orders/{orderId}" }, "direct": {} }""");
            routes.Add($$"""{ "id": "h{{h}}-items", "match": { "hosts": [{{host}}], "path": "/v1/items/{id}", "methods": ["GET"] }, "direct": {} }""");
            routes.Add($$"""{ "id": "h{{h}}-files", "match": { "hosts": [{{host}}], "path": "/files/{**rest}" }, "direct": {} }""");
            routes.Add($$"""{ "id": "h{{h}}-v1", "match": { "hosts": [{{host}}], "pathPrefix": "/v1" }, "direct": {} }""");
            routes.Add($$"""{ "id": "h{{h}}-static", "match": { "hosts": [{{host}}], "pathPrefix": "/static" }, "direct": {} }""");
            routes.Add($$"""{ "id": "h{{h}}-root", "match": { "hosts": [{{host}}], "pathPrefix": "/" }, "direct": {} }""");
        }

        for (int w = 0; w < 4; w++)
        {
            string host = $"\"*.t{w}.example.net\"";
            routes.Add($$"""{ "id": "w{{w}}-login", "match": { "hosts": [{{host}}], "path": "/login", "methods": ["POST"] }, "direct": {} }""");
            routes.Add($$"""{ "id": "w{{w}}-doc", "match": { "hosts": [{{host}}], "path": "/docs/{section}/{page}" }, "direct": {} }""");
            routes.Add($$"""{ "id": "w{{w}}-api", "match": { "hosts": [{{host}}], "pathPrefix": "/api/v2" }, "direct": {} }""");
            routes.Add($$"""{ "id": "w{{w}}-assets", "match": { "hosts": [{{host}}], "pathPrefix": "/assets" }, "direct": {} }""");
            routes.Add($$"""{ "id": "w{{w}}-me", "match": { "hosts": [{{host}}], "path": "/me" }, "direct": {} }""");
            routes.Add($$"""{ "id": "w{{w}}-root", "match": { "hosts": [{{host}}], "pathPrefix": "/" }, "direct": {} }""");
        }

        for (int a = 0; a < 20; a++)
        {
            routes.Add($$"""{ "id": "any{{a}}", "match": { "path": "/shared/s{{a}}/{name}" }, "direct": {} }""");
        }

        routes.Add("""{ "id": "any-status", "match": { "path": "/status" }, "direct": {} }""");
        string json = $$"""
        { "listeners": [ { "name": "b", "address": "127.0.0.1:0", "tls": false } ],
          "routes": [ {{string.Join(",\n", routes)}} ] }
        """;
        ConfigSnapshot snapshot = ConfigCompiler.Compile(ConfigLoader.Parse(Encoding.UTF8.GetBytes(json)), Path.GetTempPath());
        _table = snapshot.Routes;
        if (_table.Routes.Count < 200)
        {
            throw new InvalidOperationException($"expected ~200 routes, compiled {_table.Routes.Count}");
        }

        _template = Request("api13.example.com", "/users/12345/orders/987", "h13-orders");
        _wildcardPrefix = Request("acme.t2.example.net", "/api/v2/invoices/2026/11", "w2-api");
        _anyHostExact = Request("unknown.example.org", "/status", "any-status");
        _notFound = Request("unknown.example.org", "/nothing/here", null);
    }

    /// <summary>Exact host, two-parameter template, after the host's exact paths and shorter templates.</summary>
    [Benchmark(Baseline = true)]
    public RouteTable.MatchResult ExactHostTemplate() => _table.Match(_template, out _, out _);

    /// <summary>Wildcard host ("*.t2.example.net"), segment-boundary prefix.</summary>
    [Benchmark]
    public RouteTable.MatchResult WildcardHostPrefix() => _table.Match(_wildcardPrefix, out _, out _);

    /// <summary>Unknown host, so every host group is missed and the host-less routes are scanned to their last.</summary>
    [Benchmark]
    public RouteTable.MatchResult AnyHostExact() => _table.Match(_anyHostExact, out _, out _);

    /// <summary>Nothing matches: the 404 path, the longest scan.</summary>
    [Benchmark]
    public RouteTable.MatchResult NotFound() => _table.Match(_notFound, out _, out _);

    private RequestContext Request(string host, string target, string? expected)
    {
        var context = new RequestContext(new ConnectionInfo { Id = 1, ListenerName = "b", RemoteEndPoint = null, LocalEndPoint = null });
        context.SetMethod(HttpMethod.Get, "GET"u8);
        context.SetTarget(Encoding.ASCII.GetBytes(target));
        context.ParseTarget(out _, out _, out _);
        context.SetAuthority(Encoding.ASCII.GetBytes(host));
        RouteTable.MatchResult result = _table.Match(context, out RouteModel? route, out _);
        if (route?.Id != expected)
        {
            throw new InvalidOperationException($"{host}{target}: matched {route?.Id ?? result.ToString()}, expected {expected ?? "none"}");
        }

        return context;
    }
}

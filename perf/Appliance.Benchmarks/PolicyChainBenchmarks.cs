using System.Net;
using System.Text;
using Appliance.Config;
using Appliance.Policies;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using Appliance.Server;
using BenchmarkDotNet.Attributes;

namespace Appliance.Benchmarks;

/// <summary>
/// A route's policy chain (routes[].policies) as compiled from config, run for a request already parsed: an access
/// list of 16 allowed and 4 denied networks with the client in the last allowed one, and rate limits keyed by the
/// client's address and by a header, set high enough that every request passes (the steady state), plus one that
/// refuses every request; and an API key checked against a state database of 2,000 keys, alone, before a rate
/// limit by consumer, and before a monthly quota with the request counted toward usage. Every case must allocate 0 B.
/// </summary>
[MemoryDiagnoser]
public class PolicyChainBenchmarks
{
    private PolicyChain _access = null!;
    private PolicyChain _rateLimitClient = null!;
    private PolicyChain _rateLimitHeader = null!;
    private PolicyChain _full = null!;
    private PolicyChain _refusing = null!;
    private PolicyChain _apiKey = null!;
    private PolicyChain _apiKeyThenLimit = null!;
    private PolicyChain _apiKeyQuota = null!;
    private PolicyChain _jwt = null!;
    private RequestContext _bearer = null!;
    private RequestContext _request = null!;
    private RequestContext _keyed = null!;
    private PolicyEnvironment _environment = null!;
    private readonly PolicyEnvironment _none = PolicyEnvironment.Empty; // made once, as the dispatcher does
    private string _stateDirectory = null!;

    [GlobalSetup]
    public void Setup()
    {
        string allow = string.Join(", ", Enumerable.Range(0, 16).Select(i => $"\"10.{i}.0.0/16\""));
        const string deny = "\"10.15.99.0/24\", \"192.0.2.0/24\", \"198.51.100.0/24\", \"2001:db8::/32\"";
        const string everyRequest = "\"requests\": 1000000000, \"per\": \"1s\"";
        _access = Compile($$"""{ "access": { "allow": [{{allow}}], "deny": [{{deny}}] } }""");
        _rateLimitClient = Compile($$"""{ "rateLimit": { {{everyRequest}} } }""");
        _rateLimitHeader = Compile($$"""{ "rateLimit": { {{everyRequest}}, "key": "header:X-Api-Key" } }""");
        _full = Compile($$"""{ "access": { "allow": [{{allow}}], "deny": [{{deny}}] }, "rateLimit": { {{everyRequest}} } }""");
        _refusing = Compile("""{ "rateLimit": { "requests": 1, "per": "24h" } }""");

        _request = new RequestContext(new ConnectionInfo
        {
            Id = 1, ListenerName = "b", RemoteEndPoint = new IPEndPoint(IPAddress.Parse("10.15.2.3"), 50000), LocalEndPoint = null,
        });
        _request.SetMethod(HttpMethod.Get, "GET"u8);
        _request.SetTarget("/v1/items/42"u8);
        _request.ParseTarget(out _, out _, out _);
        _request.RequestHeaders.Add(KnownHeader.None, "x-api-key"u8, "k-7f3a9c2e5b1d4086"u8);
        foreach (PolicyChain chain in new[] { _access, _rateLimitClient, _rateLimitHeader, _full })
        {
            if (!chain.RunAsync(_request, _none).Result.Passed)
            {
                throw new InvalidOperationException("a passing chain refused the request");
            }
        }

        // A state database with 2,000 keys, one of which the request presents.
        _stateDirectory = Path.Combine(Path.GetTempPath(), "appliance-bench-" + Guid.NewGuid().ToString("N"));
        var store = new Appliance.State.StateStore(Path.Combine(_stateDirectory, Appliance.State.StateStore.FileName));
        store.CreateTenant("acme", "Acme");
        string consumer = store.CreateConsumer("acme", "app").Id;
        for (int i = 0; i < 1_999; i++)
        {
            store.CreateApiKey(consumer);
        }

        string secret = store.CreateApiKey(consumer).Secret;
        _environment = new PolicyEnvironment { Consumers = new ConsumerDirectory(store), Usage = new Appliance.Telemetry.UsageMeter(store, timer: false) };
        // hideCredentials off: the benchmark presents the same request again and again.
        _apiKey = Compile("""{ "apiKey": { "hideCredentials": false } }""");
        _apiKeyThenLimit = Compile($$"""{ "apiKey": { "hideCredentials": false }, "rateLimit": { {{everyRequest}}, "key": "consumer" } }""");
        _apiKeyQuota = Compile("""{ "apiKey": { "hideCredentials": false }, "quota": { "requests": 1000000000000, "per": "month" } }""");
        _keyed = new RequestContext(new ConnectionInfo { Id = 2, ListenerName = "b", RemoteEndPoint = null, LocalEndPoint = null });
        _keyed.SetMethod(HttpMethod.Get, "GET"u8);
        _keyed.RequestHeaders.Add(KnownHeader.None, "x-api-key"u8, Encoding.ASCII.GetBytes(secret));
        if (!_apiKeyThenLimit.RunAsync(_keyed, _environment).Result.Passed || _keyed.ConsumerId != consumer
            || !_apiKeyQuota.RunAsync(_keyed, _environment).Result.Passed)
        {
            throw new InvalidOperationException("the key was refused");
        }

        _environment.Usage!.Count(consumer); // its counter for this hour exists from here on

        // A JWT signed RS256 by a 2,048-bit key from a JWK Set file, with issuer and audience checked.
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        System.Security.Cryptography.RSAParameters pub = rsa.ExportParameters(false);
        string jwks = Path.Combine(_stateDirectory, "jwks.json");
        File.WriteAllText(jwks, $$"""{ "keys": [ { "kty": "RSA", "kid": "k1", "alg": "RS256", "n": "{{System.Buffers.Text.Base64Url.EncodeToString(pub.Modulus)}}", "e": "{{System.Buffers.Text.Base64Url.EncodeToString(pub.Exponent)}}" } ] }""");
        _jwt = Compile($$"""{ "jwt": { "jwksFile": "{{jwks}}", "issuer": "https://idp.test", "audiences": ["orders"] } }""");
        string head = System.Buffers.Text.Base64Url.EncodeToString("""{"alg":"RS256","kid":"k1"}"""u8);
        string body = System.Buffers.Text.Base64Url.EncodeToString(Encoding.UTF8.GetBytes($$"""{"sub":"u1","iss":"https://idp.test","aud":"orders","exp":{{DateTimeOffset.UtcNow.AddDays(1).ToUnixTimeSeconds()}}}"""));
        byte[] signature = rsa.SignData(Encoding.ASCII.GetBytes($"{head}.{body}"), System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        _bearer = new RequestContext(new ConnectionInfo { Id = 3, ListenerName = "b", RemoteEndPoint = null, LocalEndPoint = null });
        _bearer.SetMethod(HttpMethod.Get, "GET"u8);
        _bearer.RequestHeaders.Add(KnownHeader.Authorization, "authorization"u8, Encoding.ASCII.GetBytes($"Bearer {head}.{body}.{System.Buffers.Text.Base64Url.EncodeToString(signature)}"));
        if (!_jwt.RunAsync(_bearer, _none).Result.Passed)
        {
            throw new InvalidOperationException("the token was refused");
        }

        _refusing.RunAsync(_request, _none).AsTask().Wait(); // the one request a day
        if (_refusing.RunAsync(_request, _none).Result.Passed)
        {
            throw new InvalidOperationException("the refusing chain let a request through");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _environment.Usage?.Dispose();
        _environment.Consumers?.Dispose();
        Directory.Delete(_stateDirectory, recursive: true);
    }

    private static PolicyChain Compile(string policies)
    {
        string json = $$"""
        { "listeners": [ { "name": "b", "address": "127.0.0.1:0", "tls": false } ],
          "routes": [ { "id": "r", "direct": {}, "policies": {{policies}} } ] }
        """;
        return ConfigCompiler.Compile(ConfigLoader.Parse(Encoding.UTF8.GetBytes(json)), Path.GetTempPath()).Routes.Routes[0].Policies!;
    }

    /// <summary>16 allowed and 4 denied networks; the client is in the last allowed one (20 checks).</summary>
    [Benchmark(Baseline = true)]
    public PolicyVerdict Access() => _access.RunAsync(_request, _none).Result;

    /// <summary>Rate limit by client address: a lookup and a compare-exchange.</summary>
    [Benchmark]
    public PolicyVerdict RateLimitByClient() => _rateLimitClient.RunAsync(_request, _none).Result;

    /// <summary>Rate limit by the X-Api-Key header's value.</summary>
    [Benchmark]
    public PolicyVerdict RateLimitByHeader() => _rateLimitHeader.RunAsync(_request, _none).Result;

    /// <summary>Access, then rate limit: the chain a public API route would have.</summary>
    [Benchmark]
    public PolicyVerdict AccessThenRateLimit() => _full.RunAsync(_request, _none).Result;

    /// <summary>An API key among 2,000: SHA-256 of the presented key and a dictionary lookup.</summary>
    [Benchmark]
    public PolicyVerdict ApiKey() => _apiKey.RunAsync(_keyed, _environment).Result;

    /// <summary>API key, then a rate limit by its consumer (Kong's key-auth with rate-limiting by consumer).</summary>
    [Benchmark]
    public PolicyVerdict ApiKeyThenRateLimitByConsumer() => _apiKeyThenLimit.RunAsync(_keyed, _environment).Result;

    /// <summary>API key, then a monthly quota (its total already loaded), then the request counted as the dispatcher does.</summary>
    [Benchmark]
    public PolicyVerdict ApiKeyQuotaAndUsage()
    {
        PolicyVerdict verdict = _apiKeyQuota.RunAsync(_keyed, _environment).Result;
        _environment.Usage!.Count(_keyed.ConsumerId!);
        return verdict;
    }

    /// <summary>A JWT (RS256, 2,048-bit key) verified, with its issuer, audience and expiry checked.</summary>
    [Benchmark]
    public PolicyVerdict JwtRs256() => _jwt.RunAsync(_bearer, _none).Result;

    /// <summary>A key over its limit: the refusal and its Retry-After (the response itself is not written here).</summary>
    [Benchmark]
    public PolicyVerdict RateLimitRefused() => _refusing.RunAsync(_request, _none).Result;
}

using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Appliance.Config;
using Appliance.Policies;
using Appliance.Tests.Support;

namespace Appliance.Tests.Policies;

/// <summary>
/// routes[].policies.jwt: tokens signed here with RSA, ECDSA and HMAC keys published in a JWK Set file, checked by
/// the policy directly for every rule, and end to end through curl over HTTPS/1.1 and HTTP/2.
/// </summary>
public sealed class JwtPolicyTests : IDisposable
{
    private static readonly RSA s_rsa = RSA.Create(2048);
    private static readonly ECDsa s_ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private static readonly byte[] s_secret = RandomNumberGenerator.GetBytes(32);
    private readonly string _dir = Directory.CreateTempSubdirectory("appliance-jwt-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string B64(ReadOnlySpan<byte> bytes) => Base64Url.EncodeToString(bytes);

    private static string Jwks()
    {
        RSAParameters r = s_rsa.ExportParameters(false);
        ECParameters e = s_ec.ExportParameters(false);
        return $$"""
            { "keys": [
              { "kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": "{{B64(r.Modulus)}}", "e": "{{B64(r.Exponent)}}" },
              { "kty": "EC", "kid": "ec-1", "crv": "P-256", "x": "{{B64(e.Q.X)}}", "y": "{{B64(e.Q.Y)}}" },
              { "kty": "oct", "kid": "hs-1", "k": "{{B64(s_secret)}}" } ] }
            """;
    }

    /// <summary>A compact JWS: the header and claims as given, signed with the algorithm's key (or the bytes given).</summary>
    private static string Token(string alg, string claims, string? kid = null, string? header = null, byte[]? signature = null)
    {
        string head = B64(Encoding.UTF8.GetBytes(header ?? (kid is null ? $$"""{"alg":"{{alg}}","typ":"JWT"}""" : $$"""{"alg":"{{alg}}","kid":"{{kid}}"}""")));
        string body = B64(Encoding.UTF8.GetBytes(claims));
        byte[] signed = Encoding.ASCII.GetBytes($"{head}.{body}");
        signature ??= alg switch
        {
            "RS256" => s_rsa.SignData(signed, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
            "PS256" => s_rsa.SignData(signed, HashAlgorithmName.SHA256, RSASignaturePadding.Pss),
            "ES256" => s_ec.SignData(signed, HashAlgorithmName.SHA256),
            "HS256" => HMACSHA256.HashData(s_secret, signed),
            _ => [],
        };
        return $"{head}.{body}.{B64(signature)}";
    }

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private static string Claims(long? exp = null, long? nbf = null, string iss = "https://idp.test", string aud = "\"orders\"", string sub = "user-1") =>
        $$"""{"sub":"{{sub}}","iss":"{{iss}}","aud":{{aud}},"exp":{{exp ?? Now + 300}}{{(nbf is null ? "" : $",\"nbf\":{nbf}")}}}""";

    private JwtPolicy Policy(string jwks, string? issuer = "https://idp.test", string[]? audiences = null)
    {
        string path = Path.Combine(_dir, "jwks.json");
        File.WriteAllText(path, jwks);
        JwtKeySet keys = JwtKeySet.TryParse(File.ReadAllBytes(path), out string? error) ?? throw new InvalidOperationException(error);
        return new JwtPolicy(new JwtSettings(keys, path, issuer, audiences ?? ["orders"], TimeSpan.FromSeconds(60), null), "acme");
    }

    private static string? Reason(JwtPolicy policy, string token, long? now = null)
    {
        byte[]? problem = policy.Verify(Encoding.ASCII.GetBytes(token), now ?? Now);
        return problem is null ? null : System.Text.Json.JsonDocument.Parse(problem).RootElement.GetProperty("detail").GetString();
    }

    [Theory]
    [InlineData("RS256", "rsa-1")]
    [InlineData("RS256", null)]
    [InlineData("ES256", "ec-1")]
    [InlineData("ES256", null)]
    [InlineData("HS256", "hs-1")]
    public void Tokens_signed_by_a_configured_key_pass(string alg, string? kid) =>
        Assert.Null(Reason(Policy(Jwks()), Token(alg, Claims(), kid)));

    [Fact]
    public void A_remembered_token_is_refused_once_it_expires_and_forgeries_never_hit_the_memory()
    {
        JwtPolicy policy = Policy(Jwks());
        long now = Now;
        string token = Token("RS256", Claims(exp: now + 100), "rsa-1");
        Assert.Null(Reason(policy, token, now));
        Assert.Null(Reason(policy, token, now + 159)); // remembered: only its lifetime is compared (skew 60 s)
        Assert.Contains("expired", Reason(policy, token, now + 160));
        Assert.Contains("expired", Reason(policy, token, now + 160)); // dropped from memory, checked in full again

        string[] parts = Token("RS256", Claims(exp: now + 100), "rsa-1").Split('.');
        Assert.Null(Reason(policy, string.Join('.', parts), now));
        string tampered = $"{parts[0]}.{B64(Encoding.UTF8.GetBytes(Claims(exp: now + 100, aud: "\"admin\"")))}.{parts[2]}";
        Assert.Contains("No configured key", Reason(policy, tampered, now)); // another token: verified in full, refused

        string notYet = Token("ES256", Claims(exp: now + 1000, nbf: now + 30));
        Assert.Null(Reason(policy, notYet, now));
        Assert.Contains("not valid yet", Reason(policy, notYet, now - 40)); // a clock read earlier: nbf compared again
    }

    [Fact]
    public void An_audience_list_passes_when_it_names_one_of_ours() =>
        Assert.Null(Reason(Policy(Jwks()), Token("ES256", Claims(aud: """["billing", "orders"]"""))));

    [Theory]
    [InlineData("expired")]
    [InlineData("not valid yet")]
    [InlineData("issuer")]
    [InlineData("audience")]
    [InlineData("no expiry")]
    public void Claims_are_checked_with_the_clock_skew(string expected)
    {
        JwtPolicy policy = Policy(Jwks());
        long now = Now; // one reading for the token and its check: a second turning over between them must not matter
        string claims = expected switch
        {
            "expired" => Claims(exp: now - 61),
            "not valid yet" => Claims(nbf: now + 61),
            "issuer" => Claims(iss: "https://evil.test"),
            "audience" => Claims(aud: """["billing"]"""),
            _ => """{"iss":"https://idp.test","aud":"orders"}""",
        };
        Assert.Contains(expected, Reason(policy, Token("RS256", claims, "rsa-1"), now));
        Assert.Null(Reason(policy, Token("RS256", Claims(exp: now - 59, nbf: now + 59), "rsa-1"), now)); // inside the skew
    }

    [Fact]
    public void Forged_and_confused_signatures_are_refused()
    {
        JwtPolicy policy = Policy(Jwks());
        string good = Token("RS256", Claims(), "rsa-1");
        byte[] bad = Base64Url.DecodeFromChars(good.Split('.')[2]);
        bad[10] ^= 1;
        Assert.Contains("No configured key", Reason(policy, Token("RS256", Claims(), "rsa-1", signature: bad)));
        string[] parts = good.Split('.');
        string otherClaims = B64(Encoding.UTF8.GetBytes(Claims(exp: Now + 99999)));
        Assert.Contains("No configured key", Reason(policy, $"{parts[0]}.{otherClaims}.{parts[2]}")); // claims swapped under a signature

        // alg confusion: HMAC keyed with the RSA key's public modulus, naming the RSA key.
        RSAParameters r = s_rsa.ExportParameters(false);
        string head = B64("""{"alg":"HS256","kid":"rsa-1"}"""u8);
        string body = B64(Encoding.UTF8.GetBytes(Claims()));
        byte[] mac = HMACSHA256.HashData(r.Modulus!, Encoding.ASCII.GetBytes($"{head}.{body}"));
        Assert.NotNull(Reason(policy, $"{head}.{body}.{B64(mac)}"));

        Assert.Contains("algorithm", Reason(policy, Token("none", Claims(), signature: [])));
        Assert.Contains("algorithm", Reason(policy, Token("RS256", Claims(), header: """{"typ":"JWT"}""")));
        Assert.Contains("algorithm", Reason(policy, Token("PS256", Claims(), "rsa-1"))); // the RSA key says RS256 only
        Assert.Contains("No configured key", Reason(policy, Token("ES256", Claims(), "ec-9")));
        Assert.Contains("crit", Reason(policy, Token("ES256", Claims(), header: """{"alg":"ES256","crit":["exp"]}""")));
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("a.b")]
    [InlineData("a.b.c.d")]
    [InlineData(".e30.")]
    [InlineData("e30.e30.!!!")]
    [InlineData("bm90IGpzb24.e30.AAAA")]
    [InlineData("W10.e30.AAAA")]
    public void Malformed_tokens_are_refused(string token) => Assert.NotNull(Reason(Policy(Jwks()), token));

    [Fact]
    public void Rsa_keys_with_a_weak_exponent_or_odd_modulus_are_refused()
    {
        RSAParameters r = s_rsa.ExportParameters(false);
        foreach ((string e, string why) in new[] { (B64([1]), "exponent"), (B64([0, 1, 0, 1]), "exponent"), (B64([2]), "exponent"), (B64([1, 0, 0, 0, 1]), "exponent") })
        {
            string jwks = $$"""{ "keys": [ { "kty": "RSA", "n": "{{B64(r.Modulus)}}", "e": "{{e}}" } ] }""";
            Assert.Null(JwtKeySet.TryParse(Encoding.UTF8.GetBytes(jwks), out string? error));
            Assert.Contains(why, error);
        }

        byte[] even = (byte[])r.Modulus!.Clone();
        even[^1] &= 0xFE;
        Assert.Null(JwtKeySet.TryParse(Encoding.UTF8.GetBytes($$"""{ "keys": [ { "kty": "RSA", "n": "{{B64(even)}}", "e": "AQAB" } ] }"""), out string? evenError));
        Assert.Contains("modulus", evenError);
    }

    [Fact]
    public void Each_token_has_one_spelling_and_one_key()
    {
        JwtPolicy policy = Policy(Jwks());
        string good = Token("ES256", Claims(), "ec-1");
        Assert.Null(Reason(policy, good));
        string[] p = good.Split('.');
        foreach (string variant in new[] { $"{p[0]}.{p[1]}.{p[2]}=", $"{p[0]} .{p[1]}.{p[2]}", $"{p[0]}.{p[1]}.{p[2][..^1]}{(char)(p[2][^1] ^ 1)}", $"{p[0]}.{p[1]}.{p[2]}\t" })
        {
            Assert.NotNull(Reason(policy, variant)); // padding, whitespace, a last character with unused bits set
        }

        // Two RSA keys and a token naming neither: refused rather than tried against each.
        RSAParameters r = s_rsa.ExportParameters(false);
        using RSA other = RSA.Create(2048);
        RSAParameters o = other.ExportParameters(false);
        JwtPolicy two = Policy($$"""{ "keys": [ { "kty": "RSA", "kid": "a", "n": "{{B64(r.Modulus)}}", "e": "AQAB" }, { "kty": "RSA", "kid": "b", "n": "{{B64(o.Modulus)}}", "e": "AQAB" } ] }""");
        Assert.Contains("names no key", Reason(two, Token("RS256", Claims())));
        Assert.Null(Reason(two, Token("RS256", Claims(), "a")));

        // An EC key verifies its curve's algorithm only (RFC 7518 §3.4).
        string head = B64("""{"alg":"ES384","kid":"ec-1"}"""u8);
        string body = B64(Encoding.UTF8.GetBytes(Claims()));
        byte[] sig = s_ec.SignData(Encoding.ASCII.GetBytes($"{head}.{body}"), HashAlgorithmName.SHA384);
        Assert.Contains("algorithm", Reason(policy, $"{head}.{body}.{B64(sig)}"));
    }

    [Fact]
    public void Hostile_sizes_and_claims_are_refused_without_harm()
    {
        JwtPolicy policy = Policy(Jwks());
        Assert.Contains("not a JSON Web Token", Reason(policy, new string('a', JwtPolicy.MaxTokenBytes + 1)));
        string huge = $$"""{"exp":{{Now + 300}},"iss":"https://idp.test","aud":"orders","pad":"{{new string('x', 5000)}}"}""";
        Assert.Null(Reason(policy, Token("ES256", huge))); // big claims still parse (pooled buffer)
        Assert.Contains("not a JSON Web Token", Reason(policy, Token("ES256", $$"""{"exp":{{Now + 300}},"exp":{{Now + 300}},"iss":"https://idp.test","aud":"orders"}""")));
        Assert.Contains("not a JSON Web Token", Reason(policy, Token("ES256", """{"exp":"tomorrow","iss":"https://idp.test","aud":"orders"}""")));
        Assert.Contains("not a JSON Web Token", Reason(policy, Token("ES256", "[" + new string('[', 100) + "]")));
        Assert.Contains("not a JSON Web Token", Reason(policy, Token("ES256", Claims() + "x"))); // bytes after the claims
        Assert.Contains("not a JSON Web Token", Reason(policy, Token("ES256", $$"""{"sub":"\ud800","exp":{{Now + 300}},"iss":"https://idp.test","aud":"orders"}""")));
    }

    [Theory]
    [InlineData("""{ "keys": [] }""", "holds no keys")]
    [InlineData("""{ "nokeys": 1 }""", "not a JWK Set")]
    [InlineData("""not json""", "not valid JSON")]
    [InlineData("""{ "keys": [ { "kty": "OKP", "crv": "Ed25519", "x": "AA" } ] }""", "kty")]
    [InlineData("""{ "keys": [ { "kty": "oct", "k": "c2hvcnQ" } ] }""", "at least 32 bytes")]
    [InlineData("""{ "keys": [ { "kty": "RSA", "n": "AQAB", "e": "AQAB" } ] }""", "2048 to 4096 bits")]
    [InlineData("""{ "keys": [ { "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA" } ] }""", "do not fit")]
    [InlineData("""{ "keys": [ { "kty": "oct", "use": "enc", "k": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } ] }""", "\"use\"")]
    [InlineData("""{ "keys": [ { "kty": "oct", "alg": "RS256", "k": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } ] }""", "does not fit")]
    [InlineData("""{ "keys": [ { "kty": "EC", "crv": "P-256", "d": "AA", "x": "AA", "y": "AA" } ] }""", "private key")]
    [InlineData("""{ "keys": [ { "kty": "oct", "kid": "a", "k": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }, { "kty": "oct", "kid": "a", "k": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } ] }""", "used twice")]
    public void Unusable_key_sets_are_refused_with_the_reason(string jwks, string reason)
    {
        Assert.Null(JwtKeySet.TryParse(Encoding.UTF8.GetBytes(jwks), out string? error));
        Assert.Contains(reason, error);
    }

    [Theory]
    [InlineData("""{ }""", "routes[0].policies.jwt.jwksFile")]
    [InlineData("""{ "jwksFile": "missing.json", "audiences": ["a"] }""", "routes[0].policies.jwt.jwksFile")]
    [InlineData("""{ "jwksFile": "jwks.json", "clockSkew": "1h" }""", "routes[0].policies.jwt.clockSkew")]
    [InlineData("""{ "jwksFile": "jwks.json", "issuer": "" }""", "routes[0].policies.jwt.issuer")]
    [InlineData("""{ "jwksFile": "jwks.json", "audiences": [""] }""", "routes[0].policies.jwt.audiences[0]")]
    [InlineData("""{ "jwksFile": "jwks.json", "header": "X Token" }""", "routes[0].policies.jwt.header")]
    [InlineData("""{ "jwksFile": "bad.json", "audiences": ["a"] }""", "routes[0].policies.jwt.jwksFile")]
    [InlineData("""{ "jwksFile": "jwks.json", "audiences": ["a"] }, "rateLimit": { "requests": 1, "key": "consumer" }""", "routes[0].policies.rateLimit.key")]
    [InlineData("""{ "jwksFile": "jwks.json" }""", "routes[0].policies.jwt.audiences")]
    [InlineData("""{ "jwksFile": "jwks.json", "audiences": ["a"] }, "apiKey": {}""", "routes[0].policies.apiKey.bearer")]
    public void Config_errors_name_the_field(string jwt, string path)
    {
        File.WriteAllText(Path.Combine(_dir, "jwks.json"), Jwks());
        File.WriteAllText(Path.Combine(_dir, "bad.json"), """{ "keys": [ { "kty": "RSA" } ] }""");
        IReadOnlyList<ConfigError> errors = ConfigCompiler.Validate(ConfigLoader.Parse(Encoding.UTF8.GetBytes($$"""
            { "listeners": [ { "name": "p", "address": "127.0.0.1:0", "tls": false } ],
              "routes": [ { "id": "r", "direct": {}, "policies": { "jwt": {{jwt}} } } ] }
            """)), _dir);
        Assert.True(errors.Any(e => e.Path == path), string.Join("; ", errors));
    }

    [Fact]
    public async Task The_subject_goes_upstream_in_subjectHeader_and_a_client_copy_never_does()
    {
        string jwks = Path.Combine(_dir, "jwks.json");
        File.WriteAllText(jwks, Jwks());
        await using NginxUpstream nginx = await NginxUpstream.StartAsync();
        await using TestServer server = await TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: $$"""
            { "id": "echo", "match": { "path": "/echo" }, "cluster": "nginx", "transforms": { "subjectHeader": "X-Custom" },
              "policies": { "jwt": { "jwksFile": "{{jwks}}", "audiences": ["orders"] } } },
            """).Replace("\"routes\": [", $$"""
            "clusters": [ { "id": "nginx", "destinations": [ { "address": "{{nginx.Address}}" } ] } ],
            "routes": [
            """));
        async Task<string> Echo(string token, string protocol) => (await Peer.CurlAsync("-k", protocol, "--resolve", $"localhost:{server.HttpsPort}:127.0.0.1",
            "-H", $"Authorization: Bearer {token}", "-H", "X-Custom: spoofed", $"https://localhost:{server.HttpsPort}/echo")).Stdout;
        Assert.Contains("|custom=user-7|", await Echo(Token("ES256", Claims(sub: "user-7")), "--http1.1"));
        Assert.Contains("|custom=user-8|", await Echo(Token("ES256", Claims(sub: "user-8")), "--http2"));
        Assert.Contains("|custom=|", await Echo(Token("ES256", Claims(sub: "a\\r\\nX-Injected: 1")), "--http1.1")); // not a field value: left out
    }

    [Theory]
    [InlineData("--http1.1")]
    [InlineData("--http2")]
    public async Task End_to_end_a_good_token_passes_and_a_bad_one_gets_a_bearer_challenge(string protocol)
    {
        string jwks = Path.Combine(_dir, "jwks.json");
        File.WriteAllText(jwks, Jwks());
        await using TestServer server = await TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: $$"""
            { "id": "orders", "match": { "path": "/orders" }, "direct": { "status": 200, "body": "orders" },
              "policies": { "jwt": { "jwksFile": "{{jwks}}", "issuer": "https://idp.test", "audiences": ["orders"] } } },
            { "id": "per-user", "match": { "path": "/per-user" }, "direct": { "status": 200, "body": "per-user" },
              "policies": { "jwt": { "jwksFile": "{{jwks}}", "audiences": ["orders"] }, "rateLimit": { "requests": 1, "per": "1h", "key": "subject" } } },
            """));
        string[] Url(params string[] extra) => ["-k", protocol, "-D", "-", "--resolve", $"localhost:{server.HttpsPort}:127.0.0.1", .. extra, $"https://localhost:{server.HttpsPort}/orders"];
        Peer.Result ok = await Peer.CurlAsync(Url("-H", $"Authorization: Bearer {Token("ES256", Claims(), "ec-1")}"));
        Assert.Contains("orders", ok.Stdout);
        Assert.Matches(@"^HTTP/\S+ 200", ok.Stdout);
        Peer.Result none = await Peer.CurlAsync(Url());
        Assert.Matches(@"^HTTP/\S+ 401", none.Stdout);
        Assert.Contains("www-authenticate: Bearer\r\n", none.Stdout, StringComparison.OrdinalIgnoreCase);
        Peer.Result expired = await Peer.CurlAsync(Url("-H", $"Authorization: Bearer {Token("RS256", Claims(exp: Now - 3600), "rsa-1")}"));
        Assert.Matches(@"^HTTP/\S+ 401", expired.Stdout);
        Assert.Contains("www-authenticate: Bearer error=\"invalid_token\"", expired.Stdout, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("expired", expired.Stdout);
        string good = Token("ES256", Claims(), "ec-1");
        Peer.Result twice = await Peer.CurlAsync(Url("-H", $"Authorization: Bearer {good}", "-H", $"Authorization: Bearer {good}"));
        Assert.Matches(@"^HTTP/\S+ 400", twice.Stdout); // two Authorization fields: which would the upstream read?

        // A rate limit by the token's subject: each user apart, whichever token or address they come with.
        string[] PerUser(string token) => ["-k", protocol, "-o", "/dev/null", "-w", "%{http_code}", "--resolve", $"localhost:{server.HttpsPort}:127.0.0.1",
            "-H", $"Authorization: Bearer {token}", $"https://localhost:{server.HttpsPort}/per-user"];
        string alice = protocol == "--http2" ? "alice-2" : "alice-1";
        Assert.Equal("200", (await Peer.CurlAsync(PerUser(Token("ES256", Claims(sub: alice))))).Stdout);
        Assert.Equal("429", (await Peer.CurlAsync(PerUser(Token("RS256", Claims(sub: alice), "rsa-1")))).Stdout);
        Assert.Equal("200", (await Peer.CurlAsync(PerUser(Token("ES256", Claims(sub: alice + "-bob"))))).Stdout);
    }
}

using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using Appliance.Tests.Support;
using Appliance.Tls.Acme;

namespace Appliance.Tests.Tls;

/// <summary>
/// How the listeners answer pending challenges, with no CA involved (the configured directory is unreachable, so
/// the renewer only fails and backs off): TLS-ALPN-01 only to handshakes offering acme-tls/1 for the pending name,
/// HTTP-01 on the plain listener before its HTTPS redirect.
/// </summary>
public sealed partial class AcmeChallengeAnswerTests : IAsyncLifetime
{
    private const string Token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
    private TestServer _tls = null!;
    private TestServer _http = null!;

    public async Task InitializeAsync()
    {
        _tls = await TestServer.StartAsync("""
            { "listeners": [ { "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "alpn" } ],
              "certificates": [ { "name": "alpn", "hosts": ["alpn.test"], "acme": { "directory": "https://127.0.0.1:1/dir", "challenge": "tls-alpn-01" } } ],
              "routes": [ { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "body": "hello" } } ] }
            """);
        _http = await TestServer.StartAsync("""
            { "listeners": [ { "name": "https", "address": "127.0.0.1:0", "tls": true },
                             { "name": "http", "address": "127.0.0.1:0", "tls": false, "redirectToHttps": true } ],
              "certificates": [ { "name": "site", "hosts": ["site.test"], "acme": { "directory": "https://127.0.0.1:1/dir" } } ] }
            """);
    }

    public async Task DisposeAsync()
    {
        await _tls.DisposeAsync();
        await _http.DisposeAsync();
    }

    [GeneratedRegex("-----BEGIN CERTIFICATE-----[\\s\\S]+?-----END CERTIFICATE-----")]
    private static partial Regex PemBlock();

    /// <summary>The certificate served and the ALPN protocol chosen, as openssl s_client sees them.</summary>
    private async Task<(X509Certificate2? Certificate, string Alpn, string Output)> HandshakeAsync(string serverName, string? alpn)
    {
        string[] args = ["s_client", "-connect", $"127.0.0.1:{_tls.HttpsPort}", "-servername", serverName];
        Peer.Result r = await Peer.OpenSslAsync("", alpn is null ? args : [.. args, "-alpn", alpn]);
        Match pem = PemBlock().Match(r.Stdout);
        string chosen = Regex.Match(r.Stdout, "ALPN protocol: (\\S+)") is { Success: true } m ? m.Groups[1].Value : "";
        return (pem.Success ? X509Certificate2.CreateFromPem(pem.Value) : null, chosen, r.All);
    }

    private static bool IsValidationCertificate(X509Certificate2? c) =>
        c?.Extensions.Any(e => e.Oid?.Value == TlsAlpnChallengeCertificate.AcmeIdentifierOid) == true;

    [Fact]
    public async Task Tls_alpn01_is_answered_only_to_acme_tls_1_for_the_pending_name()
    {
        using (IDisposable pending = _tls.Host.AcmeChallenges.AddTlsAlpn01("alpn.test", Token + ".thumbprint"))
        {
            (X509Certificate2? validation, string alpn, string output) = await HandshakeAsync("alpn.test", "acme-tls/1");
            Assert.True(IsValidationCertificate(validation), output);
            Assert.True(validation!.Extensions.Single(e => e.Oid?.Value == TlsAlpnChallengeCertificate.AcmeIdentifierOid).Critical);
            Assert.Equal("acme-tls/1", alpn);

            // Ordinary clients of the same name, during the same window, get the certificate in service.
            foreach (string? offer in new[] { "h2,http/1.1", null, "http/1.1,acme-tls/1" })
            {
                (X509Certificate2? served, string chosen, string o) = await HandshakeAsync("alpn.test", offer);
                Assert.False(IsValidationCertificate(served), o);
                Assert.NotNull(served);
                Assert.NotEqual("acme-tls/1", chosen);
            }

            // acme-tls/1 for a name with nothing pending never gets it either.
            (X509Certificate2? other, _, string otherOutput) = await HandshakeAsync("other.test", "acme-tls/1");
            Assert.False(IsValidationCertificate(other), otherOutput);

            Peer.Result https = await Peer.CurlAsync("-k", "--resolve", $"alpn.test:{_tls.HttpsPort}:127.0.0.1", $"https://alpn.test:{_tls.HttpsPort}/");
            Assert.Equal("hello", https.Stdout); // requests flow through the replayed ClientHello
        }

        (X509Certificate2? after, _, string afterOutput) = await HandshakeAsync("alpn.test", "acme-tls/1");
        Assert.False(IsValidationCertificate(after), afterOutput); // withdrawn
    }

    [Fact]
    public async Task Http01_is_answered_on_the_plain_listener_before_the_redirect()
    {
        string url = $"http://127.0.0.1:{_http.HttpPort}/.well-known/acme-challenge/{Token}";
        Assert.Equal("404", (await Peer.CurlAsync("-o", "/dev/null", "-w", "%{http_code}", url)).Stdout);
        using (IDisposable pending = _http.Host.AcmeChallenges.AddHttp01(Token, Token + ".thumbprint"))
        {
            Peer.Result get = await Peer.CurlAsync("-i", url);
            Assert.StartsWith("HTTP/1.1 200", get.Stdout);
            Assert.Contains("Content-Type: text/plain", get.Stdout);
            Assert.EndsWith("\r\n\r\n" + Token + ".thumbprint", get.Stdout);
            Assert.Equal("404", (await Peer.CurlAsync("-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", url)).Stdout);
            Assert.Equal("404", (await Peer.CurlAsync("-o", "/dev/null", "-w", "%{http_code}", url + "x")).Stdout);
            Assert.Equal("404", (await Peer.CurlAsync("-o", "/dev/null", "-w", "%{http_code}", $"http://127.0.0.1:{_http.HttpPort}/.well-known/acme-challenge/a%2Fb")).Stdout);
            Assert.Equal("308", (await Peer.CurlAsync("-o", "/dev/null", "-w", "%{http_code}", $"http://127.0.0.1:{_http.HttpPort}/other")).Stdout);
        }

        Assert.Equal("404", (await Peer.CurlAsync("-o", "/dev/null", "-w", "%{http_code}", url)).Stdout);
    }
}

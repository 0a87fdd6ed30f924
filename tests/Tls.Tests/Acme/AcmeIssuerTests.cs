using System.Net;
using System.Net.Http;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Appliance.Tls.Acme;
using Appliance.Tls.Tests.Support;

namespace Appliance.Tls.Tests.Acme;

/// <summary>The whole order flow against a scripted CA (pebble covers the real thing in Appliance.Tests).</summary>
public sealed class AcmeIssuerTests : IDisposable
{
    private const string Token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
    private readonly TempDirectory _dir = new();
    private readonly PendingChallenges _pending = new();
    private readonly X509Certificate2 _ca = SelfSignedCertificate.Create([], TimeSpan.FromDays(30), certificateAuthority: true, commonName: "Scripted CA");
    private readonly List<string> _progress = [];
    private string _authorization = "pending";
    private string? _challengeError;
    private string? _issuedPem;
    private bool _accountForgotten;
    private string? _seenKeyAuthorization;

    public void Dispose()
    {
        _ca.Dispose();
        _dir.Dispose();
    }

    private static string Payload(string jws)
    {
        using JsonDocument doc = JsonDocument.Parse(jws);
        return Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(doc.RootElement.GetProperty("payload").GetString()!));
    }

    private HttpResponseMessage Answer(HttpRequestMessage request)
    {
        string body = request.Content!.ReadAsStringAsync().GetAwaiter().GetResult();
        string certificate = _issuedPem is null ? "" : ", \"certificate\": \"https://acme.test/cert/1\"";
        string orderStatus = _authorization == "valid" ? (_issuedPem is null ? "ready" : "valid") : _authorization == "invalid" ? "invalid" : "pending";
        string order = $$"""{ "status": "{{orderStatus}}", "authorizations": [ "https://acme.test/authz/1" ], "finalize": "https://acme.test/finalize/1"{{certificate}} }""";
        switch (request.RequestUri!.AbsolutePath)
        {
            case "/account":
                _accountForgotten = false;
                return WithLocation(ScriptedAcmeServer.Json(HttpStatusCode.Created, """{ "status": "valid" }"""), "https://acme.test/acct/2");
            case "/order":
                if (_accountForgotten)
                {
                    return ScriptedAcmeServer.Problem(HttpStatusCode.BadRequest, "accountDoesNotExist", "no such account");
                }

                return WithLocation(ScriptedAcmeServer.Json(HttpStatusCode.Created, order), "https://acme.test/order/1");
            case "/authz/1":
                string error = _challengeError is null ? "" : $$""", "error": { "type": "urn:ietf:params:acme:error:connection", "detail": "{{_challengeError}}" }""";
                return ScriptedAcmeServer.Json(HttpStatusCode.OK, $$"""
                    { "identifier": { "type": "dns", "value": "a.test" }, "status": "{{_authorization}}",
                      "challenges": [ { "type": "http-01", "url": "https://acme.test/chall/1", "status": "{{(_authorization == "pending" ? "pending" : _authorization)}}", "token": "{{Token}}"{{error}} } ] }
                    """);
            case "/chall/1":
                _pending.TryGetKeyAuthorization(Token, out string ka);
                _seenKeyAuthorization = ka;
                if (_challengeError is null)
                {
                    _authorization = "valid";
                }
                else
                {
                    _authorization = "invalid";
                }

                return ScriptedAcmeServer.Json(HttpStatusCode.OK, $$"""{ "type": "http-01", "url": "https://acme.test/chall/1", "status": "processing", "token": "{{Token}}" }""");
            case "/order/1":
                return ScriptedAcmeServer.Json(HttpStatusCode.OK, order);
            case "/finalize/1":
                using (JsonDocument finalize = JsonDocument.Parse(Payload(body)))
                {
                    byte[] der = System.Buffers.Text.Base64Url.DecodeFromChars(finalize.RootElement.GetProperty("csr").GetString()!);
                    CertificateRequest csr = CertificateRequest.LoadSigningRequest(der, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
                    using X509Certificate2 leaf = csr.Create(_ca, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(7), [1, 2, 3, 4]);
                    _issuedPem = leaf.ExportCertificatePem() + "\n" + _ca.ExportCertificatePem() + "\n";
                }

                return ScriptedAcmeServer.Json(HttpStatusCode.OK, order.Replace("\"ready\"", "\"processing\""));
            case "/cert/1":
                var pem = new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(_issuedPem!, Encoding.ASCII, "application/pem-certificate-chain") };
                pem.Headers.Add("Replay-Nonce", "n-cert-0001");
                return pem;
            default:
                return new HttpResponseMessage(HttpStatusCode.NotFound);
        }
    }

    private static HttpResponseMessage WithLocation(HttpResponseMessage response, string location)
    {
        response.Headers.Location = new Uri(location);
        return response;
    }

    private AcmeIssuer Issuer(AcmeAccountStore store) =>
        new(store, _pending, _ => ScriptedAcmeServer.WithDirectory((request, _) => Answer(request))) { InitialPollInterval = TimeSpan.FromMilliseconds(1) };

    private static AcmeCertificateRequest Request => new("site", ["a.test"], new Uri(ScriptedAcmeServer.DirectoryUrl), null, AcmeChallengeType.Http01, null);

    [Fact]
    public async Task Issues_a_certificate_for_a_new_key_and_withdraws_the_challenge()
    {
        var store = new AcmeAccountStore(_dir.Path);
        store.SetAccountUrl(new Uri(ScriptedAcmeServer.DirectoryUrl), "https://acme.test/acct/forgotten");
        _accountForgotten = true; // the server no longer knows the cached account: it is registered again

        IssuedCertificate issued = await Issuer(store).IssueAsync(Request, _progress.Add, default);

        Assert.Equal("01020304", issued.SerialNumber);
        Assert.Contains("Scripted CA", issued.Issuer);
        Assert.DoesNotContain("PRIVATE KEY", issued.ToString());
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", issued.KeyPem);
        Assert.Equal(2, issued.CertificatePem.Split("-----BEGIN CERTIFICATE-----").Length - 1);
        Assert.Equal($"{Token}.{new JsonWebSignature(store.LoadOrCreateKey(out _)).Thumbprint}", _seenKeyAuthorization);
        Assert.False(_pending.TryGetKeyAuthorization(Token, out _));
        Assert.Equal("https://acme.test/acct/2", store.AccountUrl(new Uri(ScriptedAcmeServer.DirectoryUrl)));
        Assert.Contains(_progress, p => p.Contains("registering again", StringComparison.Ordinal));
        Assert.Contains(_progress, p => p.Contains("a.test: authorization valid", StringComparison.Ordinal));

        using var leaf = X509Certificate2.CreateFromPem(issued.CertificatePem, issued.KeyPem);
        Assert.Equal(["a.test"], leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateDnsNames());
        Assert.NotEqual(store.LoadOrCreateKey(out _).ExportSubjectPublicKeyInfo(), leaf.PublicKey.ExportSubjectPublicKeyInfo());
    }

    [Fact]
    public async Task A_failed_validation_carries_the_servers_detail_and_withdraws_the_challenge()
    {
        _challengeError = "Connection refused while fetching the token";
        AcmeProblemException e = await Assert.ThrowsAsync<AcmeProblemException>(() => Issuer(new AcmeAccountStore(_dir.Path)).IssueAsync(Request, _progress.Add, default));
        Assert.Equal("urn:ietf:params:acme:error:connection", e.Type);
        Assert.Contains("a.test http-01: Connection refused", e.Detail);
        Assert.False(_pending.TryGetKeyAuthorization(Token, out _));
    }

    [Fact]
    public void A_chain_for_another_key_or_other_names_is_refused()
    {
        using var ours = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 other = SelfSignedCertificate.Create(["a.test"], TimeSpan.FromDays(1));
        Assert.Contains("not for the key", Assert.Throws<AcmeProtocolException>(() => AcmeIssuer.Verify(other.ExportCertificatePem(), ours, ["a.test"])).Message);

        var request = new CertificateRequest("CN=b.test", ours, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("b.test");
        request.CertificateExtensions.Add(san.Build());
        using X509Certificate2 wrongNames = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1));
        Assert.Contains("'a.test' is not among", Assert.Throws<AcmeProtocolException>(() => AcmeIssuer.Verify(wrongNames.ExportCertificatePem(), ours, ["a.test"])).Message);
        Assert.Throws<AcmeProtocolException>(() => AcmeIssuer.Verify("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", ours, ["a.test"]));
        Assert.Throws<AcmeProtocolException>(() => AcmeIssuer.Verify("no pem here", ours, ["a.test"]));
    }

    [Fact]
    public void The_csr_names_every_host_and_is_signed_by_the_new_key()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        byte[] der = AcmeIssuer.CreateSigningRequest(["a.test", "b.test"], key);
        CertificateRequest csr = CertificateRequest.LoadSigningRequest(der, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        Assert.Equal("CN=a.test", csr.SubjectName.Name);
        var san = new X509SubjectAlternativeNameExtension(csr.CertificateExtensions.Single(e => e.Oid?.Value == "2.5.29.17").RawData);
        Assert.Equal(["a.test", "b.test"], san.EnumerateDnsNames());
        Assert.Equal(key.ExportSubjectPublicKeyInfo(), csr.PublicKey.ExportSubjectPublicKeyInfo());
    }
}

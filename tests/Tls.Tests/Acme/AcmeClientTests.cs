using System.Net;
using System.Net.Http;
using System.Security.Cryptography;
using System.Text;
using Appliance.Tls.Acme;

namespace Appliance.Tls.Tests.Acme;

public sealed class AcmeClientTests
{
    private const string Order = """
        { "status": "pending", "authorizations": [ "https://acme.test/authz/1" ], "finalize": "https://acme.test/finalize/1" }
        """;

    private static AcmeClient Client(ScriptedAcmeServer server, ECDsa key) =>
        new(new Uri(ScriptedAcmeServer.DirectoryUrl), key, server) { AccountUrl = "https://acme.test/acct/1" };

    private static HttpResponseMessage Created(string json, string location)
    {
        HttpResponseMessage r = ScriptedAcmeServer.Json(HttpStatusCode.Created, json);
        r.Headers.Location = new Uri(location, UriKind.RelativeOrAbsolute);
        return r;
    }

    [Fact]
    public async Task Registers_with_the_key_then_signs_with_the_account_url()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var server = ScriptedAcmeServer.WithDirectory((request, _) => request.RequestUri!.AbsolutePath switch
        {
            "/account" => Created("""{ "status": "valid" }""", "https://acme.test/acct/42"),
            "/order" => Created(Order, "/order/7"), // relative: resolved against the request URL
            _ => new HttpResponseMessage(HttpStatusCode.NotFound),
        });
        using var client = new AcmeClient(new Uri(ScriptedAcmeServer.DirectoryUrl), key, server);
        AcmeResponse<AcmeAccount> account = await client.NewAccountAsync("ops@example.test", default);
        Assert.Equal("https://acme.test/acct/42", client.AccountUrl);
        AcmeResponse<AcmeOrder> order = await client.NewOrderAsync(["a.test"], default);
        Assert.Equal("https://acme.test/order/7", order.Location);

        string newAccount = server.Requests.Single(r => r.Url.EndsWith("/account", StringComparison.Ordinal)).Body;
        string header = Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(
            System.Text.Json.JsonDocument.Parse(newAccount).RootElement.GetProperty("protected").GetString()!));
        Assert.Contains("\"jwk\"", header);
        string payload = Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(
            System.Text.Json.JsonDocument.Parse(newAccount).RootElement.GetProperty("payload").GetString()!));
        Assert.Contains("\"termsOfServiceAgreed\":true", payload);
        Assert.Contains("mailto:ops@example.test", payload);
        Assert.Contains(server.Requests, r => r.Method == HttpMethod.Head); // the first nonce came from newNonce
    }

    [Fact]
    public async Task A_bad_nonce_is_retried_once_with_the_nonce_it_brought()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        int posts = 0;
        var server = ScriptedAcmeServer.WithDirectory((_, _) => ++posts == 1
            ? ScriptedAcmeServer.Problem(HttpStatusCode.BadRequest, "badNonce", "JWS has an invalid anti-replay nonce", nonce: "fresh-from-problem")
            : Created(Order, "https://acme.test/order/1"));
        using AcmeClient client = Client(server, key);
        await client.NewOrderAsync(["a.test"], default);
        Assert.Equal(2, posts);
        string retried = server.Requests.Last().Body;
        string header = Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(
            System.Text.Json.JsonDocument.Parse(retried).RootElement.GetProperty("protected").GetString()!));
        Assert.Contains("\"nonce\":\"fresh-from-problem\"", header);
    }

    [Fact]
    public async Task A_second_bad_nonce_is_an_error()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var server = ScriptedAcmeServer.WithDirectory((_, _) => ScriptedAcmeServer.Problem(HttpStatusCode.BadRequest, "badNonce", "again"));
        using AcmeClient client = Client(server, key);
        AcmeProblemException e = await Assert.ThrowsAsync<AcmeProblemException>(() => client.NewOrderAsync(["a.test"], default));
        Assert.True(e.Is("badNonce"));
        Assert.Equal(2, server.Requests.Count(r => r.Method == HttpMethod.Post));
    }

    [Fact]
    public async Task Problems_become_exceptions_with_type_and_detail()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var server = ScriptedAcmeServer.WithDirectory((_, _) =>
            ScriptedAcmeServer.Problem(HttpStatusCode.BadRequest, "rejectedIdentifier", "Order included DNS identifier with a value containing an illegal character"));
        using AcmeClient client = Client(server, key);
        AcmeProblemException e = await Assert.ThrowsAsync<AcmeProblemException>(() => client.NewOrderAsync(["x_y.test"], default));
        Assert.Equal("urn:ietf:params:acme:error:rejectedIdentifier", e.Type);
        Assert.Equal(400, e.Status);
        Assert.Contains("illegal character", e.Detail);
    }

    [Fact]
    public async Task Oversized_answers_are_refused_with_or_without_a_length()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        string huge = "{ \"status\": \"pending\", \"pad\": \"" + new string('x', AcmeClient.MaxJsonBytes) + "\" }";
        var announced = ScriptedAcmeServer.WithDirectory((_, _) => Created(huge, "https://acme.test/order/1"));
        using (AcmeClient client = Client(announced, key))
        {
            AcmeProtocolException e = await Assert.ThrowsAsync<AcmeProtocolException>(() => client.NewOrderAsync(["a.test"], default));
            Assert.Contains("cap", e.Message);
        }

        var streamed = ScriptedAcmeServer.WithDirectory((_, _) =>
        {
            var r = new HttpResponseMessage(HttpStatusCode.Created) { Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(huge))) };
            r.Headers.Add("Replay-Nonce", "n-0000");
            return r;
        });
        using (AcmeClient client = Client(streamed, key))
        {
            AcmeProtocolException e = await Assert.ThrowsAsync<AcmeProtocolException>(() => client.NewOrderAsync(["a.test"], default));
            Assert.Contains("cap", e.Message);
        }
    }

    [Fact]
    public async Task Answers_without_the_urls_that_must_follow_are_refused()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var noLocation = ScriptedAcmeServer.WithDirectory((_, _) => ScriptedAcmeServer.Json(HttpStatusCode.Created, """{ "status": "valid" }"""));
        using (var client = new AcmeClient(new Uri(ScriptedAcmeServer.DirectoryUrl), key, noLocation))
        {
            Assert.Contains("no Location", (await Assert.ThrowsAsync<AcmeProtocolException>(() => client.NewAccountAsync(null, default))).Message);
        }

        var plainLocation = ScriptedAcmeServer.WithDirectory((_, _) => Created(Order, "http://acme.test/order/1"));
        using (AcmeClient client = Client(plainLocation, key))
        {
            Assert.Contains("https", (await Assert.ThrowsAsync<AcmeProtocolException>(() => client.NewOrderAsync(["a.test"], default))).Message);
        }
    }

    [Fact]
    public async Task A_missing_nonce_and_a_broken_directory_are_errors()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var noNonce = new ScriptedAcmeServer((request, _) => request.Method == HttpMethod.Get
            ? ScriptedAcmeServer.Json(HttpStatusCode.OK, ScriptedAcmeServer.Directory, nonce: null)
            : new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent([]) });
        using (AcmeClient client = Client(noNonce, key))
        {
            Assert.Contains("Replay-Nonce", (await Assert.ThrowsAsync<AcmeProtocolException>(() => client.NewOrderAsync(["a.test"], default))).Message);
        }

        var broken = new ScriptedAcmeServer((_, _) => ScriptedAcmeServer.Json(HttpStatusCode.OK, "{ \"newNonce\": ", nonce: null));
        using (AcmeClient client = Client(broken, key))
        {
            Assert.Contains("directory", (await Assert.ThrowsAsync<AcmeProtocolException>(() => client.GetDirectoryAsync(default))).Message);
        }
    }

    [Fact]
    public async Task Retry_after_is_read_as_seconds()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var server = ScriptedAcmeServer.WithDirectory((_, _) =>
        {
            HttpResponseMessage r = ScriptedAcmeServer.Json(HttpStatusCode.OK, Order);
            r.Headers.Add("Retry-After", "3");
            return r;
        });
        using AcmeClient client = Client(server, key);
        AcmeResponse<AcmeOrder> order = await client.GetOrderAsync("https://acme.test/order/1", default);
        Assert.Equal(TimeSpan.FromSeconds(3), order.RetryAfter);
    }

    [Fact]
    public async Task A_certificate_answer_must_be_pem()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var server = ScriptedAcmeServer.WithDirectory((_, _) =>
        {
            var r = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent([0xFF, 0xFE, 0x00, 0x80]) };
            r.Headers.Add("Replay-Nonce", "n-0001");
            return r;
        });
        using AcmeClient client = Client(server, key);
        await Assert.ThrowsAsync<AcmeProtocolException>(() => client.DownloadCertificateAsync("https://acme.test/cert/1", default));
    }
}

using System.Net;
using System.Net.Http;
using System.Text;

namespace Appliance.Tls.Tests.Acme;

/// <summary>An ACME server in a handler: each request is answered by the script; requests are recorded.</summary>
internal sealed class ScriptedAcmeServer(Func<HttpRequestMessage, int, HttpResponseMessage> script) : HttpMessageHandler
{
    public const string Base = "https://acme.test";
    public const string DirectoryUrl = Base + "/dir";

    public List<(HttpMethod Method, string Url, string Body)> Requests { get; } = [];

    public static string Directory => $$"""
        { "newNonce": "{{Base}}/nonce", "newAccount": "{{Base}}/account", "newOrder": "{{Base}}/order", "meta": { "termsOfService": "{{Base}}/tos" } }
        """;

    public static HttpResponseMessage Json(HttpStatusCode status, string json, string? nonce = "nonce-next-0000", string contentType = "application/json")
    {
        var response = new HttpResponseMessage(status) { Content = new StringContent(json, Encoding.UTF8, contentType) };
        if (nonce is not null)
        {
            response.Headers.Add("Replay-Nonce", nonce);
        }

        return response;
    }

    public static HttpResponseMessage Problem(HttpStatusCode status, string type, string detail, string? nonce = "nonce-after-problem") =>
        Json(status, $$"""{ "type": "urn:ietf:params:acme:error:{{type}}", "detail": "{{detail}}", "status": {{(int)status}} }""", nonce, "application/problem+json");

    /// <summary>The directory and newNonce answered; everything else goes to <paramref name="post"/>.</summary>
    public static ScriptedAcmeServer WithDirectory(Func<HttpRequestMessage, int, HttpResponseMessage> post)
    {
        int nonces = 0;
        return new ScriptedAcmeServer((request, index) =>
        {
            if (request.Method == HttpMethod.Get && request.RequestUri!.AbsoluteUri == DirectoryUrl)
            {
                return Json(HttpStatusCode.OK, Directory, nonce: null);
            }

            if (request.Method == HttpMethod.Head && request.RequestUri!.AbsolutePath == "/nonce")
            {
                var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent([]) };
                response.Headers.Add("Replay-Nonce", $"fresh-nonce-{nonces++:0000}");
                return response;
            }

            return post(request, index);
        });
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        string body = request.Content is null ? "" : await request.Content.ReadAsStringAsync(cancellationToken);
        int index;
        lock (Requests)
        {
            Requests.Add((request.Method, request.RequestUri!.AbsoluteUri, body));
            index = Requests.Count - 1;
        }

        return script(request, index);
    }
}

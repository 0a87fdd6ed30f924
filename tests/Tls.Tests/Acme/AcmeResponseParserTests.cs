using System.Text;
using Appliance.Tls.Acme;

namespace Appliance.Tls.Tests.Acme;

public sealed class AcmeResponseParserTests
{
    private const string ValidOrder = """
        { "status": "pending", "expires": "2030-01-01T00:00:00Z",
          "identifiers": [ { "type": "dns", "value": "a.test" } ],
          "authorizations": [ "https://acme.test/authz/1" ], "finalize": "https://acme.test/finalize/1" }
        """;

    private const string ValidAuthorization = """
        { "identifier": { "type": "dns", "value": "a.test" }, "status": "pending",
          "challenges": [ { "type": "http-01", "url": "https://acme.test/chall/1", "status": "pending", "token": "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0" },
                          { "type": "tls-alpn-01", "url": "https://acme.test/chall/2", "status": "pending", "token": "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA" } ] }
        """;

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static string Refused(Action parse) => Assert.Throws<AcmeProtocolException>(parse).Message;

    [Fact]
    public void Reads_a_directory()
    {
        AcmeDirectory d = AcmeResponseParser.Directory(B(ScriptedAcmeServer.Directory));
        Assert.Equal("https://acme.test/order", d.NewOrder);
        Assert.Equal("https://acme.test/tos", d.Meta?.TermsOfService);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("{", "not valid JSON")]
    [InlineData("{ \"newNonce\": \"https://a/n\", \"newAccount\": \"https://a/a\" ", "not valid JSON")] // truncated
    [InlineData("null", "JSON null")]
    [InlineData("[1,2]", "not valid JSON")]
    [InlineData("\"a string\"", "not valid JSON")]
    [InlineData("{ \"newAccount\": \"https://a/a\", \"newOrder\": \"https://a/o\" }", "'newNonce' is missing")]
    [InlineData("{ \"newNonce\": \"http://a/n\", \"newAccount\": \"https://a/a\", \"newOrder\": \"https://a/o\" }", "not an absolute https URL")]
    [InlineData("{ \"newNonce\": \"/relative\", \"newAccount\": \"https://a/a\", \"newOrder\": \"https://a/o\" }", "not an absolute https URL")]
    [InlineData("{ \"newNonce\": 5, \"newAccount\": \"https://a/a\", \"newOrder\": \"https://a/o\" }", "not valid JSON")]
    [InlineData("{ \"newNonce\": \"https://a/n\", \"newAccount\": \"https://a/a\", \"newOrder\": \"https://a/o\", \"meta\": { \"externalAccountRequired\": true } }", "external account binding")]
    public void Refuses_a_bad_directory(string body, string reason) =>
        Assert.Contains(reason, Refused(() => AcmeResponseParser.Directory(B(body))));

    [Fact]
    public void Refuses_deeply_nested_json()
    {
        string deep = "{ \"meta\": " + new string('[', 5000) + new string(']', 5000) + " }";
        Assert.Contains("not valid JSON", Refused(() => AcmeResponseParser.Directory(B(deep))));
    }

    [Fact]
    public void Ignores_unknown_members() =>
        Assert.Equal("pending", AcmeResponseParser.Order(B(ValidOrder.Replace("\"status\"", "\"x-new\": { \"a\": [1] }, \"status\""))).Status);

    [Fact]
    public void Reads_an_order_and_an_authorization()
    {
        Assert.Equal("https://acme.test/authz/1", Assert.Single(AcmeResponseParser.Order(B(ValidOrder)).Authorizations!));
        AcmeAuthorization a = AcmeResponseParser.Authorization(B(ValidAuthorization));
        Assert.Equal(["http-01", "tls-alpn-01"], a.Challenges!.Select(c => c.Type));
    }

    [Theory]
    [InlineData("\"status\": \"pending\"", "\"status\": \"bogus\"", "unknown status 'bogus'")]
    [InlineData("\"status\": \"pending\",", "", "'status' is missing")]
    [InlineData("\"authorizations\": [ \"https://acme.test/authz/1\" ],", "", "'authorizations' is missing")]
    [InlineData("\"https://acme.test/authz/1\"", "\"http://acme.test/authz/1\"", "not an absolute https URL")]
    [InlineData("\"https://acme.test/authz/1\"", "null", "'authorizations[]' is missing")]
    [InlineData(", \"finalize\": \"https://acme.test/finalize/1\"", "", "'finalize' is missing")]
    [InlineData("\"status\": \"pending\"", "\"status\": \"valid\"", "'certificate' is missing")] // valid needs its certificate URL
    [InlineData("\"status\": \"pending\"", "\"status\": \"pending\", \"certificate\": \"ftp://x/y\"", "'certificate' is not an absolute https URL")]
    public void Refuses_a_bad_order(string from, string to, string reason) =>
        Assert.Contains(reason, Refused(() => AcmeResponseParser.Order(B(ValidOrder.Replace(from, to)))));

    [Fact]
    public void Refuses_an_order_with_too_many_authorizations()
    {
        string many = string.Join(",", Enumerable.Range(0, 1001).Select(i => $"\"https://acme.test/authz/{i}\""));
        Assert.Contains("more than 1000", Refused(() => AcmeResponseParser.Order(B(ValidOrder.Replace("\"https://acme.test/authz/1\"", many)))));
    }

    [Theory]
    [InlineData("\"identifier\": { \"type\": \"dns\", \"value\": \"a.test\" },", "", "'identifier' is missing")]
    [InlineData("\"value\": \"a.test\"", "\"value\": \"\"", "'identifier' is missing or incomplete")]
    [InlineData("\"status\": \"pending\",\n", "\"status\": \"unknown\",\n", "unknown status")]
    [InlineData("\"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0\"", "\"../../etc/passwd-and-more-characters\"", "token is missing or not base64url")]
    [InlineData("\"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0\"", "\"short\"", "token is missing or not base64url")]
    [InlineData(", \"token\": \"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0\"", "", "token is missing")]
    [InlineData("\"https://acme.test/chall/1\"", "\"http://evil.test/chall/1\"", "not an absolute https URL")]
    [InlineData("{ \"type\": \"http-01\",", "{ \"type\": \"\",", "has no 'type'")]
    [InlineData("\"challenges\": [", "\"challenges\": [ null,", "a challenge is null")]
    public void Refuses_a_bad_authorization(string from, string to, string reason)
    {
        Assert.Contains(from, ValidAuthorization);
        Assert.Contains(reason, Refused(() => AcmeResponseParser.Authorization(B(ValidAuthorization.Replace(from, to)))));
    }

    [Fact]
    public void Refuses_an_authorization_without_challenges() =>
        Assert.Contains("'challenges' is missing", Refused(() => AcmeResponseParser.Authorization(B("""{ "identifier": { "type": "dns", "value": "a" }, "status": "valid" }"""))));

    [Fact]
    public void A_problem_document_becomes_an_exception_with_type_and_detail()
    {
        AcmeProblemException e = AcmeResponseParser.Problem(B("""
            { "type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "Error creating new order", "status": 400,
              "subproblems": [ { "type": "urn:ietf:params:acme:error:malformed", "detail": "bad name", "identifier": { "type": "dns", "value": "x_y.test" } } ] }
            """), 400, "newOrder");
        Assert.Equal("urn:ietf:params:acme:error:rejectedIdentifier", e.Type);
        Assert.True(e.Is("rejectedIdentifier"));
        Assert.Equal("rejectedIdentifier", e.ShortName);
        Assert.Equal(400, e.Status);
        Assert.Contains("newOrder: Error creating new order", e.Detail);
        Assert.Contains("x_y.test: malformed bad name", e.Detail);
        Assert.StartsWith("rejectedIdentifier: newOrder:", e.Message);
    }

    [Theory]
    [InlineData("<html>Bad Gateway</html>")]
    [InlineData("")]
    [InlineData("{}")]
    [InlineData("{ \"type\": 7 }")]
    public void A_body_that_is_no_problem_document_still_says_the_status(string body)
    {
        AcmeProblemException e = AcmeResponseParser.Problem(B(body), 502, "newOrder");
        Assert.Contains("HTTP 502", e.Detail);
    }

    [Fact]
    public void A_huge_problem_detail_is_clipped()
    {
        string detail = new('x', 100_000);
        AcmeProblemException e = AcmeResponseParser.Problem(B($$"""{ "type": "urn:ietf:params:acme:error:serverInternal", "detail": "{{detail}}" }"""), 500, "order");
        Assert.True(e.Detail.Length < 1100, e.Detail.Length.ToString());
    }
}

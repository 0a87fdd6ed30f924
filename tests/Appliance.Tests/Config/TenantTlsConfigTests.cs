using System.Text;
using Appliance.Config;
using Appliance.Tests.Support;

namespace Appliance.Tests.Config;

/// <summary>
/// Config errors, with their JSON paths, for tenants' own certificates (certificates[].tenant) and for client
/// certificates per route and per tenant (routes[].clientCertificates, tenants[].clientCertificates).
/// </summary>
public sealed class TenantTlsConfigTests
{
    private static IReadOnlyList<ConfigError> Errors(string json)
    {
        try
        {
            return ConfigCompiler.Validate(ConfigLoader.Parse(Encoding.UTF8.GetBytes(json)), Path.GetTempPath());
        }
        catch (ConfigException e)
        {
            return e.Errors;
        }
    }

    private static string Certificate(string name, string hosts, string? tenant) =>
        $$"""{ "name": "{{name}}", "hosts": {{hosts}}, "certificatePath": "{{TestCertificates.Cert("localhost")}}", "keyPath": "{{TestCertificates.Key("localhost")}}"{{(tenant is null ? "" : $", \"tenant\": \"{tenant}\"")}} }""";

    private static string Config(string tenants, string certificates) => $$"""
        {
          "listeners": [ { "name": "https", "address": "127.0.0.1:0", "tls": true } ],
          "tenants": [ {{tenants}} ],
          "certificates": [ {{certificates}} ],
          "routes": [ { "id": "r", "direct": {} } ]
        }
        """;

    private const string Tenants = """
        { "id": "a", "hosts": ["*.example.com", "a.example.net"] },
        { "id": "b", "hosts": ["api.example.com", "*.b.example.net"] }
        """;

    [Fact]
    public void Tenant_certificates_for_the_tenants_own_hosts_compile()
    {
        string json = Config(Tenants, string.Join(",",
            Certificate("operator", """["localhost"]""", null),
            Certificate("a", """["*.example.com", "www.example.com", "A.Example.NET."]""", "a"),
            Certificate("b", """["api.example.com", "*.b.example.net", "x.b.example.net"]""", "b")));

        Assert.Empty(Errors(json));
    }

    [Theory]
    [InlineData("""["www.example.com"]""", "nobody", "certificates[1].tenant", "no tenant with id 'nobody'")]
    [InlineData("""["a.example.org"]""", "a", "certificates[1].hosts[0]", "'a.example.org' is not a host of tenant 'a'")]
    // RFC 6125: *.example.com covers one label, never the apex nor two labels.
    [InlineData("""["www.example.com", "example.com"]""", "a", "certificates[1].hosts[1]", "'example.com' is not a host of tenant 'a'")]
    [InlineData("""["x.y.example.com"]""", "a", "certificates[1].hosts[0]", "'x.y.example.com' is not a host of tenant 'a'")]
    [InlineData("""["*.y.example.com"]""", "a", "certificates[1].hosts[0]", "'*.y.example.com' is not a host of tenant 'a'")]
    // A tenant exact host beats another tenant's wildcard, as in SNI selection.
    [InlineData("""["api.example.com"]""", "a", "certificates[1].hosts[0]", "'api.example.com' is a host of tenant 'b', not of 'a'")]
    [InlineData("""["*.example.com"]""", "b", "certificates[1].hosts[0]", "'*.example.com' is a host of tenant 'a', not of 'b'")]
    public void Tenant_certificate_errors_name_the_field(string hosts, string tenant, string path, string message)
    {
        IReadOnlyList<ConfigError> errors = Errors(Config(Tenants, Certificate("operator", """["localhost"]""", null) + "," + Certificate("c", hosts, tenant)));

        Assert.Contains(errors, e => e.Path == path && e.Message.Contains(message, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("API.example.com.")]
    [InlineData("*.b.example.net")]
    public void A_host_of_two_tenants_is_an_error(string host)
    {
        string tenants = Tenants + $$""", { "id": "c", "hosts": ["c.example.org", "{{host}}"] }""";

        IReadOnlyList<ConfigError> errors = Errors(Config(tenants, Certificate("operator", """["localhost"]""", null)));

        Assert.Contains(errors, e => e.Path == "tenants[2].hosts[1]" && e.Message.Contains("is also a host of tenant 'b' (tenants[1].hosts[", StringComparison.Ordinal));
    }

    // ---------------- client certificates per route and per tenant ----------------

    private static readonly string CaFile = TestCertificates.Cert("alpha");

    private static readonly Lazy<string> s_noCertificates = new(() =>
    {
        string file = Path.Combine(Path.GetTempPath(), $"no-certificates-{Guid.NewGuid():N}.pem");
        File.WriteAllText(file, "not a PEM bundle\n");
        return file;
    });

    private static string ClientConfig(string route, string tenant = """{ "id": "t", "hosts": ["t.example.com"] }""", string listenerMode = "optional") => $$"""
        {
          "listeners": [ { "name": "https", "address": "127.0.0.1:0", "tls": true,
                           "clientCertificates": { "mode": "{{listenerMode}}", "caFile": "{{CaFile}}" } } ],
          "tenants": [ {{tenant}} ],
          "certificates": [ {{Certificate("localhost", """["localhost"]""", null)}} ],
          "routes": [ {{route}} ]
        }
        """;

    [Fact]
    public void Route_and_tenant_client_certificates_compile()
    {
        string json = ClientConfig(
            $$"""
            { "id": "a", "tenant": "t", "match": { "path": "/a" }, "direct": {}, "clientCertificates": { "mode": "required" } },
            { "id": "b", "match": { "path": "/b" }, "direct": {}, "clientCertificates": { "mode": "optional", "caFile": "{{CaFile}}" } },
            { "id": "c", "match": { "path": "/c" }, "direct": {}, "clientCertificates": { "mode": "off" } }
            """,
            $$"""{ "id": "t", "hosts": ["t.example.com"], "clientCertificates": { "caFile": "{{CaFile}}" } }""");

        Assert.Empty(Errors(json));
    }

    [Theory]
    [InlineData("""{ "mode": "sometimes" }""", "routes[0].clientCertificates.mode", "'sometimes' is not off, optional or required")]
    [InlineData("""{ "mode": "required", "caFile": "/nonexistent/ca.pem" }""", "routes[0].clientCertificates.caFile", "cannot read '/nonexistent/ca.pem'")]
    [InlineData("""{ "mode": "required", "caFile": "" }""", "routes[0].clientCertificates.caFile", "is empty")]
    [InlineData("""{ "mode": "off", "caFile": "ca.pem" }""", "routes[0].clientCertificates.caFile", "applies to mode optional or required only")]
    [InlineData("""{ "caFile": "ca.pem" }""", "routes[0].clientCertificates.caFile", "applies to mode optional or required only")]
    [InlineData("""{ "mode": "required", "crlFile": "x.crl" }""", "routes[0].clientCertificates.crlFile", "")]
    public void Route_client_certificate_errors_name_the_field(string clientCertificates, string path, string message)
    {
        IReadOnlyList<ConfigError> errors = Errors(ClientConfig($$"""{ "id": "r", "direct": {}, "clientCertificates": {{clientCertificates}} }"""));

        Assert.Contains(errors, e => e.Path == path && e.Message.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public void A_route_ca_file_without_certificates_is_an_error()
    {
        IReadOnlyList<ConfigError> errors = Errors(ClientConfig($$"""{ "id": "r", "direct": {}, "clientCertificates": { "mode": "required", "caFile": "{{s_noCertificates.Value}}" } }"""));

        Assert.Contains(errors, e => e.Path == "routes[0].clientCertificates.caFile" && e.Message.EndsWith("holds no certificate", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("""{ }""", "is required")]
    [InlineData("""{ "caFile": "/nonexistent/tenant-ca.pem" }""", "cannot read '/nonexistent/tenant-ca.pem'")]
    [InlineData("""{ "caFile": "NOCERTS" }""", "holds no certificate")]
    [InlineData("""{ "mode": "required" }""", "")]
    public void Tenant_client_certificate_errors_name_the_field(string clientCertificates, string message)
    {
        string tenant = $$"""{ "id": "t", "hosts": ["t.example.com"], "clientCertificates": {{clientCertificates.Replace("NOCERTS", s_noCertificates.Value)}} }""";

        IReadOnlyList<ConfigError> errors = Errors(ClientConfig("""{ "id": "r", "direct": {} }""", tenant));

        string path = clientCertificates.Contains("mode", StringComparison.Ordinal) ? "tenants[0].clientCertificates.mode" : "tenants[0].clientCertificates.caFile";
        Assert.Contains(errors, e => e.Path == path && e.Message.Contains(message, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("required")]
    [InlineData("optional")]
    public void A_route_checking_client_certificates_needs_a_listener_that_asks_for_them(string mode)
    {
        IReadOnlyList<ConfigError> errors = Errors(ClientConfig(
            $$"""{ "id": "r", "direct": {}, "clientCertificates": { "mode": "{{mode}}" } }""", listenerMode: "off"));

        ConfigError error = Assert.Single(errors);
        Assert.Equal("routes[0].clientCertificates.mode", error.Path);
        Assert.Contains("needs a TLS listener that asks for client certificates", error.Message);
    }
}

using System.Text;
using Appliance.Config;
using Appliance.Tls;

namespace Appliance.Tests.Config;

/// <summary>The certificate entry's acme block: what is refused (with its path), and what is served before and after issuance.</summary>
public sealed class AcmeConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("appliance-acme-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Config(string acme, string hosts = "\"a.test\"", bool plainListener = true) => $$"""
        { "server": { "stateDirectory": "state" },
          "listeners": [ { "name": "s", "address": "127.0.0.1:0", "tls": true }{{(plainListener ? ", { \"name\": \"p\", \"address\": \"127.0.0.1:0\", \"tls\": false }" : "")}} ],
          "certificates": [ { "name": "site", "hosts": [{{hosts}}], "acme": {{acme}} } ] }
        """;

    private IReadOnlyList<ConfigError> Errors(string json)
    {
        try
        {
            return ConfigCompiler.Validate(ConfigLoader.Parse(Encoding.UTF8.GetBytes(json)), _dir);
        }
        catch (ConfigException e)
        {
            return e.Errors;
        }
    }

    [Theory]
    [InlineData("""{ "directory": "https://acme.test/dir" }""", "\"*.a.test\"", "certificates[0].hosts[0]", "wildcard")]
    [InlineData("""{ "directory": "http://acme.test/dir" }""", "\"a.test\"", "certificates[0].acme.directory", "https")]
    [InlineData("""{ "directory": "acme.test/dir" }""", "\"a.test\"", "certificates[0].acme.directory", "https")]
    [InlineData("""{ }""", "\"a.test\"", "certificates[0].acme.directory", "is required")]
    [InlineData("""{ "directory": "https://acme.test/dir", "challenge": "dns-01" }""", "\"a.test\"", "certificates[0].acme.challenge", "tls-alpn-01")]
    [InlineData("""{ "directory": "https://acme.test/dir", "email": "not an address" }""", "\"a.test\"", "certificates[0].acme.email", "email")]
    [InlineData("""{ "directory": "https://acme.test/dir", "caFile": "/nonexistent/ca.pem" }""", "\"a.test\"", "certificates[0].acme.caFile", "cannot read")]
    [InlineData("""{ "directory": "https://acme.test/dir", "dirctory": "typo" }""", "\"a.test\"", "certificates[0].acme.dirctory", "")]
    public void Refuses_what_cannot_work_with_the_field_path(string acme, string hosts, string path, string words)
    {
        IReadOnlyList<ConfigError> errors = Errors(Config(acme, hosts));
        ConfigError error = Assert.Single(errors, e => e.Path == path);
        Assert.Contains(words, error.Message);
    }

    [Fact]
    public void Http01_needs_a_plain_listener_and_tls_alpn01_does_not()
    {
        Assert.Contains(Errors(Config("""{ "directory": "https://acme.test/dir" }""", plainListener: false)),
            e => e.Path == "certificates[0].acme.challenge" && e.Message.Contains("plain", StringComparison.Ordinal));
        Assert.Empty(Errors(Config("""{ "directory": "https://acme.test/dir", "challenge": "tls-alpn-01" }""", plainListener: false)));
    }

    [Fact]
    public void A_stand_in_serves_until_the_first_issuance_then_the_issued_pair()
    {
        ApplianceConfig config = ConfigLoader.Parse(Encoding.UTF8.GetBytes(Config("""{ "directory": "https://acme.test/dir", "email": "ops@a.test" }""")));
        ConfigSnapshot first = ConfigCompiler.Compile(config, _dir);
        AcmeCertificateModel model = Assert.Single(first.Acme);
        Assert.Equal(Path.Combine(_dir, "state", "acme", "site.crt"), model.CertificatePath);
        Assert.Equal(["a.test"], model.Hosts);
        LoadedCertificate standIn = Assert.Single(first.Certificates);
        Assert.Equal(standIn.Leaf.Subject, standIn.Leaf.Issuer); // self-signed
        Assert.Contains("a.test", standIn.SubjectAlternativeNames);

        // The same stand-in on the next compile (a certificate reload must not see a change).
        Assert.Equal(standIn.Thumbprint, Assert.Single(ConfigCompiler.Compile(config, _dir).Certificates).Thumbprint);

        SelfSignedCertificate.WritePem(model.CertificatePath, model.KeyPath, ["a.test"], TimeSpan.FromDays(30));
        LoadedCertificate issued = Assert.Single(ConfigCompiler.Compile(config, _dir).Certificates);
        Assert.NotEqual(standIn.Thumbprint, issued.Thumbprint);

        File.WriteAllText(model.KeyPath, "damaged"); // an unusable pair falls back to the stand-in; the renewer issues again
        Assert.Equal(standIn.Thumbprint, Assert.Single(ConfigCompiler.Compile(config, _dir).Certificates).Thumbprint);
    }
}

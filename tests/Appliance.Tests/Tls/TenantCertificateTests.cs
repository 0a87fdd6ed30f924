using Appliance.Tests.Support;

namespace Appliance.Tests.Tls;

/// <summary>
/// Tenants' own certificates on a real listener, seen by openssl s_client: tenant "a" brought the *.wild.test
/// certificate; tenant "b" holds api.wild.test and alpha.test and brought none. A handshake for b's names never gets
/// a's certificate: the operator's default answers on "https", and "strict" (whose default is a's) refuses it.
/// </summary>
public sealed class TenantCertificateTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync($$"""
        {
          "server": { "stateDirectory": "state" },
          "listeners": [
            { "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "localhost" },
            { "name": "strict", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "wild" }
          ],
          "tenants": [
            { "id": "a", "hosts": ["*.wild.test"] },
            { "id": "b", "hosts": ["api.wild.test", "alpha.test"] }
          ],
          "certificates": [
            { "name": "localhost", "hosts": ["localhost"], "certificatePath": "{{TestCertificates.Cert("localhost")}}", "keyPath": "{{TestCertificates.Key("localhost")}}" },
            { "name": "alpha", "hosts": ["alpha.test"], "certificatePath": "{{TestCertificates.Cert("alpha")}}", "keyPath": "{{TestCertificates.Key("alpha")}}" },
            { "name": "wild", "tenant": "a", "hosts": ["*.wild.test"], "certificatePath": "{{TestCertificates.Cert("wild")}}", "keyPath": "{{TestCertificates.Key("wild")}}" }
          ],
          "routes": [ { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "body": "hello" } } ]
        }
        """);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<string?> ServedSubject(string listener, string? serverName)
    {
        string[] sni = serverName is null ? ["-noservername"] : ["-servername", serverName];
        Peer.Result r = await Peer.OpenSslAsync("", ["s_client", "-connect", $"127.0.0.1:{_server.Port(listener)}", .. sni]);
        string output = r.Stdout.Replace("subject=CN=", "subject=CN = ");
        int at = output.IndexOf("subject=CN = ", StringComparison.Ordinal);
        return at < 0 || !output.Contains("BEGIN CERTIFICATE", StringComparison.Ordinal) ? null : output[(at + 13)..].Split('\n')[0].Trim();
    }

    [Theory]
    [InlineData("https", "a.wild.test", "*.wild.test")]     // a's name: a's certificate
    [InlineData("https", "api.wild.test", "localhost")]     // b's name: not a's wildcard, the operator's default
    [InlineData("https", "API.Wild.Test.", "localhost")]
    [InlineData("https", "alpha.test", "alpha.test")]       // an operator certificate for b's name is served as ever
    [InlineData("https", "x.api.wild.test", "localhost")]   // two labels under *.wild.test: nobody's certificate
    [InlineData("https", null, "localhost")]
    [InlineData("strict", "a.wild.test", "*.wild.test")]
    [InlineData("strict", "api.wild.test", null)]           // the default is a's: refused
    [InlineData("strict", "API.WILD.TEST.", null)]
    [InlineData("strict", null, "*.wild.test")]             // no name: nobody else's
    public async Task Openssl_gets_the_owners_certificate_or_none(string listener, string? serverName, string? expected)
    {
        Assert.Equal(expected, await ServedSubject(listener, serverName));
    }
}

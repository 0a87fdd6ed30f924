using System.Security.Cryptography.X509Certificates;
using Appliance.Tests.Support;
using Appliance.Tls;

namespace Appliance.Tests.Tls;

/// <summary>
/// An operator-supplied OCSP response (certificates[].ocspResponseFile): made offline by `openssl ocsp` for a
/// local CA's certificate that names no responder, stapled by the appliance (openssl s_client -status); revoked,
/// foreign, truncated and garbage responses are refused with the reason.
/// </summary>
public sealed class OcspResponseFileTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-ocspfile-" + Guid.NewGuid().ToString("N"));

    private string F(string name) => Path.Combine(_dir, name);

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        await Peer.OpenSslOkAsync("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", F("ca.key"), "-out", F("ca.pem"),
            "-days", "30", "-subj", "/CN=OCSP File CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature");
        foreach (string site in (string[])["site", "other"])
        {
            await Peer.OpenSslOkAsync("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", F(site + ".key"), "-out", F(site + ".csr"), "-subj", "/CN=localhost");
            await File.WriteAllTextAsync(F("ext.cnf"), "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n");
            await Peer.OpenSslOkAsync("x509", "-req", "-in", F(site + ".csr"), "-CA", F("ca.pem"), "-CAkey", F("ca.key"), "-CAcreateserial", "-out", F(site + ".pem"), "-days", "10", "-extfile", F("ext.cnf"));
            await File.WriteAllTextAsync(F(site + "-chain.pem"), await File.ReadAllTextAsync(F(site + ".pem")) + await File.ReadAllTextAsync(F("ca.pem")));
        }

        await Respond("site", "V", "good.der");
        await Respond("site", "R", "revoked.der");
        await Respond("other", "V", "other.der");
    }

    /// <summary>An OCSP response for one certificate, made without a responder: request out, response from the index.</summary>
    private async Task Respond(string site, string status, string output)
    {
        string serial = (await Peer.RunAsync("openssl", ["x509", "-in", F(site + ".pem"), "-noout", "-serial"])).Stdout.Trim().Split('=')[1];
        string expires = DateTime.UtcNow.AddDays(10).ToString("yyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture) + "Z";
        string revoked = status == "R" ? DateTime.UtcNow.AddHours(-1).ToString("yyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture) + "Z" : "";
        await File.WriteAllTextAsync(F("index.txt"), $"{status}\t{expires}\t{revoked}\t{serial}\tunknown\t/CN=localhost\n");
        await Peer.OpenSslOkAsync("ocsp", "-issuer", F("ca.pem"), "-cert", F(site + ".pem"), "-no_nonce", "-reqout", F(site + "-req.der"));
        await Peer.OpenSslOkAsync("ocsp", "-index", F("index.txt"), "-rsigner", F("ca.pem"), "-rkey", F("ca.key"), "-CA", F("ca.pem"),
            "-reqin", F(site + "-req.der"), "-respout", F(output), "-ndays", "1");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private string Config(string response) => $$"""
        {
          "server": { "stateDirectory": "state" },
          "admin": { "socketPath": "{{F("admin.sock")}}" },
          "listeners": [ { "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "site" } ],
          "certificates": [ { "name": "site", "hosts": ["localhost"], "certificatePath": "{{F("site-chain.pem")}}", "keyPath": "{{F("site.key")}}",
                              "ocspResponseFile": "{{F(response)}}" } ],
          "routes": [ { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "body": "hello" } } ]
        }
        """;

    [Fact]
    public async Task A_supplied_good_response_is_stapled_from_the_first_handshake()
    {
        await File.WriteAllTextAsync(F("appliance.json"), Config("good.der"));
        await using ApplianceProcess app = ApplianceProcess.Start("run", "--config", F("appliance.json"));
        int port = int.Parse((await app.WaitForLineAsync(@"listener https: https://127\.0\.0\.1:(\d+)")).Groups[1].Value);

        Peer.Result r = await Peer.OpenSslAsync("", "s_client", "-connect", $"127.0.0.1:{port}", "-servername", "localhost", "-status");
        Assert.True(r.Stdout.Contains("OCSP Response Status: successful", StringComparison.Ordinal), r.All);
        Assert.Contains("Cert Status: good", r.Stdout);

        Peer.Result certs = await Peer.CurlAsync("--unix-socket", F("admin.sock"), "http://a/v1/certificates");
        Assert.Matches(@"""ocsp"":\s*\{\s*""stapled"":\s*true", certs.Stdout);
    }

    [Theory]
    [InlineData("revoked.der", "the response says the certificate is revoked")]
    [InlineData("other.der", "not this certificate's")]
    public async Task A_response_that_does_not_vouch_for_this_certificate_is_refused(string response, string reason)
    {
        await File.WriteAllTextAsync(F("appliance.json"), Config(response));
        Peer.Result r = await Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "check-config", F("appliance.json")]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(reason, r.All);
    }

    [Fact]
    public async Task Truncated_or_corrupted_responses_are_format_errors_never_crashes()
    {
        byte[] good = await File.ReadAllBytesAsync(F("good.der"));
        using X509Certificate2 leaf = X509CertificateLoader.LoadCertificateFromFile(F("site.pem"));
        Assert.NotNull(OcspStaple.Read(good, leaf, DateTimeOffset.UtcNow));
        for (int n = 0; n < good.Length; n++)
        {
            Assert.Throws<FormatException>(() => OcspStaple.Read(good.AsSpan(0, n), leaf, DateTimeOffset.UtcNow));
        }

        var random = new Random(7);
        for (int i = 0; i < 2000; i++)
        {
            byte[] bad = (byte[])good.Clone();
            bad[random.Next(bad.Length)] ^= (byte)(1 + random.Next(255));
            try
            {
                OcspStaple.Read(bad, leaf, DateTimeOffset.UtcNow);
            }
            catch (FormatException)
            {
                // refused with a reason: fine (a flipped bit in the signature still parses, also fine)
            }
        }

        Assert.Throws<FormatException>(() => OcspStaple.Read(good, leaf, DateTimeOffset.UtcNow.AddDays(2))); // past nextUpdate
    }
}

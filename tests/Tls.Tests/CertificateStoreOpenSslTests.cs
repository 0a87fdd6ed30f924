using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using Appliance.Tls.Tests.Support;

namespace Appliance.Tls.Tests;

/// <summary>CertificateStore behind a real SslStream server, driven by `openssl s_client`.</summary>
public sealed partial class CertificateStoreOpenSslTests : IDisposable
{
    private static readonly LoadedCertificate Alpha = TestCertificates.Create("alpha", "alpha.example.com", "www.alpha.example.com");
    private static readonly LoadedCertificate Wildcard = TestCertificates.Create("wild", "*.apps.example.com");
    private static readonly LoadedCertificate Fallback = TestCertificates.Create("fallback", "fallback.example.com");

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private static CertificateStore Store(TlsServerOptions? options = null) =>
        new([Alpha, Wildcard, Fallback], "fallback", options ?? new TlsServerOptions());

    /// <summary>s_client waits (-ign_eof) until the server has written "hello" and closed.</summary>
    private static Task<OpenSsl.Result> Connect(LoopbackTlsServer server, string? serverName, params string[] extra)
    {
        var arguments = new List<string> { "s_client", "-connect", server.Address, "-ign_eof" };
        arguments.AddRange(serverName is null ? ["-noservername"] : ["-servername", serverName]);
        arguments.AddRange(extra);
        return OpenSsl.RunAsync([.. arguments]);
    }

    private static void AssertConnected(OpenSsl.Result result)
    {
        Assert.True(result.ExitCode == 0, "s_client failed:\n" + result.All);
        Assert.Contains("hello", result.Output);
    }

    [Theory]
    [InlineData("alpha.example.com", "alpha", "alpha.example.com")]
    [InlineData("www.alpha.example.com", "alpha", "alpha.example.com")]
    [InlineData("api.apps.example.com", "wild", "*.apps.example.com")]
    [InlineData("unknown.example.com", "fallback", "fallback.example.com")]
    [InlineData(null, "fallback", "fallback.example.com")]
    public async Task Serves_the_certificate_for_the_sni_name(string? serverName, string expectedSubject, string expectedSan)
    {
        CertificateStore store = Store();
        await using var server = LoopbackTlsServer.Start(store);

        OpenSsl.Result result = await Connect(server, serverName);

        AssertConnected(result);
        Assert.Contains($"subject=CN = {expectedSubject}", result.Output);
        using X509Certificate2 served = OpenSsl.ServedCertificate(result);
        Assert.Contains(expectedSan, new LoadedCertificateView(served).DnsNames);
        Assert.Equal(store.Certificates.Single(c => c.Name == expectedSubject).Thumbprint, served.GetCertHashString(HashAlgorithmName.SHA256));
    }

    [Theory]
    [InlineData("unknown.example.com")]
    [InlineData(null)]
    public async Task Refuses_unknown_or_missing_names_when_sni_is_required(string? serverName)
    {
        await using var server = LoopbackTlsServer.Start(Store(new TlsServerOptions { RequireSni = true }));

        OpenSsl.Result result = await Connect(server, serverName);

        Assert.NotEqual(0, result.ExitCode);
        Assert.DoesNotContain("BEGIN CERTIFICATE", result.Output);
        Assert.False((await server.NextHandshakeAsync()).Succeeded);
    }

    [Theory]
    [InlineData("h2,http/1.1", "h2")]
    [InlineData("http/1.1", "http/1.1")]
    public async Task Negotiates_alpn(string offered, string expected)
    {
        await using var server = LoopbackTlsServer.Start(Store());

        OpenSsl.Result result = await Connect(server, "alpha.example.com", "-alpn", offered);

        AssertConnected(result);
        Assert.Contains($"ALPN protocol: {expected}", result.Output);
    }

    [Theory]
    [InlineData("-tls1")]
    [InlineData("-tls1_1")]
    public async Task Refuses_tls_10_and_11(string protocolFlag)
    {
        await using var server = LoopbackTlsServer.Start(Store());

        // SECLEVEL=0 so the local OpenSSL really offers the old protocol; the refusal
        // (alert 70, protocol_version) must come from the server.
        OpenSsl.Result result = await Connect(server, "alpha.example.com", protocolFlag, "-cipher", "DEFAULT@SECLEVEL=0");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("alert protocol version", result.All);
        ServerHandshake handshake = await server.NextHandshakeAsync();
        Assert.False(handshake.Succeeded);
        Assert.Equal("alpha.example.com", handshake.ServerName);
    }

    [Theory]
    [InlineData("-tls1_2", "TLSv1.2")]
    [InlineData("-tls1_3", "TLSv1.3")]
    public async Task Accepts_tls_12_and_13(string protocolFlag, string expected)
    {
        await using var server = LoopbackTlsServer.Start(Store());

        OpenSsl.Result result = await Connect(server, "alpha.example.com", protocolFlag);

        AssertConnected(result);
        Assert.Matches($@"Protocol\s*:\s*{Regex.Escape(expected)}", result.Output);
    }

    [Theory]
    [InlineData("-tls1_2")]
    [InlineData("-tls1_3")]
    public async Task Resumes_sessions(string protocolFlag)
    {
        await using var server = LoopbackTlsServer.Start(Store());
        string session = _directory.File("session.pem");

        OpenSsl.Result first = await Connect(server, "alpha.example.com", protocolFlag, "-sess_out", session);
        OpenSsl.Result second = await Connect(server, "alpha.example.com", protocolFlag, "-sess_in", session);

        AssertConnected(first);
        Assert.Contains("New, TLSv1.", first.Output);
        AssertConnected(second);
        Assert.Contains("Reused, TLSv1.", second.Output);
    }

    [Fact]
    public async Task Sends_the_intermediate_chain()
    {
        X509Certificate2 root = SelfSignedCertificate.Create([], TimeSpan.FromDays(30), certificateAuthority: true, commonName: "Test Root");
        X509Certificate2 intermediate = SelfSignedCertificate.Create([], TimeSpan.FromDays(20), issuer: root, certificateAuthority: true, commonName: "Test Intermediate");
        X509Certificate2 leaf = SelfSignedCertificate.Create(["chain.example.com"], TimeSpan.FromDays(10), issuer: intermediate);
        LoadedCertificate chained = PemCertificateLoader.FromCertificate("chained", ["chain.example.com"], leaf, [intermediate]);
        string rootFile = _directory.Write("root.pem", root.ExportCertificatePem());
        await using var server = LoopbackTlsServer.Start(new CertificateStore([chained], null, new TlsServerOptions()));

        OpenSsl.Result result = await Connect(server, "chain.example.com", "-showcerts", "-CAfile", rootFile, "-verify_hostname", "chain.example.com");

        AssertConnected(result);
        Assert.Equal(2, CountOccurrences(result.Output, "-----BEGIN CERTIFICATE-----"));
        Assert.Contains("i:CN = Test Intermediate", result.Output);
        Assert.Contains("Verify return code: 0 (ok)", result.Output);
    }

    private static int CountOccurrences(string text, string value) => Regex.Matches(text, Regex.Escape(value)).Count;

    /// <summary>Reads the served certificate's SAN with the same code the store uses.</summary>
    private sealed class LoadedCertificateView(X509Certificate2 certificate)
    {
        public IReadOnlyList<string> DnsNames { get; } =
            [.. certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().SelectMany(e => e.EnumerateDnsNames())];
    }
}

using System.Net.Security;
using System.Security.Authentication;
using Appliance.Tls.Tests.Support;

namespace Appliance.Tls.Tests;

/// <summary>CertificateStore behind a real SslStream server, driven by an SslStream client.</summary>
public sealed class CertificateStoreTests
{
    private static readonly LoadedCertificate Alpha = TestCertificates.Create("alpha", "alpha.example.com", "www.alpha.example.com");
    private static readonly LoadedCertificate Beta = TestCertificates.Create("beta", "beta.example.com");
    private static readonly LoadedCertificate Wildcard = TestCertificates.Create("wild", "*.apps.example.com");
    private static readonly LoadedCertificate Fallback = TestCertificates.Create("fallback", "fallback.example.com");

    private static CertificateStore Store(string? defaultName = "fallback", TlsServerOptions? options = null) =>
        new([Alpha, Beta, Wildcard, Fallback], defaultName, options ?? new TlsServerOptions());

    [Theory]
    [InlineData("alpha.example.com", "alpha")]
    [InlineData("www.alpha.example.com", "alpha")]
    [InlineData("BETA.example.com", "beta")]
    [InlineData("api.apps.example.com", "wild")]
    [InlineData("unknown.example.com", "fallback")]
    [InlineData("x.y.apps.example.com", "fallback")]
    [InlineData(null, "fallback")]
    public async Task Serves_the_certificate_for_the_sni_name(string? serverName, string expected)
    {
        CertificateStore store = Store();
        await using var server = LoopbackTlsServer.Start(store);

        TlsTestClient.Outcome outcome = await TlsTestClient.ConnectAsync(server.Port, serverName);

        LoadedCertificate served = store.Certificates.Single(c => c.Name == expected);
        Assert.Equal(served.Thumbprint, outcome.Thumbprint);
        ServerHandshake handshake = await server.NextHandshakeAsync();
        Assert.True(handshake.Succeeded);
        Assert.Equal(serverName ?? string.Empty, handshake.ServerName, ignoreCase: true);
    }

    [Theory]
    [InlineData("unknown.example.com")]
    [InlineData(null)]
    public async Task Refuses_unknown_or_missing_names_when_sni_is_required(string? serverName)
    {
        CertificateStore store = Store(options: new TlsServerOptions { RequireSni = true });
        await using var server = LoopbackTlsServer.Start(store);

        await Assert.ThrowsAnyAsync<Exception>(() => TlsTestClient.ConnectAsync(server.Port, serverName));

        ServerHandshake handshake = await server.NextHandshakeAsync();
        Assert.False(handshake.Succeeded);
        Assert.Contains($"no certificate for server name '{serverName}'", Flatten(handshake.Error!));
    }

    [Fact]
    public async Task Still_serves_known_names_when_sni_is_required()
    {
        CertificateStore store = Store(options: new TlsServerOptions { RequireSni = true });
        await using var server = LoopbackTlsServer.Start(store);

        TlsTestClient.Outcome outcome = await TlsTestClient.ConnectAsync(server.Port, "beta.example.com");

        Assert.Equal(Beta.Thumbprint, outcome.Thumbprint);
    }

    [Fact]
    public async Task Refuses_unknown_names_without_a_default_certificate()
    {
        CertificateStore store = Store(defaultName: null);
        await using var server = LoopbackTlsServer.Start(store);

        await Assert.ThrowsAnyAsync<Exception>(() => TlsTestClient.ConnectAsync(server.Port, "unknown.example.com"));

        Assert.Contains("no certificate for server name 'unknown.example.com'", Flatten((await server.NextHandshakeAsync()).Error!));
    }

    [Theory]
    [InlineData(new[] { "h2", "http/1.1" }, "h2")]
    [InlineData(new[] { "http/1.1", "h2" }, "h2")]
    [InlineData(new[] { "http/1.1" }, "http/1.1")]
    public async Task Negotiates_alpn_in_server_preference_order(string[] offered, string expected)
    {
        CertificateStore store = Store();
        await using var server = LoopbackTlsServer.Start(store);

        TlsTestClient.Outcome outcome = await TlsTestClient.ConnectAsync(
            server.Port, "alpha.example.com", [.. offered.Select(p => new SslApplicationProtocol(p))]);

        Assert.Equal(expected, outcome.ApplicationProtocol.ToString());
        Assert.Equal(expected, (await server.NextHandshakeAsync()).ApplicationProtocol.ToString());
    }

    [Fact]
    public async Task Negotiates_http11_when_the_server_offers_only_it()
    {
        CertificateStore store = Store(options: new TlsServerOptions { ApplicationProtocols = [SslApplicationProtocol.Http11] });
        await using var server = LoopbackTlsServer.Start(store);

        TlsTestClient.Outcome outcome = await TlsTestClient.ConnectAsync(
            server.Port, "alpha.example.com", [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11]);

        Assert.Equal(SslApplicationProtocol.Http11, outcome.ApplicationProtocol);
    }

    [Theory]
    [InlineData(SslProtocols.Tls12)]
    [InlineData(SslProtocols.Tls13)]
    public async Task Accepts_tls_12_and_13(SslProtocols protocol)
    {
        await using var server = LoopbackTlsServer.Start(Store());

        TlsTestClient.Outcome outcome = await TlsTestClient.ConnectAsync(server.Port, "alpha.example.com", protocols: protocol);

        Assert.Equal(protocol, outcome.Protocol);
    }

    [Fact]
    public void Prebuilds_one_options_object_per_certificate()
    {
        CertificateStore store = Store();

        SslServerAuthenticationOptions alpha = store.Select("alpha.example.com")!;

        Assert.Same(alpha, store.Select("www.alpha.example.com"));
        Assert.Same(alpha, store.Select("ALPHA.example.com."));
        Assert.NotSame(alpha, store.Select("beta.example.com"));
        Assert.Same(store.Select("fallback.example.com"), store.Select("nobody.example.com"));
        Assert.Same(Alpha.Context, alpha.ServerCertificateContext);
        Assert.Equal(SslProtocols.Tls12 | SslProtocols.Tls13, alpha.EnabledSslProtocols);
        Assert.Equal([SslApplicationProtocol.Http2, SslApplicationProtocol.Http11], alpha.ApplicationProtocols);
        Assert.False(alpha.AllowRenegotiation);
        Assert.False(alpha.ClientCertificateRequired);
        Assert.True(alpha.AllowTlsResume);
        Assert.Equal(System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck, alpha.CertificateRevocationCheckMode);
        // Setting a cipher suites policy would silently turn session resumption off.
        Assert.Null(alpha.CipherSuitesPolicy);
        Assert.Null(alpha.ServerCertificate);
        Assert.Null(alpha.ServerCertificateSelectionCallback);
    }

    [Fact]
    public void Select_refuses_with_null_and_select_certificate_names_the_choice()
    {
        CertificateStore strict = Store(options: new TlsServerOptions { RequireSni = true });

        Assert.Null(strict.Select(null));
        Assert.Null(strict.Select("unknown.example.com"));
        Assert.Same(Wildcard, strict.SelectCertificate("x.apps.example.com"));
        Assert.Same(Fallback, strict.DefaultCertificate);
        Assert.Same(Fallback, Store().SelectCertificate(null));
    }

    [Fact]
    public async Task Select_async_completes_synchronously()
    {
        CertificateStore store = Store();

        // default(SslClientHelloInfo) carries no server name, as a handshake without SNI.
        ValueTask<SslServerAuthenticationOptions> selection = store.SelectAsync(null!, default, null, CancellationToken.None);

        Assert.True(selection.IsCompletedSuccessfully);
        Assert.Same(store.Select(null), await selection);
    }

    [Fact]
    public void Rejects_a_host_served_by_two_certificates_naming_both()
    {
        LoadedCertificate other = TestCertificates.Create("other", "BETA.example.com");

        var error = Assert.Throws<ArgumentException>(() => new CertificateStore([Alpha, Beta, other], null, new TlsServerOptions()));

        Assert.Contains("'beta.example.com' is given twice", error.Message);
        Assert.Contains("(certificate 'beta')", error.Message);
        Assert.Contains("(certificate 'other')", error.Message);
    }

    [Fact]
    public void Rejects_an_invalid_host_naming_the_certificate()
    {
        LoadedCertificate bad = TestCertificates.Create("bad", "a.example.com");
        var withBadHost = PemCertificateLoader.FromCertificate("bad", ["*.com"], bad.Leaf, null);

        var error = Assert.Throws<ArgumentException>(() => new CertificateStore([withBadHost], null, new TlsServerOptions()));

        Assert.Contains("'*.com' (certificate 'bad')", error.Message);
    }

    [Fact]
    public void Rejects_an_unknown_default_certificate()
    {
        var error = Assert.Throws<ArgumentException>(() => new CertificateStore([Alpha], "missing", new TlsServerOptions()));

        Assert.Contains("default certificate 'missing'", error.Message);
    }

    [Fact]
    public void Rejects_two_certificates_with_the_same_name()
    {
        LoadedCertificate twin = TestCertificates.Create("alpha", "twin.example.com");

        var error = Assert.Throws<ArgumentException>(() => new CertificateStore([Alpha, twin], null, new TlsServerOptions()));

        Assert.Contains("two certificates are named 'alpha'", error.Message);
    }

    private static string Flatten(Exception error)
    {
        var messages = new List<string>();
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            messages.Add(e.Message);
        }

        return string.Join(" | ", messages);
    }
}

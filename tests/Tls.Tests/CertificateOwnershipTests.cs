using System.Security.Authentication;
using Appliance.Tls.Tests.Support;

namespace Appliance.Tls.Tests;

/// <summary>
/// Tenants' own certificates in a <see cref="CertificateStore"/>: a certificate with an owner is never served for a
/// name another owner holds; the default takes over when it may, else the handshake is refused. Operator
/// certificates (no owner) are served as before.
/// </summary>
public sealed class CertificateOwnershipTests
{
    // Tenant "a" holds *.example.com and brought a certificate for it; tenant "b" holds api.example.com and
    // *.b.example.com and has no certificate for them; tenant "c" holds shop.example.com and brought one.
    private static readonly LoadedCertificate AWildcard = TestCertificates.Create("a-wild", "*.example.com");
    private static readonly LoadedCertificate CShop = TestCertificates.Create("c-shop", "shop.example.com");
    private static readonly LoadedCertificate Operator = TestCertificates.Create("operator", "operator.example.net", "*.b.example.com");
    private static readonly LoadedCertificate Fallback = TestCertificates.Create("fallback", "fallback.example.net");

    private static CertificateOwnership Ownership(params (string Certificate, string Owner)[] extra) => new(
        [new("a-wild", "a"), new("c-shop", "c"), .. extra.Select(e => new KeyValuePair<string, string>(e.Certificate, e.Owner))],
        [new("*.example.com", "a"), new("api.example.com", "b"), new("*.b.example.com", "b"), new("shop.example.com", "c"), new("example.com", "b")]);

    private static CertificateStore Store(string? defaultName = "fallback", TlsServerOptions? options = null, CertificateOwnership? ownership = null) =>
        new([AWildcard, CShop, Operator, Fallback], defaultName, options ?? new TlsServerOptions(), ownership ?? Ownership());

    [Theory]
    [InlineData("www.example.com", "a-wild")]            // a's name, a's certificate
    [InlineData("WWW.Example.COM.", "a-wild")]
    [InlineData("api.example.com", "fallback")]          // b's name: a's wildcard is not served, the operator default is
    [InlineData("API.EXAMPLE.COM.", "fallback")]
    [InlineData("shop.example.com", "c-shop")]           // c's exact name beats a's wildcard, and c has a certificate
    [InlineData("x.b.example.com", "operator")]          // operator certificates are served for any tenant's name
    [InlineData("nobody.example.net", "fallback")]
    [InlineData(null, "fallback")]
    public void Serves_an_owned_certificate_only_for_its_owners_names(string? serverName, string expected)
    {
        CertificateStore store = Store();

        Assert.Equal(expected, store.SelectCertificate(serverName)?.Name);
        Assert.Same(store.Certificates.Single(c => c.Name == expected).Context, store.Select(serverName)!.ServerCertificateContext);
    }

    [Fact]
    public void A_wildcard_covers_one_label_and_not_the_apex()
    {
        CertificateStore store = Store();

        // "deep.api.example.com" is two labels below *.example.com: neither a's certificate nor a's name.
        Assert.Equal("fallback", store.SelectCertificate("deep.api.example.com")?.Name);
        // The apex belongs to b (exact), and *.example.com never covers it.
        Assert.Equal("fallback", store.SelectCertificate("example.com")?.Name);
        // Only one label under *.b.example.com is b's: the operator's *.b.example.com certificate is not served either.
        Assert.Equal("fallback", store.SelectCertificate("y.x.b.example.com")?.Name);
    }

    [Fact]
    public void A_default_owned_by_another_tenant_is_not_a_fallback()
    {
        CertificateStore store = Store(defaultName: "a-wild");

        Assert.Null(store.Select("api.example.com"));
        Assert.Null(store.SelectCertificate("Api.Example.Com."));
        // A name nobody owns, and no SNI at all, still get the default.
        Assert.Same(AWildcard, store.SelectCertificate("nobody.example.net"));
        Assert.Same(AWildcard, store.SelectCertificate(null));
    }

    [Fact]
    public void A_default_owned_by_the_names_tenant_is_the_fallback()
    {
        LoadedCertificate bDefault = TestCertificates.Create("b-default", "b-default.example.net");
        var store = new CertificateStore([AWildcard, bDefault], "b-default", new TlsServerOptions(), Ownership(("b-default", "b")));

        Assert.Same(bDefault, store.SelectCertificate("api.example.com"));
        Assert.Same(AWildcard, store.SelectCertificate("www.example.com"));
    }

    [Fact]
    public void Requiring_sni_refuses_instead_of_falling_back()
    {
        CertificateStore store = Store(options: new TlsServerOptions { RequireSni = true });

        Assert.Null(store.Select("api.example.com"));
        Assert.Same(AWildcard, store.SelectCertificate("www.example.com"));
    }

    [Fact]
    public void Without_ownership_every_certificate_is_served_as_before()
    {
        var store = new CertificateStore([AWildcard, Fallback], "fallback", new TlsServerOptions());

        Assert.Same(AWildcard, store.SelectCertificate("api.example.com"));
    }

    [Fact]
    public void A_name_given_to_two_owners_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => new CertificateOwnership([], [new("API.example.com", "a"), new("api.example.com.", "b")]));

        Assert.Contains("'api.example.com' is given twice", error.Message);
    }

    [Fact]
    public async Task A_refused_handshake_names_both_owners()
    {
        CertificateStore store = Store(defaultName: "a-wild");
        await using var server = LoopbackTlsServer.Start(store);

        await Assert.ThrowsAnyAsync<Exception>(() => TlsTestClient.ConnectAsync(server.Port, "api.example.com"));

        Exception error = (await server.NextHandshakeAsync()).Error!;
        while (error is not AuthenticationException && error.InnerException is { } inner)
        {
            error = inner;
        }

        Assert.Equal("no certificate for server name 'api.example.com': certificate 'a-wild' belongs to 'a', the name to 'b'", error.Message);
    }

    [Fact]
    public async Task A_real_client_gets_the_owners_certificate_or_the_default()
    {
        CertificateStore store = Store();
        await using var server = LoopbackTlsServer.Start(store);

        Assert.Equal(AWildcard.Thumbprint, (await TlsTestClient.ConnectAsync(server.Port, "www.example.com")).Thumbprint);
        Assert.Equal(Fallback.Thumbprint, (await TlsTestClient.ConnectAsync(server.Port, "api.example.com")).Thumbprint);
    }
}

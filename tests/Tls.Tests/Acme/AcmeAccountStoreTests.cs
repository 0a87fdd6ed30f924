using System.Security.Cryptography;
using Appliance.Tls.Acme;
using Appliance.Tls.Tests.Support;

namespace Appliance.Tls.Tests.Acme;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class AcmeAccountStoreTests
{
    [Fact]
    public void The_key_is_made_once_with_mode_0600_and_reused()
    {
        using var dir = new TempDirectory();
        var store = new AcmeAccountStore(dir.File("acme"));
        ECDsa first = store.LoadOrCreateKey(out bool created);
        Assert.True(created);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(store.KeyPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(store.Directory));

        ECDsa again = new AcmeAccountStore(dir.File("acme")).LoadOrCreateKey(out created);
        Assert.False(created);
        Assert.Equal(first.ExportSubjectPublicKeyInfo(), again.ExportSubjectPublicKeyInfo());
    }

    [Fact]
    public void Account_urls_are_kept_per_directory()
    {
        using var dir = new TempDirectory();
        var store = new AcmeAccountStore(dir.Path);
        var a = new Uri("https://a.test/dir");
        var b = new Uri("https://b.test/dir");
        Assert.Null(store.AccountUrl(a));
        store.SetAccountUrl(a, "https://a.test/acct/1");
        store.SetAccountUrl(b, "https://b.test/acct/2");
        Assert.Equal("https://a.test/acct/1", new AcmeAccountStore(dir.Path).AccountUrl(a));
        store.SetAccountUrl(a, null);
        Assert.Null(store.AccountUrl(a));
        Assert.Equal("https://b.test/acct/2", store.AccountUrl(b));
    }

    [Fact]
    public void A_damaged_url_file_costs_only_a_new_registration()
    {
        using var dir = new TempDirectory();
        var store = new AcmeAccountStore(dir.Path);
        File.WriteAllText(store.UrlPath, "garbage\nhttps://a.test/dir http://a.test/acct\n\0\0\nhttps://a.test/dir https://a.test/acct/9 extra\n");
        Assert.Null(store.AccountUrl(new Uri("https://a.test/dir")));
    }

    [Fact]
    public void A_key_file_that_is_not_p256_is_refused_not_replaced()
    {
        using var dir = new TempDirectory();
        var store = new AcmeAccountStore(dir.Path);
        using var rsa = RSA.Create(2048);
        File.WriteAllText(store.KeyPath, rsa.ExportPkcs8PrivateKeyPem());
        Assert.Throws<CertificateLoadException>(() => store.LoadOrCreateKey(out _));
        File.WriteAllText(store.KeyPath, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        Assert.Throws<CertificateLoadException>(() => new AcmeAccountStore(dir.Path).LoadOrCreateKey(out _));
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        File.WriteAllText(store.KeyPath, p384.ExportPkcs8PrivateKeyPem());
        Assert.Throws<CertificateLoadException>(() => new AcmeAccountStore(dir.Path).LoadOrCreateKey(out _));
        Assert.Contains("BEGIN PRIVATE KEY", File.ReadAllText(store.KeyPath));
    }
}

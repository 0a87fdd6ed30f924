namespace Appliance.Tls.Tests.Support;

/// <summary>In-memory certificates, ready to put in a <see cref="CertificateStore"/>.</summary>
internal static class TestCertificates
{
    /// <summary>An ECDSA certificate named <paramref name="name"/> whose SAN and configured hosts are <paramref name="hosts"/>.</summary>
    public static LoadedCertificate Create(string name, params string[] hosts) =>
        PemCertificateLoader.FromCertificate(
            name,
            hosts,
            SelfSignedCertificate.Create(hosts, TimeSpan.FromDays(1), commonName: name),
            chain: null);
}

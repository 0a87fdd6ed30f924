using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tls.Tests;

public sealed class RevocationListTests
{
    private static (X509Certificate2 Ca, byte[] Crl) MakeCaAndCrl(params byte[][] revoked)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=List CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        X509Certificate2 ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(10));
        var builder = new CertificateRevocationListBuilder();
        foreach (byte[] serial in revoked)
        {
            builder.AddEntry(serial);
        }

        return (ca, builder.Build(ca, BigInteger.One, DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256));
    }

    [Fact]
    public void Reads_der_and_pem_and_counts_the_revoked_serials()
    {
        (X509Certificate2 ca, byte[] der) = MakeCaAndCrl([1, 2], [3, 4], [5]);
        Assert.Equal(3, RevocationList.Load(der, [ca]).RevokedCount);
        Assert.Equal(3, RevocationList.Load(System.Text.Encoding.ASCII.GetBytes(PemEncoding.WriteString("X509 CRL", der)), [ca]).RevokedCount);
    }

    [Fact]
    public void Every_truncation_and_corruption_is_a_format_error()
    {
        (X509Certificate2 ca, byte[] der) = MakeCaAndCrl([9, 9]);
        for (int n = 0; n < der.Length; n++)
        {
            Assert.Throws<FormatException>(() => RevocationList.Load(der.AsSpan(0, n), [ca]));
        }

        var random = new Random(3);
        for (int i = 0; i < 3000; i++)
        {
            byte[] bad = (byte[])der.Clone();
            bad[random.Next(bad.Length)] ^= (byte)(1 + random.Next(255));
            // A flipped bit either breaks the DER or the signature: never accepted, never another exception.
            Assert.Throws<FormatException>(() => RevocationList.Load(bad, [ca]));
        }
    }

    [Fact]
    public void Refuses_a_list_signed_by_another_key_under_the_same_name_and_pem_without_a_crl()
    {
        (X509Certificate2 _, byte[] der) = MakeCaAndCrl();
        (X509Certificate2 sameName, _) = MakeCaAndCrl(); // "CN=List CA" too, with its own key
        Assert.Contains("is not signed by that CA", Assert.Throws<FormatException>(() => RevocationList.Load(der, [sameName])).Message);
        Assert.Throws<FormatException>(() => RevocationList.Load("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"u8, [sameName]));
    }
}

using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tests.Support;

/// <summary>Client-certificate CAs and client certificates (id-kp-clientAuth) for the mutual TLS tests.</summary>
public static class ClientCertificates
{
    /// <summary>A self-signed ECDSA CA that may sign certificates and CRLs.</summary>
    public static (X509Certificate2 Ca, ECDsa Key) MakeCa(string name)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        return (request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30)), key);
    }

    /// <summary>
    /// Writes DIR/FILE.crt and DIR/FILE.key: a client certificate for SUBJECT ("CN=name") signed by the CA, with the DNS
    /// name "name.clients.test" and any extra URI and email SANs.
    /// </summary>
    public static void Write(string dir, string file, string subject, X509Certificate2 ca, ECDsa caKey, Uri? uri = null, string? email = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(subject[3..] + ".clients.test");
        if (uri is not null)
        {
            san.AddUri(uri);
        }

        if (email is not null)
        {
            san.AddEmailAddress(email);
        }

        request.CertificateExtensions.Add(san.Build());
        using X509Certificate2 cert = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(10), [1, 2, 3, 4]);
        File.WriteAllText(Path.Combine(dir, file + ".crt"), cert.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, file + ".key"), key.ExportPkcs8PrivateKeyPem());
    }
}

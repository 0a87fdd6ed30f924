using Appliance.Tls;

namespace Appliance.Tests.Support;

/// <summary>Self-signed ECDSA certificates for the test hosts, written once per test run into a temp folder.</summary>
public static class TestCertificates
{
    private static readonly Lazy<string> s_directory = new(Create);

    public static string Directory => s_directory.Value;

    public static string Cert(string name) => Path.Combine(Directory, name + ".crt");

    public static string Key(string name) => Path.Combine(Directory, name + ".key");

    private static string Create()
    {
        string dir = Path.Combine(Path.GetTempPath(), "appliance-tests-certs-" + Environment.ProcessId);
        System.IO.Directory.CreateDirectory(dir);
        SelfSignedCertificate.WritePem(Path.Combine(dir, "localhost.crt"), Path.Combine(dir, "localhost.key"), ["localhost"], TimeSpan.FromDays(2));
        SelfSignedCertificate.WritePem(Path.Combine(dir, "alpha.crt"), Path.Combine(dir, "alpha.key"), ["alpha.test"], TimeSpan.FromDays(2));
        SelfSignedCertificate.WritePem(Path.Combine(dir, "wild.crt"), Path.Combine(dir, "wild.key"), ["*.wild.test"], TimeSpan.FromDays(2));
        return dir;
    }
}

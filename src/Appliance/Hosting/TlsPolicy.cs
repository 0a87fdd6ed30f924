using System.Runtime.InteropServices;

namespace Appliance.Hosting;

/// <summary>
/// The appliance's TLS posture for every OpenSSL context in the process: TLS 1.2 and 1.3 only, only AEAD suites
/// with forward secrecy (ECDHE with AES-GCM or ChaCha20-Poly1305), X25519 and P-256. The server's order is Mozilla's
/// intermediate one (AES-128-GCM, then AES-256-GCM, then ChaCha20-Poly1305; every one of them strong), except that a
/// client that lists ChaCha20-Poly1305 first (a phone without AES instructions) gets it (PrioritizeChaCha). AES-128
/// first: a third less work per byte than AES-256 and, on TLS 1.3, SHA-256 for the key schedule rather than SHA-384. .NET gives no per-context control short of CipherSuitesPolicy, which silently turns session resumption
/// off (DESIGN.md), so the policy is OpenSSL's own system_default, loaded from OPENSSL_CONF when OpenSSL starts.
/// The file exists only for that moment. An operator's own OPENSSL_CONF wins; APPLIANCE_TLS_POLICY=system keeps
/// the distribution's defaults.
/// </summary>
internal static partial class TlsPolicy
{
    public const string OpenSslConfig = """
        # Written by the appliance at start and removed once OpenSSL has read it.
        openssl_conf = appliance_init

        [appliance_init]
        ssl_conf = appliance_ssl

        [appliance_ssl]
        system_default = appliance_tls

        [appliance_tls]
        MinProtocol = TLSv1.2
        CipherString = ECDHE+AESGCM+AES128:ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL
        Ciphersuites = TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
        Groups = X25519:P-256
        Options = ServerPreference,PrioritizeChaCha
        """;

    /// <summary>Must run before anything in the process touches OpenSSL (certificates included).</summary>
    public static void Apply()
    {
        if (Environment.GetEnvironmentVariable("OPENSSL_CONF") is { Length: > 0 }
            || Environment.GetEnvironmentVariable("APPLIANCE_TLS_POLICY") == "system")
        {
            return;
        }

        // The file lives in memory (memfd), named by /proc/self/fd: the hardened unit's file system is read-only.
        int fd = MemfdCreate("appliance-openssl.cnf", 1 /* MFD_CLOEXEC */);
        if (fd < 0)
        {
            Console.Error.WriteLine("appliance: TLS policy not applied (memfd_create failed); OpenSSL's defaults are in force");
            return;
        }

        using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
        try
        {
            RandomAccess.Write(handle, System.Text.Encoding.UTF8.GetBytes(OpenSslConfig), 0);
            // Environment.SetEnvironmentVariable changes only .NET's copy; OpenSSL reads the C environment.
            if (SetEnv("OPENSSL_CONF", $"/proc/self/fd/{fd}", 1) != 0)
            {
                return;
            }

            _ = System.Security.Cryptography.SHA256.HashData(ReadOnlySpan<byte>.Empty); // OpenSSL starts here and reads the file
            _ = UnsetEnv("OPENSSL_CONF");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"appliance: TLS policy not applied ({e.Message}); OpenSSL's defaults are in force");
        }
    }

    [LibraryImport("libc", EntryPoint = "memfd_create", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int MemfdCreate(string name, uint flags);

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "unsetenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnsetEnv(string name);
}

using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Appliance.Tls;

/// <summary>
/// Keeps server-side session resumption working with many certificates, through the one .NET 10 internal it
/// needs, reached with <see cref="UnsafeAccessorAttribute"/> (resolved at compile time, so AOT-safe; no reflection).
/// SslStream shares one OpenSSL <c>SSL_CTX</c> per (certificate chain, protocols, ALPN on/off)
/// from a process-wide cache, and the session cache and ticket keys live in that <c>SSL_CTX</c>. Every 32nd
/// insertion the cache frees each context that has no live connection, so on a box with more than a few dozen
/// certificates an idle certificate loses its sessions and every returning client does a full handshake. A pin
/// rents the cached context once more and holds it while a listener serves the certificate, so it is never
/// evicted. If a future runtime moves these internals, the accessors throw <see cref="MissingMemberException"/>;
/// pinning then degrades to plain .NET behaviour and <see cref="Unavailable"/> says why, which the host logs at
/// start. (Whether a handshake resumed is read from the wire instead: <see cref="HandshakeObserverStream"/>.)
/// </summary>
public static class SessionResumption
{
    private const string AuthenticationOptions = "System.Net.Security.SslAuthenticationOptions, System.Net.Security";
    private const string OpenSsl = "Interop+OpenSsl, System.Net.Security";
    private const string SslContextHandle = "Microsoft.Win32.SafeHandles.SafeSslContextHandle, System.Net.Security";

    private static volatile string? s_unavailable;

    /// <summary>Why pinning does not work in this runtime; null when it does.</summary>
    public static string? Unavailable => s_unavailable;

    /// <summary>
    /// Rents the cached OpenSSL context that handshakes with these exact options will use, creating it now if
    /// needed, and keeps it from eviction until the returned pin is disposed. Null when the runtime does not allow
    /// it (see <see cref="Unavailable"/>) or on a platform without OpenSSL.
    /// </summary>
    internal static IDisposable? Pin(SslServerAuthenticationOptions options)
    {
        if (!OperatingSystem.IsLinux() || s_unavailable is not null)
        {
            return null;
        }

        try
        {
            object internalOptions = NewAuthenticationOptions();
            UpdateOptions(internalOptions, options);
            return (SafeHandle)GetOrCreateSslContextHandle(null, internalOptions, allowCached: true);
        }
        catch (Exception e) when (e is MissingMemberException or TypeLoadException or InvalidCastException)
        {
            s_unavailable = "cannot pin OpenSSL contexts in this runtime (" + e.Message + "); idle certificates may lose resumption";
            return null;
        }
    }

    [UnsafeAccessor(UnsafeAccessorKind.Constructor)]
    [return: UnsafeAccessorType(AuthenticationOptions)]
    private static extern object NewAuthenticationOptions();

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "UpdateOptions")]
    private static extern void UpdateOptions([UnsafeAccessorType(AuthenticationOptions)] object target, SslServerAuthenticationOptions options);

    [UnsafeAccessor(UnsafeAccessorKind.StaticMethod, Name = "GetOrCreateSslContextHandle")]
    [return: UnsafeAccessorType(SslContextHandle)]
    private static extern object GetOrCreateSslContextHandle(
        [UnsafeAccessorType(OpenSsl)] object? type, [UnsafeAccessorType(AuthenticationOptions)] object options, bool allowCached);
}

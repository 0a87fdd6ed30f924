using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tls;

/// <summary>A pinned OpenSSL context and its session-ticket registration; disposing lets both go.</summary>
internal sealed class ContextPin(SafeHandle context, IDisposable? tickets) : IDisposable
{
    public SafeHandle Context { get; } = context;

    public void Dispose()
    {
        tickets?.Dispose();
        Context.Dispose();
    }
}

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
    internal static ContextPin? Pin(SslServerAuthenticationOptions options, bool prepare = true)
    {
        if (!OperatingSystem.IsLinux() || s_unavailable is not null)
        {
            return null;
        }

        try
        {
            object internalOptions = NewAuthenticationOptions();
            UpdateOptions(internalOptions, options);
            var context = (SafeHandle)GetOrCreateSslContextHandle(null, internalOptions, allowCached: true);
            IdleBuffers.Release(context);
            if (prepare)
            {
                TlsRecordStream.PrepareServerContext(context); // not the record layer's own learning context
            }

            return new ContextPin(context, SessionTickets.Attach(context, CertificateHash(options)));
        }
        catch (Exception e) when (e is MissingMemberException or TypeLoadException or InvalidCastException)
        {
            s_unavailable = "cannot pin OpenSSL contexts in this runtime (" + e.Message + "); idle certificates may lose resumption";
            return null;
        }
    }

    private static byte[] CertificateHash(SslServerAuthenticationOptions options) =>
        (options.ServerCertificateContext?.TargetCertificate ?? options.ServerCertificate as X509Certificate2)?.GetCertHash(HashAlgorithmName.SHA256) ?? [];

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

/// <summary>
/// Sets OpenSSL's SSL_MODE_RELEASE_BUFFERS on a pinned context, as nginx does on all of its contexts: a connection's
/// TLS record buffers (about 34 KiB: one for reading, one for writing) are freed whenever they are empty and taken
/// again for the next record, instead of staying with every idle keep-alive connection. The mode is inherited by
/// each SSL made from the context afterwards, which here is every one (the pin happens at the certificate's first
/// handshake, before .NET makes that handshake's SSL). .NET does not set it and has no option for it, so the call
/// goes to the libssl SslStream uses (<see cref="OpenSslLibrary"/>); when that cannot be told, nothing is changed.
/// </summary>
internal static unsafe class IdleBuffers
{
    private const int SslCtrlMode = 33; // SSL_CTRL_MODE, the same in OpenSSL 1.1 and 3
    private const nint SslModeReleaseBuffers = 0x10;

    /// <summary>Whether contexts get the mode (false where the loaded libssl could not be found).</summary>
    public static bool Available => OpenSslLibrary.SslAvailable;

    public static void Release(SafeHandle context)
    {
        if (Available && !context.IsInvalid)
        {
            OpenSslLibrary.With(context, ctx => OpenSslLibrary.SslCtxCtrl(ctx, SslCtrlMode, SslModeReleaseBuffers, 0));
        }
    }

    /// <summary>The context's mode bits (SSL_CTX_get_mode); -1 where the libssl could not be found.</summary>
    internal static long Mode(SafeHandle context) =>
        Available ? OpenSslLibrary.With(context, ctx => OpenSslLibrary.SslCtxCtrl(ctx, SslCtrlMode, 0, 0)) : -1; // OR-ing in nothing reads the mode
}

using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tls;

/// <summary>
/// The certificates one listener serves and the SNI map over them. Built once per config;
/// each certificate gets exactly one prebuilt <see cref="SslServerAuthenticationOptions"/>,
/// handed out to every handshake that selects it (callers must not mutate it).
/// </summary>
public sealed class CertificateStore
{
    private readonly SniMap<CertificateBinding> _map;
    private readonly CertificateBinding[] _bindings;
    private readonly CertificateBinding? _fallback;
    private readonly CertificateOwnership? _ownership;
    private int _services;

    /// <param name="certificates">Certificates and the hosts each serves.</param>
    /// <param name="defaultCertificateName">
    /// Certificate for handshakes without SNI or with an unknown name; null refuses them.
    /// Ignored when <see cref="TlsServerOptions.RequireSni"/> is set.
    /// </param>
    /// <param name="options">Settings shared by all certificates.</param>
    /// <param name="ownership">
    /// Owners of certificates and names (tenants' own domains and certificates); null when nobody but the operator
    /// brings certificates.
    /// </param>
    /// <exception cref="ArgumentException">
    /// Two certificates share a name or a host, a host is invalid, or the default is unknown.
    /// </exception>
    public CertificateStore(
        IReadOnlyList<LoadedCertificate> certificates,
        string? defaultCertificateName,
        TlsServerOptions options,
        CertificateOwnership? ownership = null)
    {
        ArgumentNullException.ThrowIfNull(certificates);
        ArgumentNullException.ThrowIfNull(options);

        var bindings = new Dictionary<string, CertificateBinding>(StringComparer.Ordinal);
        var hosts = new List<KeyValuePair<string, CertificateBinding>>();
        foreach (LoadedCertificate certificate in certificates)
        {
            var binding = new CertificateBinding(certificate, CreateOptions(certificate, options), ownership?.OwnerOfCertificate(certificate.Name));
            if (!bindings.TryAdd(certificate.Name, binding))
            {
                throw new ArgumentException($"two certificates are named '{certificate.Name}'", nameof(certificates));
            }

            foreach (string host in certificate.Hosts)
            {
                hosts.Add(new(host, binding));
            }
        }

        CertificateBinding? defaultBinding = null;
        if (defaultCertificateName is not null && !bindings.TryGetValue(defaultCertificateName, out defaultBinding))
        {
            throw new ArgumentException($"the default certificate '{defaultCertificateName}' is not among the certificates", nameof(defaultCertificateName));
        }

        _map = SniMap<CertificateBinding>.Build(hosts, options.RequireSni ? null : defaultBinding);
        _fallback = options.RequireSni ? null : defaultBinding;
        _ownership = ownership;
        _bindings = [.. bindings.Values];
        Certificates = [.. certificates];
        Options = options;
        DefaultCertificate = defaultBinding?.Certificate;
    }

    public IReadOnlyList<LoadedCertificate> Certificates { get; }

    public TlsServerOptions Options { get; }

    /// <summary>The configured default certificate (served to unknown names unless SNI is required).</summary>
    public LoadedCertificate? DefaultCertificate { get; }

    /// <summary>
    /// Called when a listener starts serving this store. From then on, a certificate's OpenSSL context is pinned at
    /// its first handshake, so its sessions survive however many other certificates the process serves (a
    /// certificate nobody has used has no sessions to lose, and costs nothing: 10,000 configured, a few in use).
    /// Certificates that were pinned in <paramref name="previous"/> (the store this one replaces) are pinned at once,
    /// so a reload does not let their contexts, and sessions, go. Balanced by <see cref="EndService"/>; a store that
    /// is built but never served (a dry run, a refused reload) pins nothing.
    /// </summary>
    public void BeginService(CertificateStore? previous = null)
    {
        if (Interlocked.Increment(ref _services) != 1 || previous is null)
        {
            return;
        }

        var warm = new HashSet<string>(previous._bindings.Where(b => b.Pinned).Select(b => b.Certificate.Thumbprint), StringComparer.Ordinal);
        foreach (CertificateBinding binding in _bindings)
        {
            if (warm.Contains(binding.Certificate.Thumbprint))
            {
                binding.Pin();
            }
        }
    }

    /// <summary>The listener moved to another store or closed; the contexts may be evicted once unused.</summary>
    public void EndService()
    {
        if (Interlocked.Decrement(ref _services) == 0)
        {
            foreach (CertificateBinding binding in _bindings)
            {
                binding.Unpin();
            }
        }
    }

    /// <summary>Options for a handshake with this SNI name; null means refuse the handshake.</summary>
    public SslServerAuthenticationOptions? Select(string? serverName)
    {
        if (Resolve(serverName) is not { } binding)
        {
            return null;
        }

        if (!binding.Pinned && Volatile.Read(ref _services) > 0)
        {
            binding.Pin(); // first handshake for this certificate: its context is created now anyway
        }

        return binding.Options;
    }

    /// <summary>The certificate a handshake with this SNI name gets, or null when refused.</summary>
    public LoadedCertificate? SelectCertificate(string? serverName) => Resolve(serverName)?.Certificate;

    /// <summary>
    /// A <see cref="ServerOptionsSelectionCallback"/>:
    /// <c>sslStream.AuthenticateAsServerAsync(store.SelectAsync, null, ct)</c>.
    /// Completes synchronously; a refused name fails the handshake with <see cref="AuthenticationException"/>.
    /// </summary>
    public ValueTask<SslServerAuthenticationOptions> SelectAsync(
        SslStream stream,
        SslClientHelloInfo hello,
        object? state,
        CancellationToken cancellationToken)
    {
        SslServerAuthenticationOptions? options = Select(hello.ServerName);
        return options is not null
            ? ValueTask.FromResult(options)
            : ValueTask.FromException<SslServerAuthenticationOptions>(new AuthenticationException(RefusalReason(hello.ServerName)));
    }

    /// <summary>
    /// The SNI map's choice, unless that certificate has an owner and the name belongs to another one: then the
    /// default certificate if it may answer for the name (no owner, or the name's), else nothing. Operator
    /// certificates cost nothing extra; an owned one costs one more allocation-free lookup.
    /// </summary>
    private CertificateBinding? Resolve(string? serverName)
    {
        if (!_map.TryResolve(serverName, out CertificateBinding? binding))
        {
            return null;
        }

        if (binding.Owner is not { } owner || _ownership!.OwnerOfName(serverName) is not { } nameOwner
            || string.Equals(owner, nameOwner, StringComparison.Ordinal))
        {
            return binding;
        }

        // With requireSni there is no fallback: the default would not match the name anyway.
        return _fallback is { } fallback && (fallback.Owner is null || string.Equals(fallback.Owner, nameOwner, StringComparison.Ordinal))
            ? fallback
            : null;
    }

    /// <summary>Why a handshake with this name is refused (the refused path only: it may allocate).</summary>
    private string RefusalReason(string? serverName) =>
        _map.TryResolve(serverName, out CertificateBinding? binding) && binding.Owner is { } owner
            ? $"no certificate for server name '{serverName}': certificate '{binding.Certificate.Name}' belongs to '{owner}', the name to '{_ownership!.OwnerOfName(serverName)}'"
            : $"no certificate for server name '{serverName}'";

    /// <summary>
    /// Checks a client certificate against the listener's CAs, and the CAs its routes check against themselves (custom
    /// root trust: the system store does not vouch for clients), for client authentication use. A refusal throws with
    /// the reason, which ends the handshake and reaches the connection's log line.
    /// </summary>
    private static RemoteCertificateValidationCallback ClientCertificateValidator(TlsServerOptions settings)
    {
        X509Certificate2Collection? authorities = settings.ClientCertificateAuthorities;
        if (settings.AdditionalClientCertificateAuthorities is { Count: > 0 } additional)
        {
            authorities = [.. authorities ?? [], .. additional];
        }

        return (_, certificate, _, _) =>
        {
            if (certificate is null)
            {
                return settings.ClientCertificates == ClientCertificateMode.Optional
                    ? true
                    : throw new AuthenticationException("client certificate required but none was sent");
            }

            using var leaf = new X509Certificate2(certificate);
            return ClientCertificateVerifier.Verify(leaf, authorities, settings.ClientRevocationList, DateTimeOffset.UtcNow) is { } refused
                ? throw new AuthenticationException(refused)
                : true;
        };
    }

    private static SslServerAuthenticationOptions CreateOptions(LoadedCertificate certificate, TlsServerOptions settings) => new()
    {
        ServerCertificateContext = certificate.Context,
        // Never anything older: TLS 1.0/1.1 are deprecated by RFC 8996.
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        ApplicationProtocols = settings.ApplicationProtocols.Count == 0 ? null : [.. settings.ApplicationProtocols],
        AllowRenegotiation = false,
        ClientCertificateRequired = settings.ClientCertificates != ClientCertificateMode.Off,
        RemoteCertificateValidationCallback = settings.ClientCertificates == ClientCertificateMode.Off ? null : ClientCertificateValidator(settings),
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        AllowTlsResume = true,
        // CipherSuitesPolicy stays unset on purpose: setting it silently disables session
        // resumption in .NET. Cipher choice belongs to the process OpenSSL config (DESIGN.md).
    };
}

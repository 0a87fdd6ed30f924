using Appliance.Protocol.Http1;

namespace Appliance.Routing;

/// <summary>A route compiled from config (YARP's RouteConfig → RouteModel): immutable, read by the hot path.</summary>
public sealed class RouteModel
{
    public required string Id { get; init; }
    public string? Tenant { get; init; }
    public int Order { get; init; }
    /// <summary>Position in the config, the last tie-breaker so equal routes keep file order.</summary>
    public int Index { get; init; }
    public required IReadOnlyList<string> Hosts { get; init; }
    public required PathTemplate Path { get; init; }
    /// <summary>Bit per <see cref="HttpMethod"/>; 0 = any method.</summary>
    public uint MethodMask { get; init; }
    /// <summary>Methods outside the enum (e.g. PROPFIND), compared as bytes.</summary>
    public byte[][] CustomMethods { get; init; } = [];
    public required RouteHandler Handler { get; init; }

    /// <summary>The Strict-Transport-Security value for this route's HTTPS responses, or null.</summary>
    public byte[]? Hsts { get; init; }

    /// <summary>
    /// routes[].clientCertificates.mode: Required answers 403 unless the connection's client certificate is trusted
    /// by <see cref="ClientCertificateAuthorities"/>; Optional and Off serve either way.
    /// </summary>
    public Tls.ClientCertificateMode ClientCertificates { get; init; }

    /// <summary>The CAs a client certificate must chain to for this route (its caFile, else its tenant's); null: the listener's.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2Collection? ClientCertificateAuthorities { get; init; }

    /// <summary>routes[].policies compiled: run after the client-certificate check, before the handler; null: none.</summary>
    public Policies.PolicyChain? Policies { get; init; }

    /// <summary>routes[].accessLog: false leaves no access log line for this route's requests.</summary>
    public bool AccessLog { get; init; } = true;

    public bool AllowsMethod(HttpMethod method, ReadOnlySpan<byte> token)
    {
        if (MethodMask == 0 && CustomMethods.Length == 0)
        {
            return true;
        }

        if (method != HttpMethod.Custom)
        {
            return (MethodMask & (1u << (int)method)) != 0;
        }

        foreach (byte[] m in CustomMethods)
        {
            if (token.SequenceEqual(m))
            {
                return true;
            }
        }

        return false;
    }
}

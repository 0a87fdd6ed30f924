using System.Net;
using System.Security.Cryptography;
using Appliance.Server;

namespace Appliance.Policies;

/// <summary>What a route's requests are counted by (routes[].policies.rateLimit.key).</summary>
public enum RateLimitKey
{
    /// <summary>"client": the client's address (nginx's <c>$binary_remote_addr</c> zone).</summary>
    Client,

    /// <summary>"route": every request of the route together (Envoy's local rate limit).</summary>
    Route,

    /// <summary>"header:NAME": the value of a request header (an API key, a user id); its absence counts by client address.</summary>
    Header,

    /// <summary>"consumer": the consumer whose API key the route's apiKey policy accepted (Kong's default); without one, the client address.</summary>
    Consumer,

    /// <summary>"subject": the "sub" of the token the route's jwt policy accepted; without one, the client address.</summary>
    Subject,
}

/// <summary>routes[].policies.rateLimit as compiled. <see cref="HeaderName"/> is lower-case, set for <see cref="RateLimitKey.Header"/> only.</summary>
public sealed record RateLimitSettings(long Requests, TimeSpan Per, long Burst, RateLimitKey Key, string? HeaderName, int Status, int MaxKeys)
{
    public const int DefaultMaxKeys = 100_000;
}

/// <summary>
/// routes[].policies.rateLimit: at most <see cref="RateLimitSettings.Requests"/> per
/// <see cref="RateLimitSettings.Per"/> for each key, with bursts of up to <see cref="RateLimitSettings.Burst"/>
/// (<see cref="RateLimitTable"/>). A request over the limit is answered with the configured status (429 by default),
/// <c>Retry-After</c> (RFC 9110 §10.2.3: whole seconds until the key's next request would conform, at least 1) and
/// a problem+json body; it never reaches the handler. The state lives in this process: several appliances behind a
/// balancer each allow the full rate.
/// </summary>
public sealed class RateLimitPolicy(RateLimitSettings settings, RateLimitTable table) : RequestPolicy
{
    /// <summary>Header values longer than this are counted by their SHA-256, so a key never holds more.</summary>
    private const int MaxRawKey = 64;

    private readonly byte[] _problem = ProblemDetails.Json(settings.Status, "Too many requests; see Retry-After.");
    private readonly byte[]? _header = settings.HeaderName is null ? null : System.Text.Encoding.ASCII.GetBytes(settings.HeaderName);

    public RateLimitPolicy(RateLimitSettings settings, TimeProvider? time = null)
        : this(settings, new RateLimitTable(settings.Requests, settings.Per, settings.Burst, settings.Key == RateLimitKey.Route ? 1 : settings.MaxKeys, time))
    {
    }

    public override string Name => "rateLimit";

    public RateLimitSettings Settings => settings;

    public RateLimitTable Table => table;

    public override ValueTask<PolicyVerdict> CheckAsync(RequestContext context, PolicyEnvironment environment)
    {
        Span<byte> key = stackalloc byte[1 + MaxRawKey];
        int length = WriteKey(context, key);
        if (table.TryAcquire(key[..length], out TimeSpan retryAfter))
        {
            return new(PolicyVerdict.Pass);
        }

        int seconds = (int)Math.Clamp(Math.Ceiling(retryAfter.TotalSeconds), 1, int.MaxValue);
        return new(Refuse(settings.Status, _problem, seconds));
    }

    /// <summary>
    /// The request's key: a kind byte ('a' address, 'h' header value, 'H' hashed header value, 'c' consumer id,
    /// 's' token subject, 'S' hashed subject, 'r' the route), then the bytes, so that values of different kinds
    /// never meet.
    /// </summary>
    private int WriteKey(RequestContext context, Span<byte> key)
    {
        if (settings.Key == RateLimitKey.Route)
        {
            key[0] = (byte)'r';
            return 1;
        }

        if (settings.Key == RateLimitKey.Consumer && context.ConsumerId is { } consumer
            && System.Text.Encoding.UTF8.TryGetBytes(consumer, key[1..], out int written) && written <= MaxRawKey)
        {
            key[0] = (byte)'c';
            return 1 + written;
        }

        if (settings.Key == RateLimitKey.Subject && context.Subject is { } subject)
        {
            if (System.Text.Encoding.UTF8.TryGetBytes(subject, key[1..], out int subjectLength) && subjectLength <= MaxRawKey)
            {
                key[0] = (byte)'s';
                return 1 + subjectLength;
            }

            // A long subject: counted by its hash, as long header values are (longer than 1 KiB: by address).
            Span<byte> utf8 = stackalloc byte[1024];
            if (System.Text.Encoding.UTF8.TryGetBytes(subject, utf8, out subjectLength))
            {
                key[0] = (byte)'S';
                return 1 + SHA256.HashData(utf8[..subjectLength], key[1..]);
            }
        }

        if (_header is not null && context.RequestHeaders.TryGetValue(_header, out ReadOnlySpan<byte> value))
        {
            if (value.Length <= MaxRawKey)
            {
                key[0] = (byte)'h';
                value.CopyTo(key[1..]);
                return 1 + value.Length;
            }

            key[0] = (byte)'H';
            return 1 + SHA256.HashData(value, key[1..]);
        }

        key[0] = (byte)'a';
        IPAddress? address = context.Connection.ClientAddress;
        return address is not null && address.TryWriteBytes(key[1..], out int length) ? 1 + length : 1; // Unix-socket clients share one key
    }
}

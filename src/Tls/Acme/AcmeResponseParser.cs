using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Appliance.Tls.Acme;

/// <summary>
/// Reads ACME server answers and refuses what the client cannot safely use: bodies that are not JSON objects of the
/// expected shape, missing required fields, statuses RFC 8555 §7.1.6 does not define, and URLs that are not absolute
/// https (§6.1: all ACME traffic is HTTPS, so a server must not steer the client elsewhere). Every refusal is an
/// <see cref="AcmeProtocolException"/> saying what and where. Body sizes are capped before this by the client.
/// </summary>
public static class AcmeResponseParser
{
    private static readonly string[] OrderStatuses = ["pending", "ready", "processing", "valid", "invalid"];
    private static readonly string[] AuthorizationStatuses = ["pending", "valid", "invalid", "deactivated", "expired", "revoked"];
    private static readonly string[] ChallengeStatuses = ["pending", "processing", "valid", "invalid"];
    private const int MaxListEntries = 1000;

    public static AcmeDirectory Directory(ReadOnlySpan<byte> body)
    {
        AcmeDirectory d = Read(body, AcmeJsonContext.Default.AcmeDirectory, "directory");
        RequireUrl(d.NewNonce, "directory", "newNonce");
        RequireUrl(d.NewAccount, "directory", "newAccount");
        RequireUrl(d.NewOrder, "directory", "newOrder");
        if (d.Meta?.ExternalAccountRequired == true)
        {
            throw new AcmeProtocolException("directory: the server requires external account binding (RFC 8555 §7.3.4), which is not supported");
        }

        return d;
    }

    public static AcmeAccount Account(ReadOnlySpan<byte> body)
    {
        AcmeAccount a = Read(body, AcmeJsonContext.Default.AcmeAccount, "account");
        if (a.Status is not null && a.Status != "valid")
        {
            throw new AcmeProtocolException($"account: status '{a.Status}' (expected valid)");
        }

        return a;
    }

    public static AcmeOrder Order(ReadOnlySpan<byte> body)
    {
        AcmeOrder o = Read(body, AcmeJsonContext.Default.AcmeOrder, "order");
        RequireStatus(o.Status, OrderStatuses, "order");
        if (o.Authorizations is null)
        {
            throw new AcmeProtocolException("order: 'authorizations' is missing");
        }

        if (o.Authorizations.Count > MaxListEntries)
        {
            throw new AcmeProtocolException($"order: more than {MaxListEntries} authorizations");
        }

        foreach (string? url in o.Authorizations)
        {
            RequireUrl(url, "order", "authorizations[]");
        }

        RequireUrl(o.Finalize, "order", "finalize");
        if (o.Status == "valid")
        {
            RequireUrl(o.Certificate, "order", "certificate"); // §7.1.3: present once the certificate is issued
        }
        else if (o.Certificate is not null)
        {
            RequireUrl(o.Certificate, "order", "certificate");
        }

        if (o.Identifiers is { Count: > MaxListEntries })
        {
            throw new AcmeProtocolException($"order: more than {MaxListEntries} identifiers");
        }

        return o;
    }

    public static AcmeAuthorization Authorization(ReadOnlySpan<byte> body)
    {
        AcmeAuthorization a = Read(body, AcmeJsonContext.Default.AcmeAuthorization, "authorization");
        RequireStatus(a.Status, AuthorizationStatuses, "authorization");
        if (a.Identifier is not { Type: { Length: > 0 }, Value: { Length: > 0 } })
        {
            throw new AcmeProtocolException("authorization: 'identifier' is missing or incomplete");
        }

        if (a.Challenges is null)
        {
            throw new AcmeProtocolException($"authorization for {a.Identifier.Value}: 'challenges' is missing");
        }

        if (a.Challenges.Count > MaxListEntries)
        {
            throw new AcmeProtocolException($"authorization for {a.Identifier.Value}: more than {MaxListEntries} challenges");
        }

        foreach (AcmeChallenge? c in a.Challenges)
        {
            CheckChallenge(c, $"authorization for {a.Identifier.Value}");
        }

        return a;
    }

    public static AcmeChallenge Challenge(ReadOnlySpan<byte> body)
    {
        AcmeChallenge c = Read(body, AcmeJsonContext.Default.AcmeChallenge, "challenge");
        CheckChallenge(c, "challenge");
        return c;
    }

    /// <summary>
    /// A problem document (RFC 8555 §6.7) from an error response; a body that is not one still becomes an exception
    /// that says what the server answered.
    /// </summary>
    public static AcmeProblemException Problem(ReadOnlySpan<byte> body, int status, string context)
    {
        try
        {
            if (JsonSerializer.Deserialize(body, AcmeJsonContext.Default.AcmeProblem) is { } problem && (problem.Type ?? problem.Detail) is not null)
            {
                return AcmeProblemException.From(problem, status, context);
            }
        }
        catch (JsonException)
        {
        }

        return new AcmeProblemException("about:blank", $"{context}: HTTP {status} without a problem document", status);
    }

    private static void CheckChallenge(AcmeChallenge? c, string where)
    {
        if (c is null)
        {
            throw new AcmeProtocolException($"{where}: a challenge is null");
        }

        if (string.IsNullOrEmpty(c.Type))
        {
            throw new AcmeProtocolException($"{where}: a challenge has no 'type'");
        }

        RequireUrl(c.Url, where, $"{c.Type} challenge url");
        RequireStatus(c.Status, ChallengeStatuses, $"{where}: {c.Type} challenge");
        // RFC 8555 §8.3, §8.4 and RFC 8737 §3: the token is base64url with at least 128 bits of entropy; it ends up in
        // a URL path and a key authorization, so nothing else may pass.
        if (c.Type is "http-01" or "tls-alpn-01" or "dns-01" && !IsToken(c.Token))
        {
            throw new AcmeProtocolException($"{where}: {c.Type} challenge token is missing or not base64url of at least 22 characters");
        }
    }

    internal static bool IsToken(string? token)
    {
        if (token is null || token.Length < 22 || token.Length > 256)
        {
            return false;
        }

        foreach (char ch in token)
        {
            if (!(char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_'))
            {
                return false;
            }
        }

        return true;
    }

    private static T Read<T>(ReadOnlySpan<byte> body, JsonTypeInfo<T> type, string what)
        where T : class
    {
        if (body.IsEmpty)
        {
            throw new AcmeProtocolException($"{what}: empty response body");
        }

        T? value;
        try
        {
            value = JsonSerializer.Deserialize(body, type);
        }
        catch (JsonException e)
        {
            throw new AcmeProtocolException($"{what}: not valid JSON of the expected shape: {e.Message}", e);
        }

        return value ?? throw new AcmeProtocolException($"{what}: the body is JSON null, not an object");
    }

    private static void RequireStatus(string? status, string[] allowed, string where)
    {
        if (status is null)
        {
            throw new AcmeProtocolException($"{where}: 'status' is missing");
        }

        if (Array.IndexOf(allowed, status) < 0)
        {
            throw new AcmeProtocolException($"{where}: unknown status '{Clip(status)}'");
        }
    }

    /// <summary>An absolute https URL (RFC 8555 §6.1).</summary>
    internal static Uri RequireUrl(string? url, string where, string field)
    {
        if (string.IsNullOrEmpty(url))
        {
            throw new AcmeProtocolException($"{where}: '{field}' is missing");
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out Uri? uri) || uri.Scheme != Uri.UriSchemeHttps || uri.Host.Length == 0)
        {
            throw new AcmeProtocolException($"{where}: '{field}' is not an absolute https URL: '{Clip(url)}'");
        }

        return uri;
    }

    /// <summary>Server text in our messages, cut short: a hostile server must not fill the log.</summary>
    internal static string Clip(string text) => text.Length <= 200 ? text : text[..200] + "…";
}

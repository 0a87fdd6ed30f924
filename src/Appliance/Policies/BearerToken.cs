using Appliance.Protocol.Headers;

namespace Appliance.Policies;

/// <summary>What an Authorization field holds for the bearer scheme (RFC 6750 §2.1).</summary>
public enum BearerToken
{
    /// <summary>No Authorization field, or another scheme.</summary>
    Absent,

    /// <summary>"Bearer", spaces, a token.</summary>
    Present,

    /// <summary>"Bearer" without a token (§3.1: a 400 invalid_request where the route answers it).</summary>
    Malformed,
}

/// <summary>Reads <c>Authorization: Bearer TOKEN</c> for the policies that take a bearer credential (apiKey, jwt).</summary>
public static class BearerTokens
{
    /// <summary>The scheme is matched case-insensitively, then one or more spaces, then the token.</summary>
    public static BearerToken Read(HeaderCollection headers, out ReadOnlySpan<byte> token)
    {
        token = default;
        if (!headers.TryGetValue(KnownHeader.Authorization, out ReadOnlySpan<byte> value) || value.Length < 6
            || !System.Text.Ascii.EqualsIgnoreCase(value[..6], "Bearer"u8) || (value.Length > 6 && value[6] != (byte)' '))
        {
            return BearerToken.Absent;
        }

        token = value[6..].TrimStart((byte)' ');
        return token.IsEmpty ? BearerToken.Malformed : BearerToken.Present;
    }
}

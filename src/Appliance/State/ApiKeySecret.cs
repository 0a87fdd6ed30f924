using System.Security.Cryptography;
using System.Text;

namespace Appliance.State;

/// <summary>
/// API key secrets: <c>apk_</c> and 32 random base62 characters (190 bits). Only SHA-256 of the secret is
/// stored; with that much entropy a plain hash cannot be reversed by guessing, so no salt or slow KDF is needed
/// and a check costs one hash. The first 12 characters (<c>apk_</c> + 8 random) are kept as the prefix: they
/// find the candidate rows and let an operator recognise a key, and 48 bits of 190 give nothing away.
/// </summary>
internal static class ApiKeySecret
{
    public const string Scheme = "apk_";
    public const int RandomLength = 32;
    public const int Length = 36; // Scheme.Length + RandomLength
    public const int PrefixLength = 12;

    public static string Generate()
    {
        Span<char> secret = stackalloc char[Length];
        Scheme.CopyTo(secret);
        StateIds.Random(secret[Scheme.Length..]);
        return new string(secret);
    }

    /// <summary>Shape check before any lookup, so garbage never reaches the database.</summary>
    public static bool IsWellFormed(string? secret)
    {
        if (secret is not { Length: Length } || !secret.StartsWith(Scheme, StringComparison.Ordinal))
        {
            return false;
        }

        foreach (char c in secret.AsSpan(Scheme.Length))
        {
            if (!char.IsAsciiLetterOrDigit(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The hash of a secret as it arrives in a request (ASCII bytes), without making a string of it; false when it is not shaped like one.</summary>
    public static bool TryHash(ReadOnlySpan<byte> secret, Span<byte> hash)
    {
        if (secret.Length != Length || !secret.StartsWith("apk_"u8))
        {
            return false;
        }

        foreach (byte b in secret[Scheme.Length..])
        {
            if (!char.IsAsciiLetterOrDigit((char)b))
            {
                return false;
            }
        }

        // One digest context per thread, reset after each use: SHA256.HashData makes and frees an OpenSSL context
        // per call, which costs more than hashing 36 bytes.
        SHA256 sha = t_sha256 ??= SHA256.Create();
        return sha.TryComputeHash(secret, hash, out int written) && written == 32;
    }

    [ThreadStatic]
    private static SHA256? t_sha256;

    public static string Prefix(string secret) => secret[..PrefixLength];

    public static byte[] Hash(string secret)
    {
        Span<byte> utf8 = stackalloc byte[Length];
        int n = Encoding.ASCII.GetBytes(secret, utf8);
        byte[] hash = SHA256.HashData(utf8[..n]);
        CryptographicOperations.ZeroMemory(utf8);
        return hash;
    }
}

using System.Security.Cryptography;

namespace Appliance.State;

/// <summary>
/// Ids the store makes itself (API keys, subscriptions, consumers created without one): a kind prefix, the
/// creation time in milliseconds as 8 base62 digits, then 8 random base62 characters. The alphabet is in ASCII
/// order, so ordering by id (what keyset paging does) is ordering by creation time.
/// </summary>
internal static class StateIds
{
    public const string Base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    public static string New(string prefix, DateTimeOffset now)
    {
        Span<char> id = stackalloc char[prefix.Length + 16];
        prefix.CopyTo(id);
        ulong ms = (ulong)Math.Max(0, now.ToUnixTimeMilliseconds());
        for (int i = prefix.Length + 7; i >= prefix.Length; i--)
        {
            id[i] = Base62[(int)(ms % 62)];
            ms /= 62;
        }

        RandomNumberGenerator.GetItems(Base62, id[(prefix.Length + 8)..]);
        return new string(id);
    }

    /// <summary>Uniformly random base62 characters from the OS CSPRNG (GetItems draws without modulo bias).</summary>
    public static void Random(Span<char> destination) => RandomNumberGenerator.GetItems(Base62, destination);
}

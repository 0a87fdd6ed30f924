using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace Appliance.Tls;

/// <summary>
/// The rules for a host name or wildcard pattern a certificate may serve, shared by
/// <see cref="SniMap{T}"/> and config validation so both reject the same names for the same reason.
/// </summary>
public static class ServerNamePattern
{
    private const int MaxNameLength = 253;
    private const int MaxLabelLength = 63;

    // IdnMapping is thread-safe for lookups; System.Net.Security shares one the same way.
    private static readonly IdnMapping Idn = new();

    /// <summary>
    /// Normalises a configured name or wildcard pattern, or says why it is not one:
    /// a wildcard is "*." followed by a valid host name with at least one dot.
    /// </summary>
    public static bool TryNormalize(
        string? pattern,
        [NotNullWhen(true)] out string? normalized,
        [NotNullWhen(false)] out string? reason)
    {
        normalized = null;
        if (string.IsNullOrWhiteSpace(pattern))
        {
            reason = "the name is empty";
            return false;
        }

        string name = pattern.EndsWith('.') ? pattern[..^1] : pattern;
        bool isWildcard = name.StartsWith("*.", StringComparison.Ordinal);
        string host = isWildcard ? name[2..] : name;

        if (host.Contains('*'))
        {
            reason = name == "*"
                ? "'*' is not a name; use the default certificate for a catch-all"
                : "a wildcard must be the whole left-most label, as in '*.example.com'";
            return false;
        }

        if (!Ascii.IsValid(host))
        {
            if (!TryToAscii(host, out string? ascii))
            {
                reason = "not a valid internationalised host name";
                return false;
            }

            host = ascii;
        }

        host = host.ToLowerInvariant();
        if (!IsValidHostName(host, out reason))
        {
            return false;
        }

        if (isWildcard && !host.Contains('.'))
        {
            reason = "a wildcard needs at least two labels after '*.' (it must not cover a whole top-level domain)";
            return false;
        }

        normalized = isWildcard ? "*." + host : host;
        return true;
    }

    private static bool IsValidHostName(string host, [NotNullWhen(false)] out string? reason)
    {
        if (host.Length > MaxNameLength)
        {
            reason = $"the name is longer than {MaxNameLength} characters";
            return false;
        }

        foreach (Range range in host.AsSpan().Split('.'))
        {
            ReadOnlySpan<char> label = host.AsSpan()[range];
            if (label.IsEmpty)
            {
                reason = "the name has an empty label";
                return false;
            }

            if (label.Length > MaxLabelLength)
            {
                reason = $"a label is longer than {MaxLabelLength} characters";
                return false;
            }

            // RFC 1123 §2.1 letters, digits and hyphens; '_' is tolerated because internal
            // names use it and it cannot confuse matching.
            foreach (char c in label)
            {
                if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
                {
                    reason = $"the character '{c}' is not allowed in a host name";
                    return false;
                }
            }

            if (label[0] == '-' || label[^1] == '-')
            {
                reason = "a label starts or ends with '-'";
                return false;
            }
        }

        reason = null;
        return true;
    }

    /// <summary>IDN to A-labels ("bücher.example" to "xn--bcher-kva.example").</summary>
    internal static bool TryToAscii(string name, [NotNullWhen(true)] out string? ascii)
    {
        try
        {
            // Lower case first: with invariant globalization GetAscii does not case-fold.
            ascii = Idn.GetAscii(name.ToLowerInvariant());
            return true;
        }
        catch (ArgumentException)
        {
            ascii = null;
            return false;
        }
    }
}

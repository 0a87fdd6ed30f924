namespace Appliance.State;

/// <summary>
/// Input rules for everything the admin API can put in the store. Checked before any SQL runs, so a refusal
/// names the field and changes nothing. Values are stored verbatim (parameters, never spliced into SQL).
/// </summary>
internal static class StateValidation
{
    public const int MaxIdLength = 64;
    public const int MaxNameLength = 200;
    public const int MaxDomains = 100;
    public const int MaxDomainLength = 253;
    public const int MaxPageSize = 1000;

    /// <summary>
    /// Ids appear in URLs, logs and CLI arguments: ASCII letters, digits, '-', '_' and '.', starting with a letter
    /// or digit (so never ".", ".." or something that reads as an option), at most 64 characters.
    /// </summary>
    public static string Id(string? value, string field)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw StateException.Invalid(field, "is required");
        }

        if (value.Length > MaxIdLength)
        {
            throw StateException.Invalid(field, $"must be at most {MaxIdLength} characters");
        }

        if (!char.IsAsciiLetterOrDigit(value[0]))
        {
            throw StateException.Invalid(field, "must start with a letter or a digit");
        }

        foreach (char c in value)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.'))
            {
                throw StateException.Invalid(field, "may contain only ASCII letters, digits, '-', '_' and '.'");
            }
        }

        return value;
    }

    /// <summary>
    /// Display text: any Unicode, but no control characters (a newline in a name would forge log lines) and
    /// well-formed UTF-16 (a lone surrogate would silently become U+FFFD on the way to UTF-8).
    /// </summary>
    public static string Text(string? value, string field, int maxLength = MaxNameLength)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            throw StateException.Invalid(field, "is required");
        }

        if (value.Length > maxLength)
        {
            throw StateException.Invalid(field, $"must be at most {maxLength} characters");
        }

        for (int i = 0; i < value.Length; i++)
        {
            char c = value[i];
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                i++;
                continue;
            }

            if (char.IsSurrogate(c))
            {
                throw StateException.Invalid(field, "is not valid Unicode (unpaired surrogate)");
            }

            if (char.IsControl(c) || c is '\u2028' or '\u2029')
            {
                throw StateException.Invalid(field, "must not contain control characters or line breaks");
            }
        }

        return value;
    }

    /// <summary>Host names in ASCII (IDNs in their xn-- form), lower-cased; <c>*.example.com</c> covers one label.</summary>
    public static string[] Domains(IReadOnlyList<string>? domains, string field = "domains")
    {
        if (domains is null)
        {
            return [];
        }

        if (domains.Count > MaxDomains)
        {
            throw StateException.Invalid(field, $"at most {MaxDomains} domains per tenant");
        }

        var result = new string[domains.Count];
        for (int i = 0; i < domains.Count; i++)
        {
            string path = $"{field}[{i}]";
            string domain = Domain(domains[i], path);
            if (Array.IndexOf(result, domain, 0, i) >= 0)
            {
                throw StateException.Invalid(path, $"'{domain}' is listed twice");
            }

            result[i] = domain;
        }

        return result;
    }

    private static string Domain(string? value, string field)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw StateException.Invalid(field, "is required");
        }

        if (value.Length > MaxDomainLength)
        {
            throw StateException.Invalid(field, $"must be at most {MaxDomainLength} characters");
        }

        string domain = value.ToLowerInvariant();
        ReadOnlySpan<char> rest = domain.StartsWith("*.", StringComparison.Ordinal) ? domain.AsSpan(2) : domain;
        if (rest.IsEmpty)
        {
            throw StateException.Invalid(field, "is not a host name");
        }

        foreach (Range range in rest.Split('.'))
        {
            ReadOnlySpan<char> label = rest[range];
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-')
            {
                throw StateException.Invalid(field, $"'{value}' is not a host name (labels are 1-63 characters, not starting or ending with '-')");
            }

            foreach (char c in label)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c != '-')
                {
                    throw StateException.Invalid(field, c > 127
                        ? $"'{value}' is not ASCII: give an internationalised name in its xn-- (punycode) form"
                        : $"'{value}' is not a host name (letters, digits, '-' and '.' only; '*.' only as the first label)");
                }
            }
        }

        return domain;
    }

    public static int Limit(int limit)
    {
        if (limit is < 1 or > MaxPageSize)
        {
            throw StateException.Invalid("limit", $"must be between 1 and {MaxPageSize}");
        }

        return limit;
    }

    /// <summary>A cursor is an id from a previous page; anything else cannot have come from us.</summary>
    public static string? After(string? after) => after is null ? null : Id(after, "after");

    public static string Period(string? period, string field = "period")
    {
        if (!UsagePeriod.IsValid(period))
        {
            throw StateException.Invalid(field, "must be a UTC month, day or hour: yyyy-MM, yyyy-MM-dd or yyyy-MM-ddTHH");
        }

        return period!;
    }

    public static long Count(long value, string field)
    {
        // SQLite turns an integer that overflows into a float; a bound far above any real increment avoids that.
        if (value is < 0 or > 1L << 48)
        {
            throw StateException.Invalid(field, "must be between 0 and 2^48");
        }

        return value;
    }
}

using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Appliance.Tls;

/// <summary>
/// Maps a TLS server name (SNI) to a value: exact names first, then one-label wildcards
/// (<c>*.example.com</c>), then the default. Built once per config and read-only after, so
/// lookups need no locks; exact and wildcard lookups allocate nothing.
/// </summary>
public sealed class SniMap<T> where T : class
{
    private readonly FrozenDictionary<string, T> _exact;
    private readonly FrozenDictionary<string, T>.AlternateLookup<ReadOnlySpan<char>> _exactBySpan;
    private readonly FrozenDictionary<string, T> _wildcard;
    private readonly FrozenDictionary<string, T>.AlternateLookup<ReadOnlySpan<char>> _wildcardBySpan;

    private SniMap(FrozenDictionary<string, T> exact, FrozenDictionary<string, T> wildcard, T? defaultValue)
    {
        _exact = exact;
        _exactBySpan = exact.GetAlternateLookup<ReadOnlySpan<char>>();
        _wildcard = wildcard;
        _wildcardBySpan = wildcard.GetAlternateLookup<ReadOnlySpan<char>>();
        Default = defaultValue;
    }

    /// <summary>Value for handshakes without SNI or with a name nothing else matches.</summary>
    public T? Default { get; }

    /// <summary>Number of exact and wildcard names.</summary>
    public int Count => _exact.Count + _wildcard.Count;

    /// <summary>Exact names, normalised (lower case A-labels, no trailing dot).</summary>
    public IEnumerable<string> ExactNames => _exact.Keys;

    /// <summary>Wildcard patterns, normalised, as "*.example.com".</summary>
    public IEnumerable<string> WildcardNames => _wildcard.Keys.Select(static suffix => "*." + suffix);

    /// <summary>
    /// Builds the map. Names are normalised (lower case, IDN to A-labels, one trailing dot
    /// dropped); an invalid name or a name given twice throws <see cref="ArgumentException"/>
    /// naming the entries.
    /// </summary>
    public static SniMap<T> Build(IEnumerable<KeyValuePair<string, T>> entries, T? defaultValue)
    {
        ArgumentNullException.ThrowIfNull(entries);

        var exact = new Dictionary<string, (T Value, string Original, int Index)>(StringComparer.Ordinal);
        var wildcard = new Dictionary<string, (T Value, string Original, int Index)>(StringComparer.Ordinal);
        int index = 0;
        foreach ((string name, T value) in entries)
        {
            index++;
            if (value is null)
            {
                throw new ArgumentException($"SNI entry #{index} '{name}' has no value", nameof(entries));
            }

            if (!ServerNamePattern.TryNormalize(name, out string? normalized, out string? reason))
            {
                throw new ArgumentException($"SNI entry #{index} '{name}' ({value}): {reason}", nameof(entries));
            }

            bool isWildcard = normalized.StartsWith("*.", StringComparison.Ordinal);
            var target = isWildcard ? wildcard : exact;
            string key = isWildcard ? normalized[2..] : normalized;
            if (target.TryGetValue(key, out var first))
            {
                throw new ArgumentException(
                    $"SNI name '{normalized}' is given twice: entry #{first.Index} '{first.Original}' ({first.Value}) and entry #{index} '{name}' ({value})",
                    nameof(entries));
            }

            target.Add(key, (value, name, index));
        }

        // OrdinalIgnoreCase so a client's "WWW.Example.COM" matches without copying it to lower case.
        return new SniMap<T>(
            exact.ToFrozenDictionary(static e => e.Key, static e => e.Value.Value, StringComparer.OrdinalIgnoreCase),
            wildcard.ToFrozenDictionary(static e => e.Key, static e => e.Value.Value, StringComparer.OrdinalIgnoreCase),
            defaultValue);
    }

    /// <summary>
    /// Resolves a server name: exact, then wildcard, then default. False when nothing
    /// matches and there is no default.
    /// </summary>
    public bool TryResolve(string? serverName, [MaybeNullWhen(false)] out T value)
    {
        ReadOnlySpan<char> name = serverName;
        if (name.EndsWith('.'))
        {
            name = name[..^1];
        }

        if (!name.IsEmpty)
        {
            // System.Net.Security hands over IDN names decoded to Unicode (it runs
            // IdnMapping.GetUnicode on the SNI); the map holds A-labels. Rare, so it may allocate.
            if (!Ascii.IsValid(name))
            {
                return TryResolveUnicode(name, out value);
            }

            if (TryMatch(name, out value))
            {
                return true;
            }
        }

        value = Default;
        return value is not null;
    }

    private bool TryMatch(ReadOnlySpan<char> name, [MaybeNullWhen(false)] out T value)
    {
        if (_exactBySpan.TryGetValue(name, out value))
        {
            return true;
        }

        // RFC 6125 §6.4.3: '*' stands for exactly one whole left-most label, so strip one
        // label and look the rest up. The apex ("example.com" for "*.example.com") leaves
        // "com", which is never a key because wildcard suffixes contain a dot.
        int dot = name.IndexOf('.');
        if (dot > 0 && _wildcard.Count != 0)
        {
            return _wildcardBySpan.TryGetValue(name[(dot + 1)..], out value);
        }

        value = null;
        return false;
    }

    private bool TryResolveUnicode(ReadOnlySpan<char> name, [MaybeNullWhen(false)] out T value)
    {
        if (ServerNamePattern.TryToAscii(name.ToString(), out string? ascii) && TryMatch(ascii, out value))
        {
            return true;
        }

        value = Default;
        return value is not null;
    }
}

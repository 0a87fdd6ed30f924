using System.Text;
using Appliance.Server;

namespace Appliance.Routing;

/// <summary>
/// A compiled path matcher: an exact path ("/health"), a template ("/users/{id}/orders/{**rest}") or a
/// segment-boundary prefix ("/api" matches "/api" and "/api/x" but not "/apix"). Matching works on the
/// normalised path bytes and records parameters as ranges; it allocates nothing.
/// </summary>
public sealed class PathTemplate
{
    private readonly Segment[] _segments;
    private readonly byte[]? _prefix;

    private PathTemplate(string text, PathKind kind, Segment[] segments, byte[]? prefix, string[] names)
    {
        Text = text;
        Kind = kind;
        _segments = segments;
        _prefix = prefix;
        ParameterNames = names;
        LiteralSegments = segments.Count(s => s.Literal is not null);
    }

    public enum PathKind
    {
        Exact,
        Template,
        Prefix,
        Any,
    }

    public string Text { get; }

    public PathKind Kind { get; }

    public string[] ParameterNames { get; }

    public int LiteralSegments { get; }

    /// <summary>Lower sorts first: exact paths, then templates with more literal segments, then longer prefixes.</summary>
    public (int Kind, int Weight) Specificity => Kind switch
    {
        PathKind.Exact => (0, -_segments.Length),
        PathKind.Template => (1, -(LiteralSegments * 2 + (_segments.Length > 0 && _segments[^1].CatchAll ? 0 : 1))),
        PathKind.Prefix => (2, -(_prefix?.Length ?? 0)),
        _ => (3, 0),
    };

    public static PathTemplate MatchAll { get; } = new("", PathKind.Any, [], null, []);

    /// <summary>Parses a template; returns an error message instead of throwing.</summary>
    public static PathTemplate? TryParse(string text, out string? error)
    {
        error = null;
        if (text.Length == 0 || text[0] != '/')
        {
            error = "must start with '/'";
            return null;
        }

        string[] parts = text[1..].Split('/');
        var segments = new List<Segment>();
        var names = new List<string>();
        bool template = false;
        for (int i = 0; i < parts.Length; i++)
        {
            string p = parts[i];
            if (p.StartsWith('{'))
            {
                if (!p.EndsWith('}'))
                {
                    error = $"segment '{p}' opens a parameter but does not close it";
                    return null;
                }

                bool catchAll = p.StartsWith("{**", StringComparison.Ordinal) || p.StartsWith("{*", StringComparison.Ordinal);
                string name = p.TrimStart('{').TrimStart('*').TrimEnd('}');
                if (name.Length == 0 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
                {
                    error = $"parameter name in '{p}' must be letters, digits or '_'";
                    return null;
                }

                if (names.Contains(name, StringComparer.Ordinal))
                {
                    error = $"parameter '{name}' appears twice";
                    return null;
                }

                if (catchAll && i != parts.Length - 1)
                {
                    error = $"catch-all parameter '{p}' must be the last segment";
                    return null;
                }

                if (names.Count == RouteValues.MaxValues)
                {
                    error = $"at most {RouteValues.MaxValues} parameters";
                    return null;
                }

                names.Add(name);
                segments.Add(new Segment(null, names.Count - 1, catchAll));
                template = true;
            }
            else
            {
                if (p.Contains('{') || p.Contains('}'))
                {
                    error = $"segment '{p}' mixes text and a parameter; a parameter must be a whole segment";
                    return null;
                }

                if (p is "." or "..")
                {
                    error = "dot segments never match a normalised path";
                    return null;
                }

                segments.Add(new Segment(Encoding.UTF8.GetBytes(p), -1, false));
            }
        }

        return new PathTemplate(text, template ? PathKind.Template : PathKind.Exact, segments.ToArray(), null, names.ToArray());
    }

    public static PathTemplate? TryParsePrefix(string text, out string? error)
    {
        error = null;
        if (text.Length == 0 || text[0] != '/')
        {
            error = "must start with '/'";
            return null;
        }

        if (text.Contains('{'))
        {
            error = "a prefix takes no parameters; use 'path' with {**rest}";
            return null;
        }

        string trimmed = text.TrimEnd('/');
        return trimmed.Length == 0
            ? MatchAll
            : new PathTemplate(text, PathKind.Prefix, [], Encoding.UTF8.GetBytes(trimmed), []);
    }

    public bool TryMatch(ReadOnlySpan<byte> path, RouteValues? values)
    {
        switch (Kind)
        {
            case PathKind.Any:
                return true;
            case PathKind.Prefix:
                return path.StartsWith(_prefix) && (path.Length == _prefix!.Length || path[_prefix.Length] == (byte)'/');
        }

        if (path.IsEmpty || path[0] != (byte)'/')
        {
            return false;
        }

        int pos = 1;
        for (int i = 0; i < _segments.Length; i++)
        {
            Segment s = _segments[i];
            if (s.CatchAll)
            {
                values?.Set(ParameterNames, s.Parameter, pos, Math.Max(0, path.Length - pos));
                return true;
            }

            if (pos > path.Length)
            {
                return false;
            }

            int end = path[pos..].IndexOf((byte)'/');
            end = end < 0 ? path.Length : pos + end;
            ReadOnlySpan<byte> segment = path[pos..end];
            if (s.Literal is not null)
            {
                if (!segment.SequenceEqual(s.Literal))
                {
                    return false;
                }
            }
            else
            {
                if (segment.IsEmpty)
                {
                    return false;
                }

                values?.Set(ParameterNames, s.Parameter, pos, segment.Length);
            }

            pos = end + 1;
        }

        return pos == path.Length + 1;
    }

    private readonly record struct Segment(byte[]? Literal, int Parameter, bool CatchAll);
}

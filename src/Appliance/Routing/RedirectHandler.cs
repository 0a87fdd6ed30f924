using System.Text;
using Appliance.Protocol.Headers;
using Appliance.Server;

namespace Appliance.Routing;

/// <summary>
/// Answers with a redirect whose Location is a template: "{name}" inserts a route parameter, "{path}" the
/// request path, "{query}" its query (with '?'), "{host}" the request host, "{scheme}" http or https.
/// </summary>
public sealed class RedirectHandler : RouteHandler
{
    private readonly int _status;
    private readonly Part[] _parts;

    private RedirectHandler(int status, Part[] parts)
    {
        _status = status;
        _parts = parts;
    }

    public static RedirectHandler? TryCreate(int status, string location, string[] parameterNames, out string? error)
    {
        error = null;
        var parts = new List<Part>();
        int i = 0;
        while (i < location.Length)
        {
            int open = location.IndexOf('{', i);
            if (open < 0)
            {
                parts.Add(Part.Text(location[i..]));
                break;
            }

            if (open > i)
            {
                parts.Add(Part.Text(location[i..open]));
            }

            int close = location.IndexOf('}', open);
            if (close < 0)
            {
                error = $"'{{' at {open} is not closed";
                return null;
            }

            string name = location[(open + 1)..close];
            int index = Array.IndexOf(parameterNames, name);
            Part part = name switch
            {
                _ when index >= 0 => new Part(PartKind.Parameter, null, name),
                "path" => new Part(PartKind.Path, null, null),
                "query" => new Part(PartKind.Query, null, null),
                "host" => new Part(PartKind.Host, null, null),
                "scheme" => new Part(PartKind.Scheme, null, null),
                _ => new Part(PartKind.Invalid, null, name),
            };
            if (part.Kind == PartKind.Invalid)
            {
                error = $"'{{{name}}}' is neither a path parameter of the route nor one of path, query, host, scheme";
                return null;
            }

            parts.Add(part);
            i = close + 1;
        }

        return new RedirectHandler(status, parts.ToArray());
    }

    public override ValueTask HandleAsync(RequestContext context)
    {
        Span<byte> buffer = stackalloc byte[2048];
        var builder = new ByteBuilder(buffer);
        foreach (Part part in _parts)
        {
            switch (part.Kind)
            {
                case PartKind.Text:
                    builder.Append(part.Bytes);
                    break;
                case PartKind.Parameter:
                    int index = context.RouteValues.IndexOf(part.Name!);
                    if (index >= 0)
                    {
                        (int start, int length) = context.RouteValues.Range(index);
                        builder.AppendPathEncoded(context.Path.Slice(start, length));
                    }

                    break;
                case PartKind.Path:
                    builder.AppendPathEncoded(context.Path);
                    break;
                case PartKind.Query:
                    builder.Append(context.Query);
                    break;
                case PartKind.Host:
                    builder.Append(context.HostName);
                    break;
                case PartKind.Scheme:
                    builder.Append(context.IsHttps ? "https"u8 : "http"u8);
                    break;
            }
        }

        if (builder.Overflowed)
        {
            return context.RespondAsync(414, "text/plain"u8, "redirect location too long\n"u8.ToArray());
        }

        context.ResponseHeaders.Add(KnownHeader.Location, "Location"u8, builder.Written);
        return context.RespondAsync(_status, default, default);
    }

    private enum PartKind
    {
        Text,
        Parameter,
        Path,
        Query,
        Host,
        Scheme,
        Invalid,
    }

    private readonly record struct Part(PartKind Kind, byte[]? Bytes, string? Name)
    {
        public static Part Text(string s) => new(PartKind.Text, Encoding.UTF8.GetBytes(s), null);
    }
}

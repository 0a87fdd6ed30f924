namespace Appliance.Config;

/// <summary>One problem in a config document, located by its JSON path (<c>routes[2].match.path</c>).</summary>
public sealed record ConfigError(string Path, string Message)
{
    public override string ToString() => Path.Length == 0 ? Message : $"{Path}: {Message}";
}

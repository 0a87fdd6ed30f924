using System.Text.Json;

namespace Appliance.Config;

/// <summary>Reads a config document. Syntax and type errors come back as <see cref="ConfigError"/>s with the
/// JSON path the serializer was at, in the same shape as validation errors.</summary>
public static class ConfigLoader
{
    /// <summary>Refuse absurd files early: a config is kilobytes, not gigabytes.</summary>
    public const int MaxConfigBytes = 16 * 1024 * 1024;

    public static ApplianceConfig LoadFile(string path)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new ConfigException([new ConfigError("", $"config file '{path}' does not exist")]);
            }

            if (info.Length > MaxConfigBytes)
            {
                throw new ConfigException([new ConfigError("", $"config file '{path}' is larger than {MaxConfigBytes} bytes")]);
            }

            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException([new ConfigError("", $"cannot read config file '{path}': {e.Message}")]);
        }

        return Parse(bytes);
    }

    public static ApplianceConfig Parse(ReadOnlySpan<byte> json)
    {
        if (json.Length > MaxConfigBytes)
        {
            throw new ConfigException([new ConfigError("", $"config is larger than {MaxConfigBytes} bytes")]);
        }

        try
        {
            return JsonSerializer.Deserialize(json, ConfigJsonContext.Default.ApplianceConfig)
                ?? throw new ConfigException([new ConfigError("", "config document is null")]);
        }
        catch (JsonException e)
        {
            string path = ToConfigPath(e.Path);
            string where = e.LineNumber is long line ? $" (line {line + 1}, byte {e.BytePositionInLine + 1})" : "";
            throw new ConfigException([new ConfigError(path, FirstSentence(e.Message) + where)]);
        }
    }

    /// <summary>One entry of a collection (a route, a cluster…), with the same strictness and error paths as a whole config.</summary>
    public static T ParseFragment<T>(ReadOnlySpan<byte> json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, string basePath)
        where T : class
    {
        try
        {
            return JsonSerializer.Deserialize(json, type) ?? throw new ConfigException([new ConfigError(basePath, "is null")]);
        }
        catch (JsonException e)
        {
            string path = ToConfigPath(e.Path);
            string full = path.Length == 0 ? basePath : basePath + (path.StartsWith('[') ? "" : ".") + path;
            string where = e.LineNumber is long line ? $" (line {line + 1}, byte {e.BytePositionInLine + 1})" : "";
            throw new ConfigException([new ConfigError(full, FirstSentence(e.Message) + where)]);
        }
    }

    public static string Serialize(ApplianceConfig config) =>
        JsonSerializer.Serialize(config, ConfigJsonContext.Default.ApplianceConfig);

    // Canonical JSON of one entry, to tell which entries a new config changes.
    public static string SerializeFragment(ListenerConfig c) => JsonSerializer.Serialize(c, ConfigJsonContext.Default.ListenerConfig);

    public static string SerializeFragment(RouteConfig c) => JsonSerializer.Serialize(c, ConfigJsonContext.Default.RouteConfig);

    public static string SerializeFragment(ClusterConfig c) => JsonSerializer.Serialize(c, ConfigJsonContext.Default.ClusterConfig);

    public static string SerializeFragment(CertificateConfig c) => JsonSerializer.Serialize(c, ConfigJsonContext.Default.CertificateConfig);

    public static string SerializeFragment(TenantConfig c) => JsonSerializer.Serialize(c, ConfigJsonContext.Default.TenantConfig);

    public static string SerializeFragment(SessionTicketsConfig? c) => c is null ? "" : JsonSerializer.Serialize(c, ConfigJsonContext.Default.SessionTicketsConfig);

    /// <summary>"$.routes[2].match" → "routes[2].match".</summary>
    internal static string ToConfigPath(string? jsonPath)
    {
        if (string.IsNullOrEmpty(jsonPath) || jsonPath == "$")
        {
            return "";
        }

        return jsonPath.StartsWith("$.", StringComparison.Ordinal) ? jsonPath[2..] : jsonPath.TrimStart('$');
    }

    // System.Text.Json appends "Path: ... | LineNumber: ..." which we report in our own format, and names .NET
    // types, which mean nothing to an operator.
    private static string FirstSentence(string message)
    {
        int cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        string first = cut > 0 ? message[..cut] : message;
        if (first.Contains("could not be converted to", StringComparison.Ordinal))
        {
            string expected = first.Contains("List`1", StringComparison.Ordinal) || first.Contains("[]", StringComparison.Ordinal) ? "an array"
                : first.Contains("System.String", StringComparison.Ordinal) ? "a string"
                : first.Contains("System.Int", StringComparison.Ordinal) ? "a number"
                : first.Contains("System.Boolean", StringComparison.Ordinal) ? "true or false"
                : first.Contains("Dictionary", StringComparison.Ordinal) || first.Contains("Appliance.Config.", StringComparison.Ordinal) ? "an object"
                : "a different type";
            return $"has the wrong type: expected {expected}";
        }

        if (first.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
        {
            return "unknown field";
        }

        return first;
    }
}

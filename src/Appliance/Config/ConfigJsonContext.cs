using System.Text.Json.Serialization;

namespace Appliance.Config;

/// <summary>Source-generated (AOT safe) JSON for the config file. Unknown members are errors, so a
/// typo in a field name is reported with its path instead of being silently ignored.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true)]
[JsonSerializable(typeof(ApplianceConfig))]
public sealed partial class ConfigJsonContext : JsonSerializerContext;

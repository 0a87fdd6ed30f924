namespace Appliance.Config;

/// <summary>A config document was refused; carries every error found, not just the first.</summary>
public sealed class ConfigException : Exception
{
    public ConfigException(IReadOnlyList<ConfigError> errors)
        : base(errors.Count == 1 ? errors[0].ToString() : $"{errors.Count} config errors; first: {errors[0]}")
    {
        Errors = errors;
    }

    public IReadOnlyList<ConfigError> Errors { get; }
}

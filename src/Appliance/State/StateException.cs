using Appliance.Config;

namespace Appliance.State;

/// <summary>What kind of refusal a <see cref="StateException"/> is, so the admin API can pick the status.</summary>
public enum StateErrorKind
{
    /// <summary>The input is malformed or out of bounds (400/422).</summary>
    Invalid,

    /// <summary>The thing named does not exist (404).</summary>
    NotFound,

    /// <summary>The input is well formed but clashes with what is stored: a taken id or domain, a decided subscription (409).</summary>
    Conflict,
}

/// <summary>
/// A state operation was refused; nothing was changed. <see cref="Field"/> is the path of the offending input
/// (<c>name</c>, <c>domains[2]</c>, <c>tenantId</c>) so the admin API can answer problem+json naming it.
/// </summary>
public sealed class StateException : Exception
{
    public StateException(StateErrorKind kind, string field, string detail)
        : base(field.Length == 0 ? detail : $"{field}: {detail}")
    {
        Kind = kind;
        Field = field;
        Detail = detail;
    }

    public StateErrorKind Kind { get; }

    public string Field { get; }

    /// <summary>The message without the field path.</summary>
    public string Detail { get; }

    /// <summary>The same error in the shape the admin API already renders for config errors.</summary>
    public ConfigError ToError() => new(Field, Detail);

    internal static StateException Invalid(string field, string detail) => new(StateErrorKind.Invalid, field, detail);

    internal static StateException NotFound(string field, string detail) => new(StateErrorKind.NotFound, field, detail);

    internal static StateException Conflict(string field, string detail) => new(StateErrorKind.Conflict, field, detail);
}

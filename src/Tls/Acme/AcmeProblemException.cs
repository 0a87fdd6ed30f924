namespace Appliance.Tls.Acme;

/// <summary>
/// The ACME server refused a request or a validation failed (RFC 8555 §6.7). <see cref="Type"/> is the problem type
/// URN and <see cref="Detail"/> the server's words; the message joins them so a log line says both.
/// </summary>
public sealed class AcmeProblemException : Exception
{
    public const string Prefix = "urn:ietf:params:acme:error:";

    public AcmeProblemException(string type, string detail, int status)
        : base($"{ShortType(type)}: {detail}")
    {
        Type = type;
        Detail = detail;
        Status = status;
    }

    /// <summary>The full problem type, e.g. "urn:ietf:params:acme:error:rejectedIdentifier".</summary>
    public string Type { get; }

    public string Detail { get; }

    /// <summary>The HTTP status of the response that carried the problem (0 when it came inside an object).</summary>
    public int Status { get; }

    /// <summary>"badNonce" for the ACME namespace, the whole type otherwise.</summary>
    public string ShortName => ShortType(Type);

    private static string ShortType(string type) =>
        type.StartsWith(Prefix, StringComparison.Ordinal) ? type[Prefix.Length..] : type;

    public bool Is(string shortType) => Type == Prefix + shortType;

    /// <summary>From a problem document; subproblems (§6.7.1) are appended to the detail, one per identifier.</summary>
    public static AcmeProblemException From(AcmeProblem problem, int status, string? context = null)
    {
        string type = string.IsNullOrEmpty(problem.Type) ? "about:blank" : problem.Type;
        string detail = string.IsNullOrEmpty(problem.Detail) ? problem.Title ?? "no detail given" : problem.Detail;
        if (problem.Subproblems is { Count: > 0 } subproblems)
        {
            detail += " (" + string.Join("; ", subproblems.Take(10).Select(s =>
                $"{s.Identifier?.Value ?? "?"}: {ShortType(s.Type ?? "")} {s.Detail}".TrimEnd())) + ")";
        }

        // A hostile server's detail must not fill the log or the admin API.
        if (detail.Length > 1000)
        {
            detail = detail[..1000] + "…";
        }

        type = type.Length > 200 ? type[..200] : type;
        return new AcmeProblemException(type, context is null ? detail : $"{context}: {detail}", status);
    }
}

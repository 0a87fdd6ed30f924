namespace Appliance.Tls.Acme;

/// <summary>
/// RFC 8555 §6.7 (RFC 7807 problem document, application/problem+json): what an ACME server says went wrong.
/// Turned into an <see cref="AcmeProblemException"/>.
/// </summary>
public sealed class AcmeProblem
{
    /// <summary>"urn:ietf:params:acme:error:badNonce", ...</summary>
    public string? Type { get; set; }
    public string? Title { get; set; }
    public string? Detail { get; set; }
    public int? Status { get; set; }
    /// <summary>RFC 8555 §6.7.1: one per identifier that failed.</summary>
    public List<AcmeSubproblem>? Subproblems { get; set; }
}

public sealed class AcmeSubproblem
{
    public string? Type { get; set; }
    public string? Detail { get; set; }
    public AcmeIdentifier? Identifier { get; set; }
}

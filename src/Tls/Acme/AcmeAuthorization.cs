namespace Appliance.Tls.Acme;

/// <summary>RFC 8555 §7.1.4: an authorization, checked by <see cref="AcmeResponseParser.Authorization"/>.</summary>
public sealed class AcmeAuthorization
{
    public AcmeIdentifier? Identifier { get; set; }
    /// <summary>pending, valid, invalid, deactivated, expired or revoked (§7.1.6).</summary>
    public string? Status { get; set; }
    public string? Expires { get; set; }
    public List<AcmeChallenge>? Challenges { get; set; }
    public bool Wildcard { get; set; }
}

/// <summary>RFC 8555 §8: one way to prove control of an identifier.</summary>
public sealed class AcmeChallenge
{
    /// <summary>"http-01", "dns-01", "tls-alpn-01", ...</summary>
    public string? Type { get; set; }
    public string? Url { get; set; }
    /// <summary>pending, processing, valid or invalid.</summary>
    public string? Status { get; set; }
    public string? Token { get; set; }
    public string? Validated { get; set; }
    /// <summary>Why validation failed (§8.2 errors).</summary>
    public AcmeProblem? Error { get; set; }
}

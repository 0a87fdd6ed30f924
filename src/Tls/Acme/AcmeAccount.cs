namespace Appliance.Tls.Acme;

/// <summary>RFC 8555 §7.3: the newAccount request body.</summary>
public sealed class AcmeNewAccountRequest
{
    public bool TermsOfServiceAgreed { get; set; }
    public List<string>? Contact { get; set; }
}

/// <summary>RFC 8555 §7.1.2: the account object (only what the client reads).</summary>
public sealed class AcmeAccount
{
    public string? Status { get; set; }
    public List<string>? Contact { get; set; }
}

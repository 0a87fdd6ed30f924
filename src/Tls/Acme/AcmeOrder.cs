namespace Appliance.Tls.Acme;

/// <summary>RFC 8555 §7.1.3: an order, as read from JSON and checked by <see cref="AcmeResponseParser.Order"/>.</summary>
public sealed class AcmeOrder
{
    /// <summary>pending, ready, processing, valid or invalid (§7.1.6).</summary>
    public string? Status { get; set; }
    public string? Expires { get; set; }
    public List<AcmeIdentifier>? Identifiers { get; set; }
    public List<string>? Authorizations { get; set; }
    public string? Finalize { get; set; }
    public string? Certificate { get; set; }
    /// <summary>Why an invalid order failed.</summary>
    public AcmeProblem? Error { get; set; }
}

/// <summary>RFC 8555 §9.7.7: { "type": "dns", "value": "example.com" }.</summary>
public sealed class AcmeIdentifier
{
    public string? Type { get; set; }
    public string? Value { get; set; }
}

/// <summary>RFC 8555 §7.4: the newOrder request body.</summary>
public sealed class AcmeNewOrderRequest
{
    public List<AcmeIdentifier>? Identifiers { get; set; }
}

/// <summary>RFC 8555 §7.4: the finalize request body; the CSR is base64url DER.</summary>
public sealed class AcmeFinalizeRequest
{
    public string? Csr { get; set; }
}

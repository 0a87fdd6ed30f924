namespace Appliance.Tls.Acme;

/// <summary>
/// RFC 8555 §7.1.1: the directory object, the one URL a client is configured with; it names every other
/// endpoint. As read from JSON; <see cref="AcmeResponseParser.Directory"/> checks it before use.
/// </summary>
public sealed class AcmeDirectory
{
    public string? NewNonce { get; set; }
    public string? NewAccount { get; set; }
    public string? NewOrder { get; set; }
    public string? RevokeCert { get; set; }
    public string? KeyChange { get; set; }
    public AcmeDirectoryMeta? Meta { get; set; }
}

public sealed class AcmeDirectoryMeta
{
    public string? TermsOfService { get; set; }
    public string? Website { get; set; }
    /// <summary>RFC 8555 §7.3.4: external account binding required (not supported here: refused with a clear error).</summary>
    public bool ExternalAccountRequired { get; set; }
}

namespace Appliance.Tls.Acme;

/// <summary>
/// The ACME server's answer could not be used: not JSON, a required field missing, an unknown status, a body over
/// its cap, a URL that is not https. Also what the client itself refuses (no challenge of the configured type).
/// </summary>
public sealed class AcmeProtocolException : Exception
{
    public AcmeProtocolException(string message)
        : base(message)
    {
    }

    public AcmeProtocolException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

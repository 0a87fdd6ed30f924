namespace Appliance.Tls;

/// <summary>
/// A certificate, key or chain could not be turned into something we would serve.
/// The message names the certificate, the file and the reason, because it goes
/// straight to the operator (check-config output, admin problem+json, the log).
/// </summary>
public sealed class CertificateLoadException : Exception
{
    public CertificateLoadException(string message, string? filePath = null, Exception? innerException = null)
        : base(message, innerException)
    {
        FilePath = filePath;
    }

    /// <summary>The file at fault, or null when the problem is not tied to one file.</summary>
    public string? FilePath { get; }
}

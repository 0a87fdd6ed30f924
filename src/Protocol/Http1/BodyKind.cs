namespace Appliance.Protocol.Http1;

/// <summary>How a request body is delimited (RFC 9112 §6.3).</summary>
public enum BodyKind : byte
{
    /// <summary>No body: neither Transfer-Encoding nor Content-Length (RFC 9112 §6.3 rule 7).</summary>
    None,
    ContentLength,
    Chunked,
}

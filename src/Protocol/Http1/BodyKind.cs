namespace Appliance.Protocol.Http1;

/// <summary>How a message body is delimited (RFC 9112 §6.3).</summary>
public enum BodyKind : byte
{
    /// <summary>No body: neither Transfer-Encoding nor Content-Length (RFC 9112 §6.3 rule 7).</summary>
    None,
    ContentLength,
    Chunked,
    /// <summary>Responses only: the body runs until the connection closes (RFC 9112 §6.3 rule 8).</summary>
    CloseDelimited,
}

using Appliance.Protocol.Headers;

namespace Appliance.Protocol.Http1;

/// <summary>
/// Receives what <see cref="Http1RequestParser"/> and <see cref="ChunkedDecoder"/> find. Implement it on a struct
/// that wraps a reference: the parser is generic over the handler type, so calls are devirtualised and inlined
/// (Kestrel's HttpParser trick).
/// </summary>
/// <remarks>The spans are valid only during the call (they may point into a temporary copy): copy what you keep.</remarks>
public interface IHttp1RequestHandler
{
    /// <param name="method">The recognised method, or <see cref="HttpMethod.Custom"/>.</param>
    /// <param name="methodToken">The method as sent (a validated token).</param>
    /// <param name="target">The raw request-target: origin-form "/a?b", absolute-form "http://h/p", authority-form
    /// "h:443" (CONNECT only) or "*" (OPTIONS only).</param>
    void OnRequestLine(HttpMethod method, ReadOnlySpan<byte> methodToken, ReadOnlySpan<byte> target, HttpVersion version);

    /// <param name="value">The field value with leading and trailing OWS removed.</param>
    void OnHeader(KnownHeader known, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value);
}

using Appliance.Protocol.Headers;

namespace Appliance.Protocol.Http1;

/// <summary>How an upstream response body is delimited (RFC 9112 §6.3), with the same strictness as requests.</summary>
public static class Http1ResponseFraming
{
    public static RequestRejection Determine(HeaderCollection headers, int status, bool requestWasHead, HttpVersion version,
        out BodyKind kind, out long contentLength)
    {
        kind = BodyKind.None;
        contentLength = 0;
        // §6.3 rule 1: HEAD responses, 1xx, 204 and 304 have no body whatever their headers say.
        if (requestWasHead || status is < 200 or 204 or 304)
        {
            return RequestRejection.None;
        }

        if (headers.Contains(KnownHeader.TransferEncoding))
        {
            RequestRejection r = Http1RequestFraming.Determine(headers, HttpVersion.Http11, out kind, out contentLength);
            if (r == RequestRejection.TransferEncodingNotChunked)
            {
                // §6.3 rule 4 (responses): a final coding other than chunked means read until close.
                kind = BodyKind.CloseDelimited;
                contentLength = -1;
                return RequestRejection.None;
            }

            return r;
        }

        if (headers.Contains(KnownHeader.ContentLength))
        {
            return Http1RequestFraming.Determine(headers, version, out kind, out contentLength);
        }

        kind = BodyKind.CloseDelimited; // §6.3 rule 8
        contentLength = -1;
        return RequestRejection.None;
    }
}

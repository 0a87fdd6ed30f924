namespace Appliance.Protocol.Http1;

/// <summary>
/// Why a request was refused. Each reason has one status (<see cref="RequestRejections.StatusCode"/>) and one log
/// phrase (<see cref="RequestRejections.Reason"/>); after any of them the connection is closed, because the
/// framing of what follows cannot be trusted.
/// </summary>
public enum RequestRejection : byte
{
    None = 0,

    // request-line (RFC 9112 §3)
    InvalidRequestLine,
    RequestLineTooLong,
    UnsupportedVersion,
    InvalidMethod,
    InvalidTarget,

    // field section (RFC 9112 §5, RFC 9110 §5)
    HeadersTooLarge,
    TooManyHeaders,
    InvalidHeaderName,
    InvalidHeaderValue,
    WhitespaceBeforeColon,
    ObsFold,
    BareCr,
    BareLf,

    // Host (RFC 9112 §3.2)
    MissingHost,
    MultipleHost,
    InvalidHost,

    // message body length (RFC 9112 §6)
    ConflictingContentLengthAndTransferEncoding,
    InvalidContentLength,
    MultipleContentLength,
    TransferEncodingNotChunked,
    UnsupportedTransferEncoding,
    TransferEncodingInHttp10,

    // chunked coding (RFC 9112 §7.1)
    InvalidChunkSize,
    ChunkSizeOverflow,
    InvalidChunkExtension,
    ChunkExtensionTooLong,
    InvalidChunkTerminator,
    TrailersTooLarge,

    // decided by the server, not the parser
    BodyTooLarge,
    UnexpectedEndOfBody,
    RequestTimeout,
    MethodNotImplemented,
    ExpectationFailed,
}

/// <summary>Status codes and log reasons of <see cref="RequestRejection"/>.</summary>
public static class RequestRejections
{
    /// <summary>The response status for the rejection (0 for <see cref="RequestRejection.None"/>).</summary>
    public static int StatusCode(this RequestRejection rejection) => rejection switch
    {
        RequestRejection.None => 0,
        RequestRejection.RequestLineTooLong => 414,
        RequestRejection.UnsupportedVersion => 505,
        RequestRejection.HeadersTooLarge or RequestRejection.TooManyHeaders or RequestRejection.TrailersTooLarge => 431,
        // RFC 9112 §6.1: a transfer coding the server does not understand is 501.
        RequestRejection.UnsupportedTransferEncoding or RequestRejection.MethodNotImplemented => 501,
        RequestRejection.BodyTooLarge => 413,
        RequestRejection.RequestTimeout => 408,
        // RFC 9110 §10.1.1: an expectation the server cannot meet.
        RequestRejection.ExpectationFailed => 417,
        _ => 400,
    };

    /// <summary>A short phrase for logs and metrics labels.</summary>
    public static string Reason(this RequestRejection rejection) => rejection switch
    {
        RequestRejection.None => "none",
        RequestRejection.InvalidRequestLine => "invalid request line",
        RequestRejection.RequestLineTooLong => "request line too long",
        RequestRejection.UnsupportedVersion => "unsupported HTTP version",
        RequestRejection.InvalidMethod => "invalid method",
        RequestRejection.InvalidTarget => "invalid request target",
        RequestRejection.HeadersTooLarge => "header section too large",
        RequestRejection.TooManyHeaders => "too many header fields",
        RequestRejection.InvalidHeaderName => "invalid header field name",
        RequestRejection.InvalidHeaderValue => "invalid header field value",
        RequestRejection.WhitespaceBeforeColon => "whitespace between field name and colon",
        RequestRejection.ObsFold => "obsolete line folding",
        RequestRejection.BareCr => "bare CR",
        RequestRejection.BareLf => "bare LF",
        RequestRejection.MissingHost => "missing Host",
        RequestRejection.MultipleHost => "multiple Host fields",
        RequestRejection.InvalidHost => "invalid Host",
        RequestRejection.ConflictingContentLengthAndTransferEncoding => "both Content-Length and Transfer-Encoding",
        RequestRejection.InvalidContentLength => "invalid Content-Length",
        RequestRejection.MultipleContentLength => "multiple Content-Length values",
        RequestRejection.TransferEncodingNotChunked => "Transfer-Encoding does not end in chunked",
        RequestRejection.UnsupportedTransferEncoding => "unsupported transfer coding",
        RequestRejection.TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
        RequestRejection.InvalidChunkSize => "invalid chunk size",
        RequestRejection.ChunkSizeOverflow => "chunk size overflow",
        RequestRejection.InvalidChunkExtension => "invalid chunk extension",
        RequestRejection.ChunkExtensionTooLong => "chunk extension too long",
        RequestRejection.InvalidChunkTerminator => "chunk data not followed by CRLF",
        RequestRejection.TrailersTooLarge => "trailer section too large",
        RequestRejection.BodyTooLarge => "request body too large",
        RequestRejection.UnexpectedEndOfBody => "connection closed inside the body",
        RequestRejection.RequestTimeout => "request timed out",
        RequestRejection.MethodNotImplemented => "method not implemented",
        RequestRejection.ExpectationFailed => "unsupported expectation",
        _ => "unknown",
    };
}

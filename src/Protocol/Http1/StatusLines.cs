using System.Text;

namespace Appliance.Protocol.Http1;

/// <summary>Pre-encoded "HTTP/1.1 NNN Reason\r\n" lines and reason phrases (RFC 9110 §15).</summary>
public static class StatusLines
{
    private static readonly byte[]?[] s_lines = Build();

    public static ReadOnlySpan<byte> Get(int status)
    {
        if ((uint)status < (uint)s_lines.Length && s_lines[status] is { } line)
        {
            return line;
        }

        return Encoding.ASCII.GetBytes($"HTTP/1.1 {Math.Clamp(status, 100, 999)} \r\n");
    }

    public static string ReasonPhrase(int status) => status switch
    {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        511 => "Network Authentication Required",
        _ => "",
    };

    private static byte[]?[] Build()
    {
        var lines = new byte[]?[600];
        for (int status = 100; status < 600; status++)
        {
            string reason = ReasonPhrase(status);
            if (reason.Length > 0)
            {
                lines[status] = Encoding.ASCII.GetBytes($"HTTP/1.1 {status} {reason}\r\n");
            }
        }

        return lines;
    }
}

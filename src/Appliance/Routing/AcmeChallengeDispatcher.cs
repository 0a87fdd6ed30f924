using System.Text;
using Appliance.Server;
using Appliance.Tls.Acme;

namespace Appliance.Routing;

/// <summary>
/// HTTP-01 (RFC 8555 §8.3) on a plain listener: GET /.well-known/acme-challenge/{token} is answered with the key
/// authorization (text/plain) while that token is pending, and 404 otherwise; it comes before routes and before the
/// HTTPS redirect (a redirectToHttps listener answers it too: the CA may follow a redirect, but need not). Every other
/// request goes to the listener's own dispatcher. Put in front of plain listeners only when a certificate uses http-01.
/// </summary>
public sealed class AcmeChallengeDispatcher(IRequestDispatcher inner, PendingChallenges challenges) : IRequestDispatcher
{
    private static readonly byte[] s_notFound = ProblemDetails.Json(404, "No pending ACME challenge has this token.");

    public static ReadOnlySpan<byte> Prefix => "/.well-known/acme-challenge/"u8;

    public ValueTask DispatchAsync(RequestContext context)
    {
        ReadOnlySpan<byte> path = context.Path;
        if (!path.StartsWith(Prefix))
        {
            return inner.DispatchAsync(context);
        }

        ReadOnlySpan<byte> token = path[Prefix.Length..];
        string method = Encoding.ASCII.GetString(context.MethodToken);
        if (method is "GET" or "HEAD" && IsToken(token) && challenges.TryGetKeyAuthorization(Encoding.ASCII.GetString(token), out string keyAuthorization))
        {
            return Respond(context, 200, "text/plain"u8.ToArray(), Encoding.ASCII.GetBytes(keyAuthorization));
        }

        return Respond(context, 404, "application/problem+json"u8.ToArray(), s_notFound);
    }

    private static bool IsToken(ReadOnlySpan<byte> token)
    {
        if (token.IsEmpty || token.Length > 256)
        {
            return false;
        }

        foreach (byte b in token)
        {
            if (!(char.IsAsciiLetterOrDigit((char)b) || b is (byte)'-' or (byte)'_'))
            {
                return false;
            }
        }

        return true;
    }

    private static ValueTask Respond(RequestContext context, int status, byte[] contentType, byte[] body)
    {
        context.ResponseHeaders.Add(Protocol.Headers.KnownHeader.CacheControl, "Cache-Control"u8, "no-store"u8);
        if (!context.Body.IsComplete)
        {
            context.CloseConnection = true; // a challenge fetch has no body; one that comes with a body is not read
        }

        return context.RespondAsync(status, contentType, body);
    }
}

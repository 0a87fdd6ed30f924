using Appliance.Policies;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using Appliance.Server;
using Microsoft.Extensions.Logging;

namespace Appliance.Routing;

/// <summary>
/// Matches the request against the current route table, checks the route's client certificate requirement, runs its
/// policy chain, then its handler; 404/405/403 and the policies' refusals as problem+json.
/// </summary>
public sealed class RouteDispatcher(Func<RouteTable> table, ILogger? logger = null, PolicyEnvironment? policies = null) : IRequestDispatcher
{
    private static readonly byte[] s_notFound = ProblemDetails.Json(404, "No route matches this request.");

    private static readonly byte[] s_methodNotAllowed = ProblemDetails.Json(405, "The route does not accept this method.");

    private static readonly byte[] s_certificateRequired = ProblemDetails.Json(403, "client certificate required");

    private static readonly byte[] s_certificateNotTrusted = ProblemDetails.Json(403, "client certificate not trusted for this route");

    private readonly PolicyEnvironment _environment = policies ?? PolicyEnvironment.Empty;

    public ValueTask DispatchAsync(RequestContext context)
    {
        switch (table().Match(context, out RouteModel? route, out uint allowed))
        {
            case RouteTable.MatchResult.Matched:
                context.Route = route;
                context.RouteId = route!.Id;
                context.SkipAccessLog = !route.AccessLog;
                if (route!.Hsts is { } hsts && context.IsHttps)
                {
                    context.StrictTransportSecurity = hsts; // RFC 6797 §7.2: only over secure transport
                }

                if (context.Connection.ClientCertificate is not null || route.ClientCertificates == Tls.ClientCertificateMode.Required)
                {
                    byte[]? refused = CheckClientCertificate(context, route);
                    if (refused is not null)
                    {
                        return Problem(context, 403, refused);
                    }
                }

                if (route.Policies is { } chain)
                {
                    ValueTask<PolicyVerdict> verdict = chain.RunAsync(context, _environment);
                    if (!verdict.IsCompletedSuccessfully)
                    {
                        return HandleAfterPoliciesAsync(verdict, context, route);
                    }

                    if (!verdict.Result.Passed)
                    {
                        return Refused(context, verdict.Result);
                    }

                    CountUsage(context);
                }

                return Handle(context, route.Handler);
            case RouteTable.MatchResult.MethodNotAllowed:
                Span<byte> allow = stackalloc byte[128];
                int n = FormatAllow(allowed, allow);
                context.ResponseHeaders.Add(KnownHeader.None, "Allow"u8, allow[..n]);
                return Problem(context, 405, s_methodNotAllowed);
            default:
                return Problem(context, 404, s_notFound);
        }
    }

    /// <summary>
    /// Sets the request's client identity when the certificate is trusted for the route (checked once per connection
    /// and CA set); the 403 body when the route requires a trusted certificate and there is none, else null.
    /// </summary>
    private byte[]? CheckClientCertificate(RequestContext context, RouteModel route)
    {
        ConnectionInfo connection = context.Connection;
        if (connection.IsClientCertificateTrusted(route.ClientCertificateAuthorities, out string? refusal))
        {
            context.ClientIdentity = connection.ClientIdentity;
            return null;
        }

        if (route.ClientCertificates != Tls.ClientCertificateMode.Required)
        {
            return null;
        }

        bool none = connection.ClientCertificate is null;
        logger?.LogInformation("connection {Id}: route {Route}: 403, {Reason}", connection.Id, route.Id,
            none ? "client certificate required but none was sent" : refusal);
        return none ? s_certificateRequired : s_certificateNotTrusted;
    }

    private async ValueTask HandleAfterPoliciesAsync(ValueTask<PolicyVerdict> pending, RequestContext context, RouteModel route)
    {
        PolicyVerdict verdict = await pending.ConfigureAwait(false);
        if (verdict.Passed)
        {
            CountUsage(context);
        }

        await (verdict.Passed ? Handle(context, route.Handler) : Refused(context, verdict)).ConfigureAwait(false);
    }

    private ValueTask Handle(RequestContext context, RouteHandler handler) =>
        handler.CountsTokens && context.ConsumerId is not null && _environment.Usage is not null
            ? HandleCountingTokensAsync(context, handler)
            : handler.HandleAsync(context);

    /// <summary>The handler, then the tokens its answer cost (all of them, a broken-off stream's too) to the consumer's usage.</summary>
    private async ValueTask HandleCountingTokensAsync(RequestContext context, RouteHandler handler)
    {
        try
        {
            await handler.HandleAsync(context).ConfigureAwait(false);
        }
        finally
        {
            if (context.InputTokens > 0 || context.OutputTokens > 0)
            {
                _environment.Usage!.AddTokens(context.ConsumerId!, context.InputTokens, context.OutputTokens);
            }
        }
    }

    /// <summary>A request every policy let through counts toward its consumer's usage (refused ones do not).</summary>
    private void CountUsage(RequestContext context)
    {
        if (context.ConsumerId is { } consumer)
        {
            _environment.Usage?.Count(consumer);
        }
    }

    /// <summary>A policy's refusal: its status and problem+json body, with Retry-After when it gave one.</summary>
    private static ValueTask Refused(RequestContext context, PolicyVerdict verdict)
    {
        if (verdict.RetryAfterSeconds >= 0)
        {
            Span<byte> seconds = stackalloc byte[11];
            verdict.RetryAfterSeconds.TryFormat(seconds, out int n, provider: System.Globalization.CultureInfo.InvariantCulture);
            context.ResponseHeaders.Add(KnownHeader.None, "Retry-After"u8, seconds[..n]);
        }

        if (verdict.Challenge is { } challenge)
        {
            context.ResponseHeaders.Add(KnownHeader.None, "WWW-Authenticate"u8, challenge);
        }

        return Problem(context, verdict.Status, verdict.Problem!);
    }

    private static ValueTask Problem(RequestContext context, int status, byte[] body)
    {
        // Drain a small body so the connection stays usable; Http1Connection closes on large ones.
        return context.RespondAsync(status, "application/problem+json"u8, body);
    }

    private static int FormatAllow(uint mask, Span<byte> destination)
    {
        int n = 0;
        for (int m = 1; m <= (int)HttpMethod.Connect; m++)
        {
            if ((mask & (1u << m)) == 0)
            {
                continue;
            }

            ReadOnlySpan<byte> name = HttpMethods.ToBytes((HttpMethod)m);
            if (n > 0)
            {
                ", "u8.CopyTo(destination[n..]);
                n += 2;
            }

            name.CopyTo(destination[n..]);
            n += name.Length;
        }

        return n;
    }
}

using System.Buffers.Text;
using Appliance.Protocol.Headers;
using Appliance.Server;

namespace Appliance.Routing;

/// <summary>A plain listener's whole job when redirectToHttps is on: 308 to the same host, path and query over https.</summary>
public sealed class HttpsRedirectDispatcher(int httpsPort) : IRequestDispatcher
{
    public ValueTask DispatchAsync(RequestContext context)
    {
        Span<byte> buffer = stackalloc byte[4096];
        var b = new ByteBuilder(buffer);
        b.Append("https://"u8);
        ReadOnlySpan<byte> host = context.HostName;
        if (host.IsEmpty)
        {
            return context.RespondAsync(400, "text/plain"u8, "a Host header is needed to redirect to https\n"u8.ToArray());
        }

        b.Append(host);
        if (httpsPort != 443)
        {
            Span<byte> port = stackalloc byte[8];
            port[0] = (byte)':';
            Utf8Formatter.TryFormat(httpsPort, port[1..], out int digits);
            b.Append(port[..(digits + 1)]);
        }

        ReadOnlySpan<byte> raw = context.RawTarget;
        if (!raw.IsEmpty && raw[0] == (byte)'/')
        {
            b.Append(raw); // origin-form as received: already a valid path and query
        }
        else
        {
            b.AppendPathEncoded(context.Path.IsEmpty ? "/"u8 : context.Path);
            b.Append(context.Query);
        }
        if (b.Overflowed)
        {
            return context.RespondAsync(414, "text/plain"u8, "URI too long to redirect\n"u8.ToArray());
        }

        context.ResponseHeaders.Add(KnownHeader.Location, "Location"u8, b.Written);
        // RFC 9110 §15.4.9: 308 keeps the method and body, so a POST is retried as a POST.
        return context.RespondAsync(308, default, default);
    }
}

using System.Text.Json;
using Appliance.Protocol.Http1;

namespace Appliance.Server;

/// <summary>RFC 9457 problem+json bodies for the errors the engine, the router and the proxy answer with.</summary>
public static class ProblemDetails
{
    public static byte[] Json(int status, string detail)
    {
        using var buffer = new MemoryStream(160);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("type", "about:blank");
            w.WriteNumber("status", status);
            w.WriteString("title", StatusLines.ReasonPhrase(status));
            w.WriteString("detail", detail); // escaped properly, whatever the reason text holds
            w.WriteEndObject();
        }

        return buffer.ToArray();
    }
}

using System.Buffers;
using System.Text.Json;
using Appliance.Config;

namespace Appliance.Admin;

/// <summary>Small JSON documents of the admin API, written with Utf8JsonWriter (AOT safe, no reflection).</summary>
internal static class AdminJson
{
    public static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            body(writer);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>A named array of strings ("changes", "hosts").</summary>
    public static void WriteStrings(this Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (string v in values)
        {
            w.WriteStringValue(v);
        }

        w.WriteEndArray();
    }

    /// <summary>RFC 9457 problem details; validation errors carry their JSON paths in "errors".</summary>
    public static byte[] Problem(int status, string title, string detail, IReadOnlyList<ConfigError>? errors = null) => Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("type", "about:blank");
        w.WriteNumber("status", status);
        w.WriteString("title", title);
        w.WriteString("detail", detail);
        if (errors is { Count: > 0 })
        {
            w.WriteStartArray("errors");
            foreach (ConfigError e in errors)
            {
                w.WriteStartObject();
                w.WriteString("path", e.Path);
                w.WriteString("message", e.Message);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        w.WriteEndObject();
    });
}

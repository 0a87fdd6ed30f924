using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Appliance.Admin;

/// <summary>
/// `appliance ctl …`: the same binary as a client of the admin socket. Human tables by default, --json for
/// scripts. Exit codes: 0 ok, 1 refused by the server, 2 usage, 3 cannot connect.
/// </summary>
public static class CtlCommand
{
    public const string Usage = """
        usage: appliance ctl [--socket PATH] [--json] <command>

          status                          version, uptime, listeners, connections, config revision
          config get                      the running config (JSON)
          config apply FILE [--dry-run]   validate and apply a config file (dry run: validate and show the changes)
          config revisions                applied configs, newest first
          config rollback REVISION        apply a stored revision again
          reload                          re-read the config file (like SIGHUP)
          routes | clusters | certs       what the running config holds
          tenants | listeners             the config's tenants and listeners
          certs reload                    read the TLS files again: certificates, CAs, CRLs (a bad one keeps the old serving)
          certs upload NAME FILE          replace a certificate's files with a PEM bundle (certificate, chain, key), validated first
          certs renew NAME                obtain an ACME certificate now and hot-load it (prints the new serial or the CA's error)
          KIND get ID                     one entry as the config holds it (KIND: routes, clusters, certs, tenants, listeners)
          KIND put ID FILE [--dry-run]    create or replace one entry from a JSON file, applied as a new revision
          KIND delete ID [--dry-run]      remove one entry (refused while something still refers to it)
          consumers TENANT                a tenant's consumers
          consumers create TENANT NAME    add a consumer to a tenant
          keys list CONSUMER              a consumer's API keys (prefixes, never secrets)
          keys create CONSUMER            a new API key: its secret is printed this once
          keys revoke KEY                 revoke a key (it stays listed, refused from now on)
          usage CONSUMER                  a consumer's requests per hour (counts not yet written are written first)
          subscriptions list [--status pending|approved|rejected]
          subscriptions create CONSUMER API  ask for a consumer to use an API (a route id); starts pending
          subscriptions approve|reject ID decide a pending subscription
          logs tail [-n N] [-f]           the last N lines logged (default 100); -f keeps following
          access-log reopen               open the access log file again by its path (after logrotate; like SIGUSR1)
          tickets                         TLS session tickets: enabled, key source and count, since when the newest seals
          tickets rotate                  a new generated ticket key seals from now on (older ones still open tickets)
          tickets revoke                  as rotate, and every older key is dropped at once (a key suspected to have leaked)
          metrics                         Prometheus text

        The socket defaults to $APPLIANCE_SOCKET, else ./state/admin.sock when it exists, else /run/appliance/admin.sock.
        """;

    private static string? ResourceKind(string word) => word switch
    {
        "routes" or "route" => "routes",
        "clusters" or "cluster" => "clusters",
        "certs" or "cert" or "certificates" or "certificate" => "certificates",
        "tenants" or "tenant" => "tenants",
        "listeners" or "listener" => "listeners",
        _ => null,
    };

    /// <summary>A flat JSON object of strings (escaped by the writer).</summary>
    private static byte[] JsonObject(params (string Name, string Value)[] fields)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach ((string name, string value) in fields)
            {
                w.WriteString(name, value);
            }

            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    public static async Task<int> ExecuteAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string? socket = null;
        bool json = false;
        bool dryRun = false;
        string? status = null;
        int lines = 100;
        bool follow = false;
        var words = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--socket" when i + 1 < args.Length:
                    socket = args[++i];
                    break;
                case "--json":
                    json = true;
                    break;
                case "--dry-run":
                    dryRun = true;
                    break;
                case "--status" when i + 1 < args.Length:
                    status = args[++i];
                    break;
                case "-n" or "--lines" when i + 1 < args.Length && int.TryParse(args[i + 1], out int n) && n >= 0:
                    lines = n;
                    i++;
                    break;
                case "-f" or "--follow":
                    follow = true;
                    break;
                case "-h" or "--help":
                    stdout.WriteLine(Usage);
                    return 0;
                default:
                    if (args[i].StartsWith('-'))
                    {
                        stderr.WriteLine($"unknown option '{args[i]}'\n{Usage}");
                        return 2;
                    }

                    words.Add(args[i]);
                    break;
            }
        }

        (HttpMethod Method, string Path, string? File, byte[]? Body)? request = words switch
        {
            ["status"] => (HttpMethod.Get, "/v1/status", null, null),
            ["config", "get"] => (HttpMethod.Get, "/v1/config", null, null),
            ["config", "apply", string file] => (HttpMethod.Put, dryRun ? "/v1/config?dryRun=true" : "/v1/config", file, null),
            ["config", "diff", string file] => (HttpMethod.Put, "/v1/config?dryRun=true", file, null),
            ["config", "revisions"] => (HttpMethod.Get, "/v1/config/revisions", null, null),
            ["config", "rollback", string rev] when int.TryParse(rev, out int r) && r > 0 => (HttpMethod.Post, $"/v1/config/rollback?revision={r}", null, null),
            ["reload"] => (HttpMethod.Post, "/v1/reload", null, null),
            ["routes"] => (HttpMethod.Get, "/v1/routes", null, null),
            ["clusters"] => (HttpMethod.Get, "/v1/clusters", null, null),
            ["certs"] or ["certificates"] => (HttpMethod.Get, "/v1/certificates", null, null),
            ["metrics"] => (HttpMethod.Get, "/v1/metrics", null, null),
            ["tenants"] => (HttpMethod.Get, "/v1/tenants", null, null),
            ["certs" or "certificates", "reload"] => (HttpMethod.Post, "/v1/certificates/reload", null, null),
            ["certs" or "certificates", "renew", string name] => (HttpMethod.Post, $"/v1/certificates/{Uri.EscapeDataString(name)}/renew", null, null),
            ["certs" or "certificates", "upload", string name, string file] => (HttpMethod.Put, $"/v1/certificates/{Uri.EscapeDataString(name)}/pem", file, null),
            ["logs", "tail"] => (HttpMethod.Get, $"/v1/logs?lines={lines}{(follow ? "&follow=true" : "")}", null, null),
            ["access-log", "reopen"] or ["logs", "reopen"] => (HttpMethod.Post, "/v1/access-log/reopen", null, null),
            ["listeners"] => (HttpMethod.Get, "/v1/listeners", null, null),
            ["tickets"] => (HttpMethod.Get, "/v1/tls/session-tickets", null, null),
            ["tickets", "rotate"] => (HttpMethod.Post, "/v1/tls/session-tickets/rotate", null, null),
            ["tickets", "revoke"] => (HttpMethod.Post, "/v1/tls/session-tickets/rotate?revoke=true", null, null),
            ["consumers", string tenant] => (HttpMethod.Get, $"/v1/consumers?tenant={Uri.EscapeDataString(tenant)}", null, null),
            ["consumers", "create", string tenant, string name] =>
                (HttpMethod.Post, "/v1/consumers", null, JsonObject(("tenant", tenant), ("name", name))),
            ["keys", "list", string consumer] => (HttpMethod.Get, $"/v1/consumers/{Uri.EscapeDataString(consumer)}/keys", null, null),
            ["keys", "create", string consumer] => (HttpMethod.Post, $"/v1/consumers/{Uri.EscapeDataString(consumer)}/keys", null, null),
            ["keys", "revoke", string key] => (HttpMethod.Delete, $"/v1/keys/{Uri.EscapeDataString(key)}", null, null),
            ["usage", string consumer] => (HttpMethod.Get, $"/v1/consumers/{Uri.EscapeDataString(consumer)}/usage", null, null),
            ["subscriptions", "create", string consumer, string api] =>
                (HttpMethod.Post, "/v1/subscriptions", null, JsonObject(("consumer", consumer), ("api", api))),
            ["subscriptions", "list"] => (HttpMethod.Get, "/v1/subscriptions" + (status is null ? "" : $"?status={Uri.EscapeDataString(status)}"), null, null),
            ["subscriptions", "approve", string id] => (HttpMethod.Post, $"/v1/subscriptions/{Uri.EscapeDataString(id)}/approve", null, null),
            ["subscriptions", "reject", string id] => (HttpMethod.Post, $"/v1/subscriptions/{Uri.EscapeDataString(id)}/reject", null, null),
            [string kind, "get", string id] when ResourceKind(kind) is { } k => (HttpMethod.Get, $"/v1/{k}/{Uri.EscapeDataString(id)}", null, null),
            [string kind, "put", string id, string file] when ResourceKind(kind) is { } k =>
                (HttpMethod.Put, $"/v1/{k}/{Uri.EscapeDataString(id)}{(dryRun ? "?dryRun=true" : "")}", file, null),
            [string kind, "delete", string id] when ResourceKind(kind) is { } k =>
                (HttpMethod.Delete, $"/v1/{k}/{Uri.EscapeDataString(id)}{(dryRun ? "?dryRun=true" : "")}", null, null),
            _ => null,
        };
        if (request is null)
        {
            stderr.WriteLine(words.Count == 0 ? Usage : $"unknown command '{string.Join(' ', words)}'\n{Usage}");
            return 2;
        }

        socket ??= DefaultSocket();
        using var message = new HttpRequestMessage(request.Value.Method, "http://appliance" + request.Value.Path);
        if (request.Value.Body is { } inline)
        {
            message.Content = new ByteArrayContent(inline);
        }
        else if (request.Value.File is { } path)
        {
            try
            {
                message.Content = new ByteArrayContent(await File.ReadAllBytesAsync(path).ConfigureAwait(false));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"cannot read {path}: {e.Message}");
                return 2;
            }
        }

        using var client = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct).ConfigureAwait(false);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        })
        // A renewal waits for the CA (polling included, at most 5 minutes by the issuer's own deadline).
        { Timeout = follow ? Timeout.InfiniteTimeSpan : words is [_, "renew", _] ? TimeSpan.FromMinutes(6) : TimeSpan.FromSeconds(60) };

        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(message, follow ? HttpCompletionOption.ResponseHeadersRead : HttpCompletionOption.ResponseContentRead)
                .ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException se)
        {
            stderr.WriteLine(se.SocketErrorCode switch
            {
                SocketError.AddressNotAvailable or SocketError.ConnectionRefused when !File.Exists(socket) => $"cannot connect: no admin socket at {socket} (is the appliance running? --socket PATH)",
                SocketError.AccessDenied => $"cannot connect: permission denied on {socket} (root, the service user or the admin group only)",
                SocketError.ConnectionRefused => $"cannot connect: nobody listens on {socket}",
                _ => $"cannot connect to {socket}: {se.Message}",
            });
            return 3;
        }
        catch (HttpRequestException e)
        {
            stderr.WriteLine($"cannot connect to {socket}: {e.Message}");
            return 3;
        }

        if (follow && response.IsSuccessStatusCode)
        {
            // logs tail -f: lines as they come, until the appliance stops or the user interrupts.
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync().ConfigureAwait(false));
            while (await reader.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                stdout.WriteLine(line);
                stdout.Flush();
            }

            return 0;
        }

        string body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        bool ok = response.IsSuccessStatusCode;
        string contentType = response.Content.Headers.ContentType?.MediaType ?? "";
        if (json || !contentType.Contains("json", StringComparison.Ordinal) || words is ["config", "get"])
        {
            (ok ? stdout : stderr).WriteLine(body.TrimEnd());
        }
        else
        {
            (ok ? stdout : stderr).Write(Human(body));
        }

        return ok ? 0 : 1;
    }

    private static string DefaultSocket()
    {
        if (Environment.GetEnvironmentVariable("APPLIANCE_SOCKET") is { Length: > 0 } env)
        {
            return env;
        }

        string local = Path.GetFullPath("state/admin.sock");
        return File.Exists(local) ? local : "/run/appliance/admin.sock";
    }

    /// <summary>"key: value" lines for objects, an aligned table for "items" arrays, problem details as errors.</summary>
    internal static string Human(string json)
    {
        using JsonDocument doc = JsonDocument.Parse(json);
        var sb = new StringBuilder();
        JsonElement root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            return json + "\n";
        }

        if (root.TryGetProperty("title", out JsonElement title) && root.TryGetProperty("status", out JsonElement status))
        {
            sb.Append("error ").Append(status.GetRawText()).Append(' ').Append(title.GetString());
            if (root.TryGetProperty("detail", out JsonElement detail)) sb.Append(": ").Append(detail.GetString());
            sb.Append('\n');
            if (root.TryGetProperty("errors", out JsonElement errors))
            {
                foreach (JsonElement e in errors.EnumerateArray())
                {
                    string p = e.GetProperty("path").GetString() ?? "";
                    sb.Append("  ").Append(p.Length > 0 ? p + ": " : "").Append(e.GetProperty("message").GetString()).Append('\n');
                }
            }

            return sb.ToString();
        }

        foreach (JsonProperty p in root.EnumerateObject())
        {
            if (p.Value.ValueKind == JsonValueKind.Array && p.Value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Object))
            {
                if (p.Name != "items") sb.Append(p.Name).Append(":\n");
                Table(p.Value, sb);
            }
            else if (p.Value.ValueKind == JsonValueKind.Array)
            {
                sb.Append(p.Name).Append(": ").Append(string.Join(", ", p.Value.EnumerateArray().Select(Scalar))).Append('\n');
            }
            else
            {
                sb.Append(p.Name).Append(": ").Append(Scalar(p.Value)).Append('\n');
            }
        }

        return sb.ToString();
    }

    private static void Table(JsonElement array, StringBuilder sb)
    {
        List<JsonElement> rows = [.. array.EnumerateArray()];
        if (rows.Count == 0)
        {
            sb.Append("  (none)\n");
            return;
        }

        List<string> columns = [.. rows.SelectMany(r => r.EnumerateObject().Select(p => p.Name)).Distinct()];
        List<string[]> cells = [.. rows.Select(r => columns.Select(c => r.TryGetProperty(c, out JsonElement v) ? Scalar(v) : "").ToArray())];
        int[] widths = [.. columns.Select((c, i) => Math.Max(c.Length, cells.Max(row => row[i].Length)))];
        sb.Append("  ").AppendJoin("  ", columns.Select((c, i) => c.ToUpperInvariant().PadRight(widths[i]))).Append('\n');
        foreach (string[] row in cells)
        {
            sb.Append("  ").AppendJoin("  ", row.Select((v, i) => v.PadRight(widths[i]))).Append('\n');
        }
    }

    private static string Scalar(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString() ?? "",
        JsonValueKind.Array => string.Join(",", v.EnumerateArray().Select(Scalar)),
        JsonValueKind.Object => string.Join(" ", v.EnumerateObject().Select(p => $"{p.Name}={Scalar(p.Value)}")),
        _ => v.GetRawText(),
    };
}

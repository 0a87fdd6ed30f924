using System.Text.Json;
using Appliance.Tests.Support;

namespace Appliance.Tests.Server;

/// <summary>
/// Hand-built hostile frame sequences sent by Debian's python3-h2 stack (Peers/h2_hostile.py: h2.connection for the
/// handshake, hyperframe and hpack for the rest), each answered with the exact frame and error code RFC 9113 asks for:
/// a connection error is a GOAWAY and then the connection closes; a stream error is an RST_STREAM on that stream and
/// the connection keeps working (a PING is still answered).
/// </summary>
[Collection(Http2Collection.Name)]
public sealed class Http2HostilePeerTests(Http2Fixture fixture)
{
    private const string SystemPython = "/usr/bin/python3";

    private async Task<JsonElement> RunAsync(string name, bool tls)
    {
        string script = Path.Combine(AppContext.BaseDirectory, "Peers", "h2_hostile.py");
        int port = tls ? fixture.Https.Port : fixture.H2c.Port;
        Peer.Result r = await Peer.RunAsync(SystemPython, [script, name, "--port", port.ToString(), .. tls ? ["--tls"] : Array.Empty<string>()],
            timeout: TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, $"h2_hostile.py {name} failed:\n{r.All}");
        return JsonDocument.Parse(r.Stdout).RootElement.Clone();
    }

    [Theory]
    [InlineData("data-on-stream-0", "PROTOCOL_ERROR")]                  // §6.1
    [InlineData("even-stream-id", "PROTOCOL_ERROR")]                    // §5.1.1
    [InlineData("data-after-end-stream", "STREAM_CLOSED")]              // §5.1 closed
    [InlineData("data-on-idle-stream", "PROTOCOL_ERROR")]               // §5.1 idle
    [InlineData("window-update-overflow-connection", "FLOW_CONTROL_ERROR")] // §6.9.1
    [InlineData("oversized-frame", "FRAME_SIZE_ERROR")]                 // §4.2
    [InlineData("bad-preface", "PROTOCOL_ERROR", true)]                 // §3.4 (TLS: h2c would fall back to HTTP/1.1)
    [InlineData("continuation-flood", "ENHANCE_YOUR_CALM")]             // CVE-2024-27316
    [InlineData("rapid-reset", "ENHANCE_YOUR_CALM")]                    // CVE-2023-44487
    [InlineData("ping-flood", "ENHANCE_YOUR_CALM")]
    [InlineData("settings-flood", "ENHANCE_YOUR_CALM")]
    [InlineData("empty-data-flood", "ENHANCE_YOUR_CALM")]
    [InlineData("push-promise-from-client", "PROTOCOL_ERROR")]          // §8.4
    [InlineData("headers-on-closed-stream", "STREAM_CLOSED")]           // §5.1 closed
    [InlineData("lower-stream-id", "PROTOCOL_ERROR")]                   // §5.1.1
    [InlineData("invalid-hpack", "COMPRESSION_ERROR")]                  // §4.3
    [InlineData("settings-initial-window-too-large", "FLOW_CONTROL_ERROR")] // §6.5.2
    [InlineData("settings-ack-with-payload", "FRAME_SIZE_ERROR")]       // §6.5
    [InlineData("ping-wrong-length", "FRAME_SIZE_ERROR")]               // §6.7
    [InlineData("rst-stream-on-idle", "PROTOCOL_ERROR")]                // §6.4
    public async Task Connection_error_is_a_goaway_with_the_code_then_close(string name, string error, bool tls = false)
    {
        JsonElement r = await RunAsync(name, tls);
        Assert.True(r.GetProperty("frame").GetString() == "GOAWAY", r.ToString());
        Assert.True(r.GetProperty("error").GetString() == error, r.ToString());
        Assert.True(r.GetProperty("closed").GetBoolean(), $"the connection stayed open after {r}");
    }

    [Theory]
    [InlineData("window-update-overflow-stream", 1, "FLOW_CONTROL_ERROR")] // §6.9.1
    [InlineData("window-update-zero", 1, "PROTOCOL_ERROR")]                // §6.9
    [InlineData("missing-path", 1, "PROTOCOL_ERROR")]                      // §8.3.1
    [InlineData("unknown-pseudo-header", 1, "PROTOCOL_ERROR")]             // §8.3
    [InlineData("pseudo-header-after-regular", 1, "PROTOCOL_ERROR")]       // §8.3
    [InlineData("uppercase-header-name", 1, "PROTOCOL_ERROR")]             // §8.2.1
    [InlineData("connection-specific-header", 1, "PROTOCOL_ERROR")]        // §8.2.2
    [InlineData("te-gzip", 1, "PROTOCOL_ERROR")]                           // §8.2.2
    [InlineData("content-length-mismatch", 1, "PROTOCOL_ERROR")]           // §8.1.1
    [InlineData("self-dependency", 1, "PROTOCOL_ERROR")]                   // §5.3.1
    public async Task Stream_error_is_an_rst_stream_with_the_code_and_the_connection_lives(string name, int stream, string error)
    {
        JsonElement r = await RunAsync(name, tls: false);
        Assert.True(r.GetProperty("frame").GetString() == "RST_STREAM", r.ToString());
        Assert.True(r.GetProperty("stream").GetInt32() == stream, r.ToString());
        Assert.True(r.GetProperty("error").GetString() == error, r.ToString());
        Assert.True(r.GetProperty("alive").GetBoolean(), $"the connection did not answer a PING after {r}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Hpack_bomb_gets_431_and_the_connection_lives(bool tls)
    {
        // 4 KB indexed once and referred to 1,000 times: 4 MB of fields from 5 KB on the wire (RFC 9113 §10.5.1).
        JsonElement r = await RunAsync("hpack-bomb", tls);
        Assert.True(r.GetProperty("frame").GetString() == "HEADERS", r.ToString());
        Assert.Equal(1, r.GetProperty("stream").GetInt32());
        Assert.Equal(431, r.GetProperty("status").GetInt32());
        Assert.True(r.GetProperty("alive").GetBoolean(), $"the connection did not answer a PING after {r}");
    }
}

using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Appliance.Tests.Support;

namespace Appliance.Tests.Server;

/// <summary>
/// The HTTP/2 server driven by real peers: curl (libcurl + nghttp2), nghttp, h2load, and Debian's python3-h2 running
/// the scenarios of Peers/h2_client.py (always /usr/bin/python3: that is where python3-h2 is installed).
/// </summary>
[Collection(Http2Collection.Name)]
public sealed class Http2PeerTests(Http2Fixture fixture)
{
    private const string SystemPython = "/usr/bin/python3";

    private string Https(string path = "/") => $"https://localhost:{fixture.Https.Port}{path}";

    private string Resolve => $"localhost:{fixture.Https.Port}:127.0.0.1";

    private string H2c(string path = "/") => $"http://127.0.0.1:{fixture.H2c.Port}{path}";

    // ---------------- curl ----------------

    [Fact]
    public async Task Curl_gets_over_h2()
    {
        Peer.Result r = await Peer.CurlAsync("-k", "-i", "--http2", "--resolve", Resolve, Https());
        Assert.True(r.ExitCode == 0, r.All);
        Assert.StartsWith("HTTP/2 200", r.Stdout);
        Assert.EndsWith("Hello, World!", r.Stdout);
        Assert.Contains("content-type: text/plain\r\n", r.Stdout);
        Assert.Contains("content-length: 13\r\n", r.Stdout);
    }

    [Fact]
    public async Task Curl_head_over_h2_gets_headers_only()
    {
        Peer.Result r = await Peer.CurlAsync("-k", "-I", "--http2", "--resolve", Resolve, Https());
        Assert.True(r.ExitCode == 0, r.All);
        Assert.StartsWith("HTTP/2 200", r.Stdout);
        Assert.Contains("content-length: 13\r\n", r.Stdout);
        Assert.EndsWith("\r\n\r\n", r.Stdout);
    }

    [Fact]
    public async Task Curl_posts_a_1_MB_body_over_h2()
    {
        string file = Path.Combine(Path.GetTempPath(), $"h2-upload-{Guid.NewGuid():N}.bin");
        await File.WriteAllBytesAsync(file, Enumerable.Range(0, 1024 * 1024).Select(i => (byte)i).ToArray());
        try
        {
            Peer.Result r = await Peer.CurlAsync("-k", "--http2", "--data-binary", "@" + file, "--resolve", Resolve,
                "-w", "|%{http_code}|%{http_version}|%{size_upload}", Https("/upload"));
            Assert.True(r.ExitCode == 0, r.All);
            Assert.Equal("uploaded|200|2|1048576", r.Stdout);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Curl_gets_a_404_problem_json_over_h2()
    {
        Peer.Result r = await Peer.CurlAsync("-k", "-i", "--http2", "--resolve", Resolve, Https("/nothing-here"));
        Assert.True(r.ExitCode == 0, r.All);
        Assert.StartsWith("HTTP/2 404", r.Stdout);
        Assert.Contains("content-type: application/problem+json\r\n", r.Stdout);
        string body = r.Stdout[(r.Stdout.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
        using JsonDocument problem = JsonDocument.Parse(body);
        Assert.Equal(404, problem.RootElement.GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task Curl_sees_only_lowercase_response_header_names()
    {
        Peer.Result r = await Peer.CurlAsync("-k", "-i", "--http2", "--resolve", Resolve, Https("/users/42"));
        Assert.True(r.ExitCode == 0, r.All);
        string head = r.Stdout[..r.Stdout.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
        string[] fields = head.Split("\r\n")[1..];
        Assert.NotEmpty(fields);
        Assert.All(fields, line =>
        {
            string name = line[..line.IndexOf(':')];
            Assert.Equal(name.ToLowerInvariant(), name);
        });
        Assert.Contains("x-custom: Mixed-Case", fields);
    }

    [Fact]
    public async Task Curl_prior_knowledge_speaks_h2c_to_a_plain_listener_that_lists_h2()
    {
        await using TestServer server = await TestServer.StartAsync(TestServer.DefaultConfig(httpProtocols: ["h2", "http/1.1"]));
        Peer.Result h2 = await Peer.CurlAsync("-i", "--http2-prior-knowledge", $"http://127.0.0.1:{server.HttpPort}/");
        Assert.True(h2.ExitCode == 0, h2.All);
        Assert.StartsWith("HTTP/2 200", h2.Stdout);
        Assert.EndsWith("Hello, World!", h2.Stdout);

        // The same listener still speaks HTTP/1.1 to a client without the preface.
        Peer.Result h1 = await Peer.CurlAsync("-i", "--http1.1", $"http://127.0.0.1:{server.HttpPort}/");
        Assert.StartsWith("HTTP/1.1 200", h1.Stdout);
    }

    [Fact]
    public async Task Curl_posts_a_body_larger_than_a_small_configured_stream_window()
    {
        // curl sends the body before it has our SETTINGS (4 KiB stream window on "h2c-small"): RFC 9113 §6.9.2.
        string file = Path.Combine(Path.GetTempPath(), $"h2-small-{Guid.NewGuid():N}.bin");
        await File.WriteAllBytesAsync(file, new byte[200_000]);
        try
        {
            Peer.Result r = await Peer.CurlAsync("--http2-prior-knowledge", "--data-binary", "@" + file, "-w", "|%{http_code}",
                $"http://127.0.0.1:{fixture.H2cSmall.Port}/upload");
            Assert.Equal("uploaded|200", r.Stdout);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task A_plain_listener_without_h2_does_not_take_the_preface()
    {
        await using TestServer server = await TestServer.StartAsync();
        Peer.Result r = await Peer.CurlAsync("-i", "--http2-prior-knowledge", $"http://127.0.0.1:{server.HttpPort}/");
        Assert.False(r.ExitCode == 0 && r.Stdout.StartsWith("HTTP/2", StringComparison.Ordinal), r.All);
    }

    // ---------------- nghttp ----------------

    [Fact]
    public async Task Nghttp_sees_our_settings_and_the_response()
    {
        Peer.Result r = await Peer.RunAsync("nghttp", ["-nv", Https()]);
        Assert.True(r.ExitCode == 0, r.All);
        string settings = Regex.Match(r.Stdout, @"recv SETTINGS frame <length=\d+, flags=0x00, stream_id=0>(\n\s+[^\n]*)+").Value;
        Assert.Contains("[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100]", settings);
        Assert.Contains("[SETTINGS_INITIAL_WINDOW_SIZE(0x04):786432]", settings);
        Assert.Contains("[SETTINGS_MAX_FRAME_SIZE(0x05):16384]", settings);
        Assert.Contains("[SETTINGS_ENABLE_PUSH(0x02):0]", settings);
        Assert.Contains("[SETTINGS_HEADER_TABLE_SIZE(0x01):4096]", settings);
        Assert.Matches(@"\[SETTINGS_MAX_HEADER_LIST_SIZE\(0x06\):\d+\]", settings);
        Assert.Contains("recv WINDOW_UPDATE frame <length=4, flags=0x00, stream_id=0>\n          (window_size_increment=983041)", r.Stdout);
        Assert.Contains("recv SETTINGS frame <length=0, flags=0x01, stream_id=0>", r.Stdout); // our ACK of theirs
        Assert.Matches(@"recv \(stream_id=\d+\) :status: 200", r.Stdout);
        Assert.Matches(@"recv DATA frame <length=13, flags=0x01, stream_id=\d+>", r.Stdout);
        Assert.DoesNotContain("recv GOAWAY", r.Stdout);
        Assert.DoesNotContain("recv RST_STREAM", r.Stdout);
    }

    [Fact]
    public async Task Nghttp_many_requests_with_an_extra_header_all_succeed()
    {
        Peer.Result r = await Peer.RunAsync("nghttp", ["-nv", "-m", "20", "-H", "x-test: nghttp", Https("/users/1")]);
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Equal(20, Regex.Count(r.Stdout, @"recv \(stream_id=\d+\) :status: 200"));
        Assert.Equal(20, Regex.Count(r.Stdout, @"recv DATA frame <length=4, flags=0x01"));
        Assert.DoesNotContain("recv RST_STREAM", r.Stdout);
        Assert.DoesNotContain("recv GOAWAY", r.Stdout);
    }

    [Fact]
    public async Task Nghttp_speaks_h2c_with_prior_knowledge()
    {
        Peer.Result r = await Peer.RunAsync("nghttp", ["-nv", H2c()]);
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Matches(@"recv \(stream_id=\d+\) :status: 200", r.Stdout);
    }

    [Theory]
    [InlineData(16, 16)] // 65,535-byte stream and connection windows
    [InlineData(10, 16)] // 1,023-byte stream windows: over 8,000 WINDOW_UPDATE round trips
    public async Task Nghttp_gets_8_MiB_through_small_windows(int windowBits, int connectionWindowBits)
    {
        Peer.Result r = await Peer.RunAsync("nghttp", ["-w", windowBits.ToString(), "-W", connectionWindowBits.ToString(),
            $"http://127.0.0.1:{fixture.H2cDirect.Port}/8m"], timeout: TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(Http2Fixture.EightMiB.Length, r.Stdout.Length);
        Assert.True(Encoding.ASCII.GetBytes(r.Stdout).AsSpan().SequenceEqual(Http2Fixture.EightMiB), "the body differs");
    }

    [Fact]
    public async Task Nghttp_posts_a_1_MiB_body_that_comes_back_whole()
    {
        // /echo starts its response first and sends the body back as it reads it: both directions flow at once.
        string file = Path.Combine(Path.GetTempPath(), $"h2-echo-{Guid.NewGuid():N}.txt");
        string body = string.Concat(Enumerable.Repeat(Http2Fixture.BigBody, 6))[..(1024 * 1024)];
        await File.WriteAllTextAsync(file, body);
        try
        {
            Peer.Result r = await Peer.RunAsync("nghttp", ["-d", file, $"http://127.0.0.1:{fixture.H2cDirect.Port}/echo"], timeout: TimeSpan.FromSeconds(60));
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Equal(body.Length, r.Stdout.Length);
            Assert.True(body == r.Stdout, "the echoed body differs");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Nghttp_100_concurrent_streams_all_succeed()
    {
        Peer.Result r = await Peer.RunAsync("nghttp", ["-nv", "-m", "100", Https()]);
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Equal(100, Regex.Count(r.Stdout, @"recv \(stream_id=\d+\) :status: 200"));
        Assert.Equal(100, Regex.Count(r.Stdout, @"recv DATA frame <length=13, flags=0x01"));
        Assert.DoesNotContain("recv RST_STREAM", r.Stdout);
        Assert.DoesNotContain("recv GOAWAY", r.Stdout);
    }

    [Fact]
    public async Task Nghttp_post_with_trailers_is_answered()
    {
        string file = Path.Combine(Path.GetTempPath(), $"h2-trailer-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(file, Http2Fixture.BigBody);
        try
        {
            Peer.Result r = await Peer.RunAsync("nghttp", ["-v", "-d", file, "--trailer", "x-checksum: abc", Https("/upload")]);
            Assert.True(r.ExitCode == 0, r.All);
            // The trailers went out as the last HEADERS (END_STREAM | END_HEADERS), after the 200,000-byte body.
            Assert.Matches(@"send HEADERS frame <length=\d+, flags=0x05, stream_id=\d+>\n\s+; END_STREAM \| END_HEADERS\n(\s+\(padlen=\d+\)\n)?\s+x-checksum: abc", r.Stdout);
            Assert.Matches(@"recv \(stream_id=\d+\) :status: 200", r.Stdout);
            Assert.Contains("uploaded", r.Stdout);
            Assert.DoesNotContain("recv RST_STREAM", r.Stdout);
            Assert.DoesNotContain("recv GOAWAY", r.Stdout);
        }
        finally
        {
            File.Delete(file);
        }
    }

    // ---------------- h2load ----------------

    [Fact]
    public async Task H2load_10000_requests_on_16_connections_with_100_streams_each_all_succeed()
    {
        Peer.Result r = await Peer.RunAsync("h2load", ["-n", "10000", "-c", "16", "-m", "100", Https()], timeout: TimeSpan.FromSeconds(90));
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Contains("requests: 10000 total, 10000 started, 10000 done, 10000 succeeded, 0 failed, 0 errored, 0 timeout", r.Stdout);
        Assert.Contains("status codes: 10000 2xx, 0 3xx, 0 4xx, 0 5xx", r.Stdout);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task H2load_5000_requests_on_4_connections_all_succeed(bool tls)
    {
        Peer.Result r = await Peer.RunAsync("h2load", ["-n", "5000", "-c", "4", "-m", "32", tls ? Https() : H2c()], timeout: TimeSpan.FromSeconds(90));
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Contains("requests: 5000 total, 5000 started, 5000 done, 5000 succeeded, 0 failed, 0 errored, 0 timeout", r.Stdout);
        Assert.Contains("status codes: 5000 2xx, 0 3xx, 0 4xx, 0 5xx", r.Stdout);
        Assert.Contains(tls ? "Application protocol: h2" : "Application protocol: h2c", r.Stdout);
    }

    // ---------------- Node's http2 client ----------------

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Node_http2_sends_1000_concurrent_streams_on_one_connection_all_answered(bool tls)
    {
        // Node (nghttp2) queues the streams past our SETTINGS_MAX_CONCURRENT_STREAMS; one it started anyway would come
        // back REFUSED_STREAM and be listed as an error.
        string script = Path.Combine(AppContext.BaseDirectory, "Peers", "h2_node_streams.js");
        Peer.Result r = await Peer.RunAsync("node", [script, tls ? Https() : H2c(), "1000"], timeout: TimeSpan.FromSeconds(90));
        Assert.True(r.ExitCode == 0, r.All);
        JsonElement result = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal(100, result.GetProperty("maxConcurrentStreams").GetInt32());
        Assert.Equal(1000, result.GetProperty("statuses").GetProperty("200").GetInt32());
        Assert.Single(result.GetProperty("statuses").EnumerateObject());
        Assert.Equal(1000, result.GetProperty("sameBody").GetInt32());
        Assert.Equal(0, result.GetProperty("errors").GetArrayLength());
    }

    // ---------------- python3-h2 ----------------

    private Task<JsonElement> PythonAsync(string scenario, bool tls, params string[] args) =>
        PythonAsync(scenario, tls ? fixture.Https.Port : fixture.H2c.Port, tls, args);

    private static async Task<JsonElement> PythonAsync(string scenario, int port, bool tls, params string[] args)
    {
        string script = Path.Combine(AppContext.BaseDirectory, "Peers", "h2_client.py");
        Peer.Result r = await Peer.RunAsync(SystemPython, [script, scenario, "--port", port.ToString(), .. tls ? ["--tls"] : Array.Empty<string>(), .. args],
            timeout: TimeSpan.FromSeconds(90));
        Assert.True(r.ExitCode == 0, $"h2_client.py {scenario} failed:\n{r.All}");
        return JsonDocument.Parse(r.Stdout).RootElement.Clone();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Python_h2_many_concurrent_streams(bool tls)
    {
        JsonElement r = await PythonAsync("concurrent", tls);
        Assert.Equal(100, r.GetProperty("max_concurrent_streams").GetInt32());
        Assert.Equal(300, r.GetProperty("statuses").GetArrayLength());
        Assert.All(r.GetProperty("statuses").EnumerateArray(), s => Assert.Equal(200, s.GetInt32()));
        Assert.Equal(300, r.GetProperty("bodies_ok").GetInt32());
    }

    [Fact]
    public async Task Python_h2_posts_a_body_larger_than_both_windows_within_flow_control()
    {
        // 3 MB: past the 768 KiB stream window and the 1 MiB connection window; h2 never sends beyond a window,
        // so the upload only completes because WINDOW_UPDATE follows the application's reads.
        JsonElement r = await PythonAsync("large-post", tls: true, "--size", "3000000");
        Assert.Equal(200, r.GetProperty("status").GetInt32());
        Assert.Equal("uploaded", r.GetProperty("body").GetString());
        Assert.Equal(786_432, r.GetProperty("initial_window").GetInt32());
        Assert.True(r.GetProperty("stream_window_updates").GetInt32() >= 3, r.ToString());
        Assert.True(r.GetProperty("connection_window_updates").GetInt32() >= 2, r.ToString());
    }

    [Fact]
    public async Task Python_h2_request_trailers_end_the_body()
    {
        JsonElement r = await PythonAsync("trailers", tls: false);
        Assert.Equal(200, r.GetProperty("status").GetInt32());
        Assert.Equal("uploaded", r.GetProperty("body").GetString());
        Assert.True(r.GetProperty("ended").GetBoolean());
    }

    [Fact]
    public async Task Python_h2_ping_is_answered()
    {
        JsonElement r = await PythonAsync("ping", tls: true);
        Assert.Equal("appl1anc", r.GetProperty("ping_acks")[0].GetString());
        Assert.Equal(200, r.GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task Python_h2_header_table_size_0_makes_our_encoder_shrink_and_stop_indexing()
    {
        // hpack raises InvalidTableSizeError if our encoder does not send the size update.
        JsonElement r = await PythonAsync("header-table-size-0", tls: false);
        Assert.All(r.GetProperty("statuses").EnumerateArray(), s => Assert.Equal(200, s.GetInt32()));
        Assert.Equal(0, r.GetProperty("decoder_table_size").GetInt32());
        Assert.Equal(0, r.GetProperty("dynamic_entries").GetInt32());
    }

    [Fact]
    public async Task Python_h2_initial_window_of_10_bytes_is_respected_and_the_body_continues_after_window_update()
    {
        JsonElement r = await PythonAsync("small-window", tls: true, "--window", "10", "--path", "/medium");
        Assert.Equal(200, r.GetProperty("status").GetInt32());
        Assert.Equal(Http2Fixture.MediumBody, r.GetProperty("body").GetString());
        Assert.Equal(10, r.GetProperty("first_frames").EnumerateArray().Sum(f => f.GetInt32()));
        Assert.All(r.GetProperty("frames").EnumerateArray().Skip(1), f => Assert.True(f.GetInt32() <= 100));
    }

    [Theory]
    [InlineData("h2c", 4096)]
    [InlineData("h2c-table", 256)]
    public async Task Python_h2_requests_using_its_dynamic_table_decode_with_the_configured_table_size(string listener, int tableSize)
    {
        // Six 160-byte fields per request, indexed by h2's encoder and referred to by the later requests: the
        // server's decoder must keep the table the client was told about (SETTINGS_HEADER_TABLE_SIZE).
        JsonElement r = await PythonAsync("indexed-headers", fixture.Server.Port(listener), tls: false);
        Assert.All(r.GetProperty("statuses").EnumerateArray(), s => Assert.Equal(200, s.GetInt32()));
        Assert.Equal(tableSize, r.GetProperty("server_header_table_size").GetInt32());
        Assert.Equal(tableSize, r.GetProperty("encoder_table_size").GetInt32());
    }

    [Fact]
    public async Task Python_h2_max_frame_size_changes_are_followed()
    {
        JsonElement r = await PythonAsync("max-frame-size", tls: false, "--frame-size", "65536");
        int[] large = r.GetProperty("large").EnumerateArray().Select(f => f.GetInt32()).ToArray();
        int[] normal = r.GetProperty("default").EnumerateArray().Select(f => f.GetInt32()).ToArray();
        Assert.Equal(200_000, large.Sum());
        Assert.Equal(200_000, normal.Sum());
        Assert.Equal(65_536, large.Max());
        Assert.Equal(16_384, normal.Max());
    }
}

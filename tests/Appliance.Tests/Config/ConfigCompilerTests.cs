using System.Text;
using Appliance.Config;
using Appliance.Hosting;
using Appliance.Tests.Support;

namespace Appliance.Tests.Config;

public sealed class ConfigCompilerTests
{
    private static IReadOnlyList<ConfigError> Errors(string json)
    {
        try
        {
            ApplianceConfig config = ConfigLoader.Parse(Encoding.UTF8.GetBytes(json));
            return ConfigCompiler.Validate(config, Path.GetTempPath());
        }
        catch (ConfigException e)
        {
            return e.Errors;
        }
    }

    private const string Listener = """{ "name": "p", "address": "127.0.0.1:0", "tls": false }""";

    [Fact]
    public void Embedded_default_config_is_valid() =>
        Assert.Empty(ConfigCompiler.Validate(ConfigLoader.Parse(Encoding.UTF8.GetBytes(EmbeddedConfig.Json)), Path.GetTempPath()));

    [Fact]
    public void Test_config_compiles_with_certificates() =>
        Assert.Empty(ConfigCompiler.Validate(ConfigLoader.Parse(Encoding.UTF8.GetBytes(TestServer.DefaultConfig())), Path.GetTempPath()));

    [Theory]
    [InlineData("""{ "listeners": [ { "name": "p", "address": "127.0.0.1:0", "tls": false, "tsl": true } ] }""", "listeners[0].tsl")]
    [InlineData("""{ "listeners": [ { "name": "p", "address": 8080 } ] }""", "listeners[0].address")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "routes": [ { "id": "a", "match": { "path": "/x/{y" }, "direct": {} } ] }""", "routes[0].match.path")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "routes": [ { "id": "a", "direct": {} }, { "id": "b" }, { "id": "c", "direct": {}, "match": { "path": "x" } } ] }""", "routes[2].match.path")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "routes": [ { "id": "a", "direct": {} }, { "id": "a", "direct": {} } ] }""", "routes[1].id")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "routes": [ { "id": "a", "direct": {}, "redirect": { "location": "/" } } ] }""", "routes[0]")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "routes": [ { "id": "a", "redirect": { "status": 200, "location": "/" } } ] }""", "routes[0].redirect.status")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "routes": [ { "id": "a", "match": { "path": "/{x}" }, "redirect": { "location": "/{y}" } } ] }""", "routes[0].redirect.location")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "routes": [ { "id": "a", "match": { "methods": ["GE T"] }, "direct": {} } ] }""", "routes[0].match.methods[0]")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "routes": [ { "id": "a", "match": { "hosts": ["a..b"] }, "direct": {} } ] }""", "routes[0].match.hosts[0]")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "routes": [ { "id": "a", "direct": { "status": 99 } } ] }""", "routes[0].direct.status")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "routes": [ { "id": "a", "direct": { "headers": { "Content-Length": "3" } } } ] }""", "routes[0].direct.headers.Content-Length")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "routes": [ { "id": "a", "tenant": "t", "direct": {} } ] }""", "routes[0].tenant")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "routes": [ { "id": "a", "cluster": "nope" } ] }""", "routes[0].cluster")]
    [InlineData("""{ "listeners": [ { "name": "p", "address": "localhost:80", "tls": false } ] }""", "listeners[0].address")]
    [InlineData("""{ "server": { "socketThreads": 0 }, "listeners": [ """ + Listener + """ ] }""", "server.socketThreads")]
    [InlineData("""{ "server": { "socketThreads": 5000 }, "listeners": [ """ + Listener + """ ] }""", "server.socketThreads")]
    [InlineData("""{ "server": { "socketThreads": "two" }, "listeners": [ """ + Listener + """ ] }""", "server.socketThreads")]
    [InlineData("""{ "server": { "socketEngine": "io_uring" }, "listeners": [ """ + Listener + """ ] }""", "server.socketEngine")]
    [InlineData("""{ "server": { "socketEngine": 1 }, "listeners": [ """ + Listener + """ ] }""", "server.socketEngine")]
    [InlineData("""{ "server": { "ioUring": "yes" }, "listeners": [ """ + Listener + """ ] }""", "server.ioUring")]
    [InlineData("""{ "server": { "ioUring": 1 }, "listeners": [ """ + Listener + """ ] }""", "server.ioUring")]
    [InlineData("""{ "server": { "tlsRecordLayer": "kernel" }, "listeners": [ """ + Listener + """ ] }""", "server.tlsRecordLayer")]
    [InlineData("""{ "server": { "tlsRecordLayer": true }, "listeners": [ """ + Listener + """ ] }""", "server.tlsRecordLayer")]
    [InlineData("""{ "listeners": [ { "name": "p", "address": "127.0.0.1:99999", "tls": false } ] }""", "listeners[0].address")]
    [InlineData("""{ "listeners": [ { "name": "p", "address": "127.0.0.1:0", "tls": true } ] }""", "listeners[0].tls")]
    [InlineData("""{ "listeners": [ { "name": "p", "address": "127.0.0.1:0", "tls": false, "protocols": ["spdy"] } ] }""", "listeners[0].protocols[0]")]
    [InlineData("""{ "listeners": [ { "name": "p", "address": "127.0.0.1:0", "tls": false, "limits": { "keepAliveTimeout": "soon" } } ] }""", "listeners[0].limits.keepAliveTimeout")]
    [InlineData("""{ "listeners": [ { "name": "p", "address": "127.0.0.1:0", "tls": false, "limits": { "maxRequestHeaderCount": 0 } } ] }""", "listeners[0].limits.maxRequestHeaderCount")]
    [InlineData("""{ "listeners": [ { "name": "p", "address": "127.0.0.1:1", "tls": false }, { "name": "p", "address": "127.0.0.1:2", "tls": false } ] }""", "listeners[1].name")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "routes": [ { "id": "a", "direct": {}, "transforms": {} } ] }""", "routes[0].transforms")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "clusters": [ { "id": "c", "destinations": [ { "address": "127.0.0.1:1" } ] } ], "routes": [ { "id": "a", "cluster": "c", "transforms": { "xForwarded": "maybe" } } ] }""", "routes[0].transforms.xForwarded")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "clusters": [ { "id": "c", "destinations": [ { "address": "127.0.0.1:1" } ] } ], "routes": [ { "id": "a", "cluster": "c", "transforms": { "stripPrefix": "api" } } ] }""", "routes[0].transforms.stripPrefix")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "clusters": [ { "id": "c", "destinations": [ { "address": "127.0.0.1:1" } ] } ], "routes": [ { "id": "a", "cluster": "c", "transforms": { "requestHeaders": { "set": { "Host": "x" } } } } ] }""", "routes[0].transforms.requestHeaders.set.Host")]
    [InlineData("""{ "server": { "trustedProxies": [ "nope" ] }, "listeners": [ """ + Listener + """ ] }""", "server.trustedProxies[0]")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "clusters": [ { "id": "c", "destinations": [ { "address": "nohost" } ] } ] }""", "clusters[0].destinations[0].address")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "clusters": [ { "id": "c", "destinations": [ { "address": "127.0.0.1:1" } ], "loadBalancing": "random" } ] }""", "clusters[0].loadBalancing")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "clusters": [ { "id": "c", "destinations": [] } ] }""", "clusters[0].destinations")]
    [InlineData("""{ "listeners": [] }""", "listeners")]
    [InlineData("""{ "listeners": [ """ + Listener + """ ], "certificates": [ { "name": "c", "hosts": ["a"], "certificatePath": "/nonexistent.crt", "keyPath": "/nonexistent.key" } ] }""", "certificates[0].certificatePath")]
    public void Invalid_config_reports_the_json_path(string json, string path)
    {
        IReadOnlyList<ConfigError> errors = Errors(json);
        Assert.Contains(errors, e => e.Path == path);
    }

    [Theory]
    [InlineData("", true)]
    [InlineData(""" "server": { "ioUring": true }, """, true)]
    [InlineData(""" "server": { "ioUring": false }, """, false)]
    public void IoUring_sends_are_on_unless_the_config_turns_them_off(string server, bool expected)
    {
        ApplianceConfig config = ConfigLoader.Parse(Encoding.UTF8.GetBytes("{" + server + """ "listeners": [ """ + Listener + " ] }"));
        Assert.Equal(expected, ConfigCompiler.Compile(config, Path.GetTempPath()).IoUringSends);
    }

    [Theory]
    [InlineData("{")]
    [InlineData("[]")]
    [InlineData("null")]
    [InlineData("{ \"listeners\": [ { \"name\": \"p\" ")]
    [InlineData("\u0000\u0001")]
    public void Malformed_or_truncated_json_is_an_error_not_a_crash(string json) =>
        Assert.NotEmpty(Errors(json));

    [Fact]
    public void All_errors_are_reported_at_once()
    {
        IReadOnlyList<ConfigError> errors = Errors("""{ "listeners": [ { "name": "p", "address": "x", "tls": false } ], "routes": [ { "id": "" }, { "id": "b", "direct": { "status": 1 } } ] }""");
        Assert.True(errors.Count >= 3, string.Join("\n", errors));
    }

    [Theory]
    [InlineData("10s", 10_000)]
    [InlineData("500ms", 500)]
    [InlineData("2m", 120_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("3", 3_000)]
    [InlineData("1.5s", 1_500)]
    public void Durations_parse(string text, int milliseconds)
    {
        Assert.True(Duration.TryParse(text, out TimeSpan value));
        Assert.Equal(milliseconds, value.TotalMilliseconds);
    }

    [Theory]
    [InlineData("")]
    [InlineData("s")]
    [InlineData("-1s")]
    [InlineData("1y")]
    [InlineData("10 seconds")]
    public void Bad_durations_do_not_parse(string text) => Assert.False(Duration.TryParse(text, out _));

    [Fact]
    public async Task Check_config_command_prints_paths_and_exits_1()
    {
        string file = Path.Combine(Path.GetTempPath(), $"bad-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, """{ "listeners": [ { "name": "p", "address": "127.0.0.1:0", "tls": false } ], "routes": [ {}, {}, { "id": "x", "match": { "path": "nope" }, "direct": {} } ] }""");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(1, CheckConfigCommand.Execute([file], stdout, stderr));
        Assert.Contains("routes[2].match.path: must start with '/'", stderr.ToString());

        Peer.Result r = await Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "check-config", file]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("routes[2].match.path:", r.Stderr);
    }

    [Fact]
    public async Task Check_config_command_accepts_a_good_file()
    {
        string file = Path.Combine(Path.GetTempPath(), $"good-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, """{ "listeners": [ { "name": "p", "address": "127.0.0.1:0", "tls": false } ], "routes": [ { "id": "x", "direct": {} } ] }""");
        Assert.Equal(0, CheckConfigCommand.Execute([file], new StringWriter(), new StringWriter()));
    }
}

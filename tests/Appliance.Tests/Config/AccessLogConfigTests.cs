using System.Text;
using Appliance.Config;
using Appliance.Telemetry;

namespace Appliance.Tests.Config;

/// <summary>server.accessLog and routes[].accessLog: defaults, sizes, and every bad value reported with its path.</summary>
public sealed class AccessLogConfigTests
{
    private const string Listener = """{ "name": "p", "address": "127.0.0.1:0", "tls": false }""";

    private static string Config(string accessLog, string route = """{ "id": "a", "direct": {} }""") =>
        $$"""{ "server": { "stateDirectory": "/var/lib/appliance", "accessLog": {{accessLog}} }, "listeners": [ {{Listener}} ], "routes": [ {{route}} ] }""";

    private static IReadOnlyList<ConfigError> Errors(string json)
    {
        try
        {
            return ConfigCompiler.Validate(ConfigLoader.Parse(Encoding.UTF8.GetBytes(json)), Path.GetTempPath());
        }
        catch (ConfigException e)
        {
            return e.Errors;
        }
    }

    private static ConfigSnapshot Compile(string json) =>
        ConfigCompiler.Compile(ConfigLoader.Parse(Encoding.UTF8.GetBytes(json)), Path.GetTempPath(), generateSelfSigned: false);

    [Fact]
    public void Absent_means_no_access_log()
    {
        ConfigSnapshot s = Compile($$"""{ "listeners": [ {{Listener}} ], "routes": [ { "id": "a", "direct": {} } ] }""");
        Assert.Null(s.AccessLog);
    }

    [Fact]
    public void Defaults_are_json_64MiB_10_files_uncompressed_under_the_state_directory()
    {
        ConfigSnapshot s = Compile(Config("""{ "path": "access.log" }"""));
        Assert.Equal(new AccessLogOptions("/var/lib/appliance/access.log", AccessLogFormat.Json, 64L << 20, 10, Lz4: false), s.AccessLog);
    }

    [Fact]
    public void Every_setting_is_read()
    {
        ConfigSnapshot s = Compile(Config("""{ "path": "/var/log/appliance/access.log", "format": "combined", "maxSize": "2KiB", "maxFiles": 3, "compress": "lz4" }"""));
        Assert.Equal(new AccessLogOptions("/var/log/appliance/access.log", AccessLogFormat.Combined, 2048, 3, Lz4: true), s.AccessLog);
    }

    [Fact]
    public void Max_size_may_be_a_json_number_of_bytes()
    {
        ConfigSnapshot s = Compile(Config("""{ "path": "a.log", "maxSize": 1048576 }"""));
        Assert.Equal(1L << 20, s.AccessLog!.MaxSize);
    }

    [Fact]
    public void Route_access_log_false_is_compiled_into_the_route()
    {
        ConfigSnapshot s = Compile(Config("""{ "path": "a.log" }""", """{ "id": "health", "accessLog": false, "direct": {} }, { "id": "b", "match": { "path": "/b" }, "direct": {} }"""));
        Assert.False(s.Routes.Routes.Single(r => r.Id == "health").AccessLog);
        Assert.True(s.Routes.Routes.Single(r => r.Id == "b").AccessLog);
    }

    [Theory]
    [InlineData("""{ }""", "server.accessLog.path")]
    [InlineData("""{ "path": "" }""", "server.accessLog.path")]
    [InlineData("""{ "path": "/var/log/" }""", "server.accessLog.path")]
    [InlineData("""{ "path": "/tmp" }""", "server.accessLog.path")]
    [InlineData("""{ "path": "a.log", "format": "common" }""", "server.accessLog.format")]
    [InlineData("""{ "path": "a.log", "maxSize": "64MB!" }""", "server.accessLog.maxSize")]
    [InlineData("""{ "path": "a.log", "maxSize": "lots" }""", "server.accessLog.maxSize")]
    [InlineData("""{ "path": "a.log", "maxSize": -1 }""", "server.accessLog.maxSize")]
    [InlineData("""{ "path": "a.log", "maxSize": "100" }""", "server.accessLog.maxSize")]
    [InlineData("""{ "path": "a.log", "maxSize": true }""", "server.accessLog.maxSize")]
    [InlineData("""{ "path": "a.log", "maxFiles": 0 }""", "server.accessLog.maxFiles")]
    [InlineData("""{ "path": "a.log", "maxFiles": 1001 }""", "server.accessLog.maxFiles")]
    [InlineData("""{ "path": "a.log", "compress": "gzip" }""", "server.accessLog.compress")]
    [InlineData("""{ "path": "a.log", "rotate": 3 }""", "server.accessLog.rotate")]
    [InlineData("""{ "path": 5 }""", "server.accessLog.path")]
    public void Bad_values_are_reported_with_their_path(string accessLog, string path)
    {
        IReadOnlyList<ConfigError> errors = Errors(Config(accessLog));
        Assert.Contains(errors, e => e.Path == path);
    }

    [Fact]
    public void Route_access_log_must_be_a_boolean()
    {
        IReadOnlyList<ConfigError> errors = Errors(Config("""{ "path": "a.log" }""", """{ "id": "a", "accessLog": "off", "direct": {} }"""));
        Assert.Contains(errors, e => e.Path == "routes[0].accessLog");
    }

    [Theory]
    [InlineData("1048576", 1048576)]
    [InlineData("64MiB", 64L << 20)]
    [InlineData("64M", 64L << 20)]
    [InlineData("512KiB", 512 << 10)]
    [InlineData("512k", 512 << 10)]
    [InlineData("1GiB", 1L << 30)]
    [InlineData("0", 0)]
    [InlineData(" 2 KiB ", 2048)]
    public void Sizes_parse(string text, long bytes)
    {
        Assert.True(ByteSize.TryParse(text, out long value));
        Assert.Equal(bytes, value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("MiB")]
    [InlineData("-1")]
    [InlineData("1.5MiB")]
    [InlineData("1TiB")]
    [InlineData("99999999999GiB")]
    public void Bad_sizes_do_not_parse(string text) => Assert.False(ByteSize.TryParse(text, out _));
}

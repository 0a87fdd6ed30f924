using System.Security.Cryptography;
using System.Text;
using Appliance.Config;
using Appliance.Tls;

namespace Appliance.Tests.Config;

/// <summary>server.sessionTickets: defaults, key files (read whole, checked before they are read), and each bad value with its path.</summary>
public sealed class SessionTicketConfigTests : IDisposable
{
    private const string Listener = """{ "name": "p", "address": "127.0.0.1:0", "tls": false }""";
    private readonly string _dir = Directory.CreateTempSubdirectory("appliance-tickets-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Config(string tickets) =>
        $$"""{ "server": { "sessionTickets": {{tickets}} }, "listeners": [ {{Listener}} ], "routes": [ { "id": "a", "direct": {} } ] }""";

    private ConfigSnapshot Compile(string json) =>
        ConfigCompiler.Compile(ConfigLoader.Parse(Encoding.UTF8.GetBytes(json)), _dir, generateSelfSigned: false);

    private IReadOnlyList<ConfigError> Errors(string json)
    {
        try
        {
            return ConfigCompiler.Validate(ConfigLoader.Parse(Encoding.UTF8.GetBytes(json)), _dir);
        }
        catch (ConfigException e)
        {
            return e.Errors;
        }
    }

    private string Key(string name, int length)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, RandomNumberGenerator.GetBytes(length));
        return path;
    }

    [Fact]
    public void Absent_means_random_keys_rotated_hourly()
    {
        ConfigSnapshot s = Compile($$"""{ "listeners": [ {{Listener}} ], "routes": [ { "id": "a", "direct": {} } ] }""");
        Assert.Equal(SessionTicketSettings.Default, s.SessionTickets);
        Assert.True(s.SessionTickets.Enabled);
        Assert.Equal(20_480, s.SessionTickets.CacheSize);
        Assert.Empty(s.SessionTickets.Secrets);
        Assert.Equal(TimeSpan.FromHours(1), s.SessionTickets.Rotate);
        Assert.True(s.SessionTickets.RenewOnResumption);
        Assert.Equal(1, s.SessionTickets.PerHandshake);
        Assert.Equal(SessionTicketSettings.Default, Compile(Config("{}")).SessionTickets);
    }

    [Fact]
    public void The_cache_size_is_read_and_is_part_of_the_settings()
    {
        ConfigSnapshot s = Compile(Config("""{ "enabled": false, "cacheSize": 5 }"""));
        Assert.Equal(SessionTicketSettings.Default with { Enabled = false, CacheSize = 5 }, s.SessionTickets);
        Assert.NotEqual(SessionTicketSettings.Default, Compile(Config("""{ "cacheSize": 5 }""")).SessionTickets); // an apply that changes it takes effect
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(16)]
    public void Tickets_per_handshake_are_read_and_are_part_of_the_settings(int count)
    {
        ConfigSnapshot s = Compile(Config($$"""{ "perHandshake": {{count}} }"""));
        Assert.Equal(SessionTicketSettings.Default with { PerHandshake = count }, s.SessionTickets);
        Assert.NotEqual(SessionTicketSettings.Default, s.SessionTickets); // an apply that changes it takes effect
    }

    [Fact]
    public void Renewal_on_resumption_can_be_turned_off_and_is_part_of_the_settings()
    {
        ConfigSnapshot s = Compile(Config("""{ "renewOnResumption": false }"""));
        Assert.False(s.SessionTickets.RenewOnResumption);
        Assert.NotEqual(SessionTicketSettings.Default, s.SessionTickets); // an apply that flips it takes effect
        Assert.Equal("server.sessionTickets.renewOnResumption", Assert.Single(Errors(Config("""{ "renewOnResumption": "no" }"""))).Path);
    }

    [Fact]
    public void Key_files_are_read_in_order_and_watched()
    {
        string current = Key("current.key", 80), previous = Key("previous.key", 48);
        ConfigSnapshot s = Compile(Config("""{ "keyFiles": ["current.key", "previous.key"] }"""));
        Assert.Equal([File.ReadAllBytes(current), File.ReadAllBytes(previous)], s.SessionTickets.Secrets);
        Assert.Contains(current, s.TlsFiles.Keys);
        Assert.Contains(previous, s.TlsFiles.Keys);
    }

    [Fact]
    public void Rotation_and_off_are_read()
    {
        Assert.Equal(TimeSpan.FromMinutes(15), Compile(Config("""{ "rotate": "15m" }""")).SessionTickets.Rotate);
        Assert.False(Compile(Config("""{ "enabled": false }""")).SessionTickets.Enabled);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(32)]
    [InlineData(79)]
    [InlineData(81)]
    [InlineData(1 << 20)]
    public void A_key_file_of_the_wrong_size_is_refused_with_its_size(int length)
    {
        Key("bad.key", length);
        ConfigError e = Assert.Single(Errors(Config("""{ "keyFiles": ["bad.key"] }""")));
        Assert.Equal("server.sessionTickets.keyFiles[0]", e.Path);
        Assert.Contains($"holds {length} bytes", e.Message);
    }

    [Theory]
    [InlineData("""{ "keyFiles": ["missing.key"] }""", "server.sessionTickets.keyFiles[0]", "cannot read")]
    [InlineData("""{ "keyFiles": [""] }""", "server.sessionTickets.keyFiles[0]", "file path")]
    [InlineData("""{ "keyFiles": [] }""", "server.sessionTickets.keyFiles", "1 to 16")]
    [InlineData("""{ "keyFiles": ["ok.key"], "rotate": "1h" }""", "server.sessionTickets.rotate", "rewriting the files")]
    [InlineData("""{ "rotate": "30s" }""", "server.sessionTickets.rotate", "between 1m and 24h")]
    [InlineData("""{ "rotate": "2d" }""", "server.sessionTickets.rotate", "")]
    [InlineData("""{ "rotate": "often" }""", "server.sessionTickets.rotate", "duration")]
    [InlineData("""{ "enabled": "yes" }""", "server.sessionTickets.enabled", "")]
    [InlineData("""{ "cacheSize": 0 }""", "server.sessionTickets.cacheSize", "between 1 and 1,000,000")]
    [InlineData("""{ "cacheSize": 1000001 }""", "server.sessionTickets.cacheSize", "between 1 and 1,000,000")]
    [InlineData("""{ "cacheSize": -1 }""", "server.sessionTickets.cacheSize", "")]
    [InlineData("""{ "cacheSize": 1.5 }""", "server.sessionTickets.cacheSize", "")]
    [InlineData("""{ "cacheSize": "big" }""", "server.sessionTickets.cacheSize", "")]
    [InlineData("""{ "cacheSize": 99999999999 }""", "server.sessionTickets.cacheSize", "")]
    [InlineData("""{ "perHandshake": -1 }""", "server.sessionTickets.perHandshake", "between 0 and 16")]
    [InlineData("""{ "perHandshake": 17 }""", "server.sessionTickets.perHandshake", "between 0 and 16")]
    [InlineData("""{ "perHandshake": 2.5 }""", "server.sessionTickets.perHandshake", "")]
    [InlineData("""{ "perHandshake": "two" }""", "server.sessionTickets.perHandshake", "")]
    [InlineData("""{ "perHandshake": 99999999999 }""", "server.sessionTickets.perHandshake", "")]
    [InlineData("""{ "keyfile": "a" }""", "server.sessionTickets.keyfile", "")]
    public void Bad_settings_are_reported_with_their_path(string tickets, string path, string message)
    {
        Key("ok.key", 80);
        IReadOnlyList<ConfigError> errors = Errors(Config(tickets));
        Assert.Contains(errors, e => e.Path == path && e.Message.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public void A_fifo_or_a_device_is_refused_by_its_size_without_being_opened()
    {
        string fifo = Path.Combine(_dir, "fifo.key");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", fifo))
        {
            mkfifo.WaitForExit();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        // Opening a FIFO for reading would wait for a writer for ever: the compile returning at all is the point.
        ConfigError e = Assert.Single(Errors(Config("""{ "keyFiles": ["fifo.key"] }""")));
        Assert.Contains("holds 0 bytes", e.Message);
        Assert.Contains(Errors(Config("""{ "keyFiles": ["/dev/zero"] }""")), x => x.Message.Contains("holds 0 bytes", StringComparison.Ordinal));
    }

    [Fact]
    public void Too_many_key_files_are_refused_before_any_is_read()
    {
        string files = string.Join(", ", Enumerable.Range(0, 17).Select(i => $"\"missing{i}.key\""));
        ConfigError e = Assert.Single(Errors(Config($$"""{ "keyFiles": [{{files}}] }""")));
        Assert.Equal("server.sessionTickets.keyFiles", e.Path);
    }

    [Fact]
    public void A_directory_given_as_a_key_file_is_refused()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "keys"));
        Assert.Contains(Errors(Config("""{ "keyFiles": ["keys"] }""")), e => e.Path == "server.sessionTickets.keyFiles[0]");
    }
}

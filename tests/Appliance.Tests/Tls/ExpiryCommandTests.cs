using Appliance.Tests.Support;
using Appliance.Tls;

namespace Appliance.Tests.Tls;

/// <summary>server.certificateExpiryCommand: the operator's program runs at an expiry warning, told which certificate.</summary>
public sealed class ExpiryCommandTests
{
    [Fact]
    public async Task Runs_the_configured_program_with_the_certificate_in_its_environment()
    {
        string dir = Path.Combine(Path.GetTempPath(), "appliance-expiry-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string crt = Path.Combine(dir, "site.crt"), key = Path.Combine(dir, "site.key"), seen = Path.Combine(dir, "seen.txt");
        SelfSignedCertificate.WritePem(crt, key, ["soon.test"], TimeSpan.FromDays(10)); // within 14 days: warned at start
        string config = Path.Combine(dir, "appliance.json");
        await File.WriteAllTextAsync(config, $$"""
        {
          "server": { "stateDirectory": "state", "certificateExpiryCommand": ["/bin/sh", "-c", "env | grep ^APPLIANCE_CERT_ | sort > {{seen}}"] },
          "admin": { "socketPath": "{{Path.Combine(dir, "admin.sock")}}" },
          "listeners": [ { "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "site" } ],
          "certificates": [ { "name": "site", "hosts": ["soon.test"], "certificatePath": "{{crt}}", "keyPath": "{{key}}" } ],
          "routes": [ { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200 } } ]
        }
        """);
        await using ApplianceProcess app = ApplianceProcess.Start("run", "--config", config);
        await app.WaitForLineAsync(@"certificate site: expiry command /bin/sh ran");
        string[] env = await File.ReadAllLinesAsync(seen);
        Assert.Contains("APPLIANCE_CERT_NAME=site", env);
        Assert.Contains("APPLIANCE_CERT_HOSTS=soon.test", env);
        Assert.Contains(env, l => l is "APPLIANCE_CERT_DAYS_LEFT=9" or "APPLIANCE_CERT_DAYS_LEFT=10");
        Assert.Contains(env, l => l.StartsWith("APPLIANCE_CERT_NOT_AFTER=20", StringComparison.Ordinal) && l.EndsWith('Z'));
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("[\"relative/hook.sh\"]")]
    public async Task Refuses_a_command_without_an_absolute_program(string command)
    {
        string dir = Path.Combine(Path.GetTempPath(), "appliance-expiry-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string config = Path.Combine(dir, "appliance.json");
        await File.WriteAllTextAsync(config, $$"""
        { "server": { "certificateExpiryCommand": {{command}} }, "listeners": [], "routes": [] }
        """);
        Peer.Result r = await Peer.RunAsync("dotnet", [ApplianceProcess.AssemblyPath, "check-config", config]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("server.certificateExpiryCommand: must start with the absolute path of a program", r.All);
    }
}

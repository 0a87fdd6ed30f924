using System.Text.RegularExpressions;
using Appliance.Tests.Support;

namespace Appliance.Tests.Packaging;

/// <summary>Builds the .deb once (packaging/build-deb.sh) and unpacks it for the tests that read it.</summary>
public sealed class DebianPackageFixture : IAsyncLifetime
{
    public string Deb { get; private set; } = "";

    public string Unpacked { get; } = Path.Combine(Path.GetTempPath(), "appliance-deb-" + Guid.NewGuid().ToString("N"));

    public static string RepositoryRoot
    {
        get
        {
            for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "Appliance.sln")))
                {
                    return d.FullName;
                }
            }

            throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
        }
    }

    public async Task InitializeAsync()
    {
        string root = RepositoryRoot;
        var env = new Dictionary<string, string>();
        string published = Path.Combine(root, "artifacts", "publish", "appliance");
        string[] command = SystemdUserManager.ApplianceCommand;
        if (command.Length == 1 && command[0] == published)
        {
            env["PUBLISH_DIR"] = Path.GetDirectoryName(published)!; // test.sh published it just before the tests
        }

        Peer.Result built = await Peer.RunAsync("env", [.. env.Select(kv => $"{kv.Key}={kv.Value}"), Path.Combine(root, "packaging", "build-deb.sh")],
            timeout: TimeSpan.FromMinutes(5));
        Assert.True(built.ExitCode == 0, built.All);
        Deb = built.Stdout.Trim().Split('\n')[^1];
        Directory.CreateDirectory(Unpacked);
        Assert.Equal(0, (await Peer.RunAsync("dpkg-deb", ["-x", Deb, Unpacked])).ExitCode);
        Assert.Equal(0, (await Peer.RunAsync("dpkg-deb", ["-e", Deb, Path.Combine(Unpacked, "DEBIAN")])).ExitCode);
    }

    public Task DisposeAsync()
    {
        Directory.Delete(Unpacked, recursive: true);
        return Task.CompletedTask;
    }
}

/// <summary>
/// Tier A of the packaging checks (packaging/README.md): what the .deb holds, lintian, the unit files as systemd reads
/// them, their security exposure, and the hardened service settings actually running the AOT binary under systemd.
/// </summary>
public sealed class DebianPackageTests(DebianPackageFixture package) : IClassFixture<DebianPackageFixture>
{
    private static readonly string[] Units = ["appliance.service", "appliance.socket", "appliance-http.socket", "appliance-admin.socket"];

    private string Path_(string relative) => Path.Combine(package.Unpacked, relative);

    [Fact]
    public async Task Holds_the_binary_units_config_and_system_files_where_debian_expects_them()
    {
        foreach (string f in (string[])["usr/lib/appliance/appliance", "usr/lib/appliance/libe_sqlite3.so", "etc/appliance/appliance.json",
            "usr/lib/sysusers.d/appliance.conf", "usr/lib/tmpfiles.d/appliance.conf", "usr/lib/modules-load.d/appliance.conf",
            "usr/share/doc/appliance/copyright", "usr/share/doc/appliance/changelog.gz", "usr/share/man/man1/appliance.1.gz",
            .. Units.Select(u => "lib/systemd/system/" + u)])
        {
            Assert.True(File.Exists(Path_(f)), f + " missing");
        }

        Assert.Equal("../lib/appliance/appliance", new FileInfo(Path_("usr/bin/appliance")).LinkTarget);
        Assert.Equal("/etc/appliance/appliance.json", File.ReadAllText(Path_("DEBIAN/conffiles")).Trim());
        Assert.Contains("tls", File.ReadAllLines(Path_("usr/lib/modules-load.d/appliance.conf")));
        string control = File.ReadAllText(Path_("DEBIAN/control"));
        Assert.Matches(@"(?m)^Package: appliance$", control);
        Assert.Matches(@"(?m)^Architecture: amd64$", control);

        // The shipped default config is valid as shipped, checked by the shipped binary.
        Peer.Result check = await Peer.RunAsync(Path_("usr/lib/appliance/appliance"), ["check-config", Path_("etc/appliance/appliance.json")]);
        Assert.True(check.ExitCode == 0, check.All);

        // The maintainer scripts are shell that parses, and use the Debian helpers the issue names.
        foreach (string script in (string[])["postinst", "prerm", "postrm"])
        {
            Assert.Equal(0, (await Peer.RunAsync("sh", ["-n", Path_("DEBIAN/" + script)])).ExitCode);
        }

        string postinst = File.ReadAllText(Path_("DEBIAN/postinst"));
        Assert.Contains("systemd-sysusers", postinst);
        Assert.Contains("systemd-tmpfiles --create", postinst);
        Assert.Contains("deb-systemd-helper", postinst);
    }

    [Fact]
    public async Task Lintian_reports_no_errors_or_warnings()
    {
        Peer.Result r = await Peer.RunAsync("lintian", ["--tag-display-limit", "0", package.Deb], timeout: TimeSpan.FromMinutes(3));
        string[] findings = [.. r.Stdout.Split('\n').Where(l => Regex.IsMatch(l, "^[EW]: "))];
        Assert.True(findings.Length == 0, string.Join("\n", findings));
    }

    [Fact]
    public async Task Systemd_reads_the_units_without_a_single_complaint()
    {
        // systemd-analyze verify exits 0 on unknown keys and bad values; it only prints them. Any output fails.
        string dir = Path.Combine(package.Unpacked, "verify");
        Directory.CreateDirectory(dir);
        foreach (string unit in Units)
        {
            // The binary is where the package put it, here under the unpack folder.
            string text = File.ReadAllText(Path_("lib/systemd/system/" + unit))
                .Replace("/usr/lib/appliance/appliance", Path_("usr/lib/appliance/appliance"), StringComparison.Ordinal);
            File.WriteAllText(Path.Combine(dir, unit), text);
        }

        Peer.Result r = await Peer.RunAsync("systemd-analyze", ["verify", .. Units.Select(u => Path.Combine(dir, u))]);
        Assert.True(r.ExitCode == 0 && r.All.Trim().Length == 0, r.All);
    }

    [Fact]
    public async Task Security_exposure_is_at_most_2()
    {
        Peer.Result r = await Peer.RunAsync("systemd-analyze", ["security", "--offline=true", "--no-pager", Path_("lib/systemd/system/appliance.service")]);
        Match m = Regex.Match(r.All, @"Overall exposure level for appliance\.service: (\d+\.\d)");
        Assert.True(m.Success, r.All);
        double score = double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(score <= 2.0, $"exposure {score}:\n{r.All}");
    }
}

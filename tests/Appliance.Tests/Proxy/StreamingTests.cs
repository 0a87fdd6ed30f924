using System.Text.RegularExpressions;
using Appliance.Tests.Support;

namespace Appliance.Tests.Proxy;

/// <summary>Bodies stream through the proxy with backpressure: 1 GiB each way keeps the gateway's RSS growth small.</summary>
public sealed class StreamingTests : IAsyncLifetime
{
    private const long OneGiB = 1L << 30;
    private NginxUpstream _nginx = null!;
    private ApplianceProcess _app = null!;
    private int _port;
    private string _dir = "";

    public async Task InitializeAsync()
    {
        _nginx = await NginxUpstream.StartAsync();
        // a sparse 1 GiB file: nginx serves it without us writing a gigabyte
        using (var f = new FileStream(Path.Combine(_nginx.Root, "giga.bin"), FileMode.Create))
        {
            f.SetLength(OneGiB);
        }

        _dir = Path.Combine(Path.GetTempPath(), "appliance-stream-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        string config = Path.Combine(_dir, "appliance.json");
        await File.WriteAllTextAsync(config, $$"""
            {
              "admin": { "enabled": false },
              "listeners": [ { "name": "plain", "address": "127.0.0.1:0", "tls": false, "limits": { "maxRequestBodySize": {{2 * OneGiB}} } } ],
              "clusters": [ { "id": "nginx", "destinations": [ { "address": "{{_nginx.Address}}" } ] } ],
              "routes": [ { "id": "all", "match": { "pathPrefix": "/" }, "cluster": "nginx" } ]
            }
            """);
        _app = ApplianceProcess.Start("run", "--config", config);
        _port = int.Parse((await _app.WaitForLineAsync(@"listener plain: http://127\.0\.0\.1:(\d+)")).Groups[1].Value);
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _nginx.DisposeAsync();
    }

    private long Rss(string field)
    {
        string status = File.ReadAllText($"/proc/{_app.Pid}/status");
        return long.Parse(Regex.Match(status, field + @":\s+(\d+) kB").Groups[1].Value) * 1024;
    }

    /// <summary>Peak RSS growth of the gateway process during <paramref name="transfer"/> (VmHWM reset first).</summary>
    private async Task<long> PeakGrowthAsync(Func<Task> transfer)
    {
        await Peer.RunAsync("curl", ["-s", "-o", "/dev/null", $"http://127.0.0.1:{_port}/hello.txt"]); // warm
        long before = Rss("VmRSS");
        await File.WriteAllTextAsync($"/proc/{_app.Pid}/clear_refs", "5"); // reset the high-water mark
        await transfer();
        return Rss("VmHWM") - before;
    }

    [Fact]
    public async Task One_gib_download_streams_with_bounded_memory()
    {
        Peer.Result r = null!;
        long growth = await PeakGrowthAsync(async () =>
            r = await Peer.RunAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{size_download}", $"http://127.0.0.1:{_port}/giga.bin"], timeout: TimeSpan.FromMinutes(3)));
        Assert.Equal(OneGiB.ToString(), r.Stdout);
        Assert.True(growth < 64L * 1024 * 1024, $"RSS grew by {growth / 1024 / 1024} MiB");
    }

    [Fact]
    public async Task One_gib_upload_streams_with_bounded_memory()
    {
        string file = Path.Combine(_dir, "upload.bin");
        using (var f = new FileStream(file, FileMode.Create))
        {
            f.SetLength(OneGiB);
        }

        Peer.Result r = null!;
        long growth = await PeakGrowthAsync(async () =>
            r = await Peer.RunAsync("curl", ["-sS", "-T", file, "-H", "Expect:", $"http://127.0.0.1:{_port}/upload"], timeout: TimeSpan.FromMinutes(3)));
        File.Delete(file);
        Assert.True(r.Stdout == $"len={OneGiB}|te=", r.All);
        Assert.True(growth < 64L * 1024 * 1024, $"RSS grew by {growth / 1024 / 1024} MiB");
    }
}

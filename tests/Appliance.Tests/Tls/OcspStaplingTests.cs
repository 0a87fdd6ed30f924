using System.Diagnostics;
using Appliance.Tests.Support;

namespace Appliance.Tests.Tls;

/// <summary>
/// OCSP stapling against a real responder: a local CA made with openssl, a certificate naming the responder, and
/// `openssl ocsp` answering. Once the appliance has fetched the response, handshakes carry it (openssl s_client -status,
/// and testssl reports "OCSP stapling offered").
/// </summary>
public sealed class OcspStaplingTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-ocsp-" + Guid.NewGuid().ToString("N"));
    private readonly System.Text.StringBuilder _responderLog = new();
    private readonly TaskCompletionSource _asked = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Process _responder = null!;
    private ApplianceProcess _app = null!;
    private int _port;

    private string F(string name) => Path.Combine(_dir, name);

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        int port = NginxUpstream.FreePort();
        await Peer.OpenSslOkAsync("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", F("ca.key"), "-out", F("ca.pem"),
            "-days", "30", "-subj", "/CN=OCSP Test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature");
        await Peer.OpenSslOkAsync("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", F("site.key"), "-out", F("site.csr"), "-subj", "/CN=localhost");
        await File.WriteAllTextAsync(F("ext.cnf"), $"subjectAltName=DNS:localhost\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:{port}\nextendedKeyUsage=serverAuth\n");
        await Peer.OpenSslOkAsync("x509", "-req", "-in", F("site.csr"), "-CA", F("ca.pem"), "-CAkey", F("ca.key"), "-CAcreateserial", "-out", F("site.pem"), "-days", "10", "-extfile", F("ext.cnf"));
        await File.WriteAllTextAsync(F("fullchain.pem"), await File.ReadAllTextAsync(F("site.pem")) + await File.ReadAllTextAsync(F("ca.pem")));
        Peer.Result serial = await Peer.RunAsync("openssl", ["x509", "-in", F("site.pem"), "-noout", "-serial"]);
        string expires = DateTime.UtcNow.AddDays(10).ToString("yyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture) + "Z";
        await File.WriteAllTextAsync(F("index.txt"), $"V\t{expires}\t\t{serial.Stdout.Trim().Split('=')[1]}\tunknown\t/CN=localhost\n");

        var psi = new ProcessStartInfo("openssl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "ocsp", "-port", port.ToString(), "-index", F("index.txt"), "-CA", F("ca.pem"), "-rkey", F("ca.key"), "-rsigner", F("ca.pem") })
        {
            psi.ArgumentList.Add(a);
        }

        _responder = Process.Start(psi)!;
        _responder.OutputDataReceived += (_, e) => OnResponderLine(e.Data);
        _responder.ErrorDataReceived += (_, e) => OnResponderLine(e.Data);
        _responder.BeginOutputReadLine();
        _responder.BeginErrorReadLine();

        await File.WriteAllTextAsync(F("appliance.json"), $$"""
        {
          "server": { "stateDirectory": "state" },
          "admin": { "socketPath": "{{F("admin.sock")}}" },
          "listeners": [ { "name": "https", "address": "127.0.0.1:0", "tls": true, "defaultCertificate": "site" } ],
          "certificates": [ { "name": "site", "hosts": ["localhost"], "certificatePath": "{{F("fullchain.pem")}}", "keyPath": "{{F("site.key")}}" } ],
          "routes": [ { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "body": "hello" } } ]
        }
        """);
        _app = ApplianceProcess.Start("run", "--config", F("appliance.json"));
        _port = int.Parse((await _app.WaitForLineAsync(@"listener https: https://127\.0\.0\.1:(\d+)")).Groups[1].Value);
    }

    private void OnResponderLine(string? line)
    {
        lock (_responderLog)
        {
            _responderLog.AppendLine(line);
        }

        if (line?.Contains("Received request", StringComparison.Ordinal) == true)
        {
            _asked.TrySetResult(); // the appliance asked for its response
        }
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        if (!_responder.HasExited)
        {
            _responder.Kill();
        }

        _responder.Dispose();
    }

    [Fact]
    public async Task Handshakes_carry_a_stapled_ocsp_response_once_fetched()
    {
        // The appliance fetches the response in the background (at load, or at the first handshake).
        string last = (await Peer.OpenSslAsync("", "s_client", "-connect", $"127.0.0.1:{_port}", "-servername", "localhost", "-status")).Stdout;
        await _asked.Task.WaitAsync(TimeSpan.FromSeconds(30));
        for (int i = 0; i < 100 && !last.Contains("OCSP Response Status: successful", StringComparison.Ordinal); i++)
        {
            // Answered: the staple is installed as the response comes in; each handshake checks (bounded).
            Peer.Result probe = await Peer.OpenSslAsync("", "s_client", "-connect", $"127.0.0.1:{_port}", "-servername", "localhost", "-status");
            last = probe.Stdout.Length > 0 ? probe.Stdout : probe.All;
        }

        string responder;
        lock (_responderLog) responder = _responderLog.ToString();
        Assert.True(last.Contains("OCSP Response Status: successful", StringComparison.Ordinal), $"{last}\n--- responder:\n{responder}\n--- index:\n{File.ReadAllText(F("index.txt"))}\n--- appliance:\n{_app.Output}");
        Assert.Contains("Cert Status: good", last);

        // What an auditor's scanner reports: testssl sees the staple on its own handshake.
        Peer.Result scan = await Peer.RunAsync("testssl", ["--warnings", "batch", "--quiet", "--nodns", "none", "--color", "0", "-S",
            $"https://127.0.0.1:{_port}"], timeout: TimeSpan.FromMinutes(5));
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(scan.Stdout, @"OCSP stapling\s+offered"),
            scan.Stdout.Split('\n').FirstOrDefault(l => l.Contains("OCSP stapling", StringComparison.Ordinal)) ?? scan.All);

        // The staple survives a config reload: with the responder gone, the next handshake after a new revision
        // still carries it (the unchanged certificate keeps its context and what it fetched).
        _responder.Kill();
        await _responder.WaitForExitAsync();
        Peer.Result put = await Peer.CurlAsync("--unix-socket", F("admin.sock"), "-X", "PUT", "http://a/v1/routes/extra",
            "-H", "Content-Type: application/json", "--data", "{ \"match\": { \"path\": \"/extra\" }, \"direct\": { \"status\": 204 } }");
        Assert.True(put.ExitCode == 0 && put.Stdout.Contains("\"revision\"", StringComparison.Ordinal), put.All);
        Peer.Result after = await Peer.OpenSslAsync("", "s_client", "-connect", $"127.0.0.1:{_port}", "-servername", "localhost", "-status");
        Assert.True(after.Stdout.Contains("OCSP Response Status: successful", StringComparison.Ordinal), after.All);
    }
}

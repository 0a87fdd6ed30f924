using Appliance.Tests.Support;

namespace Appliance.Tests.Server;

/// <summary>The gateway driven by real clients: curl, openssl s_client and wrk.</summary>
public sealed class RealClientTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private string Url(string host, string path = "/") => $"https://{host}:{_server.HttpsPort}{path}";

    private string Resolve(string host) => $"{host}:{_server.HttpsPort}:127.0.0.1";

    [Fact]
    public async Task Curl_gets_the_direct_response_over_https()
    {
        Peer.Result r = await Peer.CurlAsync("-k", "-i", "--http1.1", "--resolve", Resolve("localhost"), Url("localhost"));
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("HTTP/1.1 200 OK", r.Stdout);
        Assert.EndsWith("Hello, World!", r.Stdout);
        Assert.Contains("content-type: text/plain", r.Stdout, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Curl_sees_the_certificate_of_the_sni_name()
    {
        Peer.Result alpha = await Peer.CurlAsync("-v", "--cacert", TestCertificates.Cert("alpha"), "--resolve", Resolve("alpha.test"), Url("alpha.test"));
        Assert.True(alpha.ExitCode == 0, alpha.All);
        Assert.Equal("alpha", alpha.Stdout);

        Peer.Result wild = await Peer.CurlAsync("--cacert", TestCertificates.Cert("wild"), "--resolve", Resolve("x.wild.test"), Url("x.wild.test"));
        Assert.True(wild.ExitCode == 0, wild.All);

        // The wildcard does not cover the apex: curl refuses the default certificate for it.
        Peer.Result apex = await Peer.CurlAsync("--cacert", TestCertificates.Cert("wild"), "--resolve", Resolve("wild.test"), Url("wild.test"));
        Assert.NotEqual(0, apex.ExitCode);
    }

    [Fact]
    public async Task Curl_chunked_upload_is_accepted()
    {
        string file = Path.Combine(Path.GetTempPath(), $"upload-{Guid.NewGuid():N}.bin");
        await File.WriteAllBytesAsync(file, new byte[200_000]);
        try
        {
            Peer.Result r = await Peer.CurlAsync("-k", "--http1.1", "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + file,
                "--resolve", Resolve("localhost"), "-w", "|%{http_code}", Url("localhost", "/upload"));
            Assert.Equal("uploaded|200", r.Stdout);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Curl_expect_100_continue_gets_continue_then_the_response()
    {
        Peer.Result r = await Peer.CurlAsync("-k", "-v", "--http1.1", "-H", "Expect: 100-continue", "--data-binary", new string('x', 5000),
            "--resolve", Resolve("localhost"), Url("localhost", "/upload"));
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("HTTP/1.1 100 Continue", r.Stderr);
        Assert.Equal("uploaded", r.Stdout);
    }

    [Fact]
    public async Task Curl_follows_the_plain_listener_redirect_to_https()
    {
        await using TestServer redirecting = await TestServer.StartAsync(TestServer.DefaultConfig(redirect: true));
        Peer.Result r = await Peer.CurlAsync("-i", "-X", "POST", $"http://localhost:{redirecting.HttpPort}/a/b?c=d");
        Assert.StartsWith("HTTP/1.1 308 Permanent Redirect", r.Stdout);
        Assert.Contains("Location: https://localhost:8443/a/b?c=d\r\n", r.Stdout);
    }

    [Fact]
    public async Task Openssl_gets_the_right_certificate_per_sni_name()
    {
        foreach ((string sni, string expected) in new[] { ("alpha.test", "alpha.test"), ("x.wild.test", "*.wild.test"), ("unknown.test", "localhost") })
        {
            Peer.Result r = await Peer.OpenSslAsync("", "s_client", "-connect", $"127.0.0.1:{_server.HttpsPort}", "-servername", sni);
            Assert.Contains($"subject=CN = {expected}", r.Stdout.Replace("subject=CN=", "subject=CN = "));
        }

        Peer.Result noSni = await Peer.OpenSslAsync("", "s_client", "-connect", $"127.0.0.1:{_server.HttpsPort}", "-noservername");
        Assert.Contains("CN = localhost", noSni.Stdout.Replace("CN=", "CN = "));
    }

    [Theory]
    [InlineData("-tls1")]
    [InlineData("-tls1_1")]
    public async Task Openssl_legacy_tls_versions_are_refused(string version)
    {
        Peer.Result r = await Peer.OpenSslAsync("", "s_client", "-connect", $"127.0.0.1:{_server.HttpsPort}", version, "-cipher", "DEFAULT@SECLEVEL=0");
        Assert.NotEqual(0, r.ExitCode);
        Assert.DoesNotContain("Cipher is ECDHE", r.Stdout);
    }

    [Theory]
    [InlineData("-tls1_2", "TLSv1.2")]
    [InlineData("-tls1_3", "TLSv1.3")]
    public async Task Openssl_tls12_and_tls13_are_accepted(string flag, string protocol)
    {
        Peer.Result r = await Peer.OpenSslAsync("", "s_client", "-connect", $"127.0.0.1:{_server.HttpsPort}", flag, "-servername", "localhost");
        Assert.Contains($"New, {protocol}, Cipher is ", r.Stdout);
    }

    [Theory]
    [InlineData("h2,http/1.1", "h2")]
    [InlineData("http/1.1", "http/1.1")]
    [InlineData("h2", "h2")]
    public async Task Openssl_alpn_negotiates_the_servers_preference(string offered, string expected)
    {
        Peer.Result r = await Peer.OpenSslAsync("", "s_client", "-connect", $"127.0.0.1:{_server.HttpsPort}", "-servername", "localhost", "-alpn", offered);
        Assert.Contains($"ALPN protocol: {expected}", r.Stdout);
    }

    [Theory]
    [InlineData("-tls1_2", "-cipher", "AES128-SHA", "alert handshake failure")] // no cipher in common
    [InlineData("-tls1_3", "-alpn", "foo", "alert no application protocol")]  // RFC 7301 §3.2
    public async Task Openssl_gets_the_alert_that_ends_a_refused_handshake(string version, string option, string value, string alert)
    {
        // What SslStream writes during a handshake is kept until the socket is read next (so a TLS 1.3 ticket can go
        // with the first answer); the alert of a handshake that fails must still leave before the close.
        Peer.Result r = await Peer.OpenSslAsync("", "s_client", "-connect", $"127.0.0.1:{_server.HttpsPort}", "-servername", "localhost", version, option, value);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(alert, r.All);
    }

    [Fact]
    public async Task Failed_handshake_does_not_disturb_other_connections()
    {
        // garbage instead of a ClientHello
        await using (RawClient garbage = await RawClient.ConnectAsync(_server.EndPoint("https")))
        {
            await garbage.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            Assert.True(await garbage.IsClosedByServerAsync());
        }

        Peer.Result r = await Peer.CurlAsync("-k", "--resolve", Resolve("localhost"), Url("localhost"));
        Assert.Equal("Hello, World!", r.Stdout);
    }

    [Fact]
    public async Task Wrk_run_has_no_socket_errors_and_no_non_2xx()
    {
        Peer.Result r = await Peer.RunAsync("wrk", ["-t1", "-c16", "-d2s", $"https://localhost:{_server.HttpsPort}/"], timeout: TimeSpan.FromSeconds(30));
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Matches(@"\d+ requests in", r.Stdout);
        Assert.DoesNotContain("Socket errors", r.Stdout);
        Assert.DoesNotContain("Non-2xx", r.Stdout);
        long requests = long.Parse(System.Text.RegularExpressions.Regex.Match(r.Stdout, @"(\d+) requests in").Groups[1].Value);
        Assert.True(requests > 100, r.Stdout);
    }
}

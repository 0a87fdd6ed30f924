using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Appliance.Tests.Support;

/// <summary>
/// A real nginx as the upstream, on a loopback port chosen by binding port 0 (nginx cannot report the port it
/// got, so the port is found free first and nginx is retried on another one if it loses the race).
/// </summary>
public sealed class NginxUpstream : IAsyncDisposable
{
    private Process _process;
    private readonly string _conf = "";
    private readonly string _dir = "";

    private NginxUpstream(Process process, int port, string root, string conf, string dir)
    {
        _process = process;
        Port = port;
        Root = root;
        _conf = conf;
        _dir = dir;
    }

    /// <summary>Stops nginx (the port closes: connections are refused).</summary>
    public async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    /// <summary>Starts the same nginx again on the same port.</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        _process.Dispose();
        _process = StartProcess(_conf, _dir);
        if (!await WaitForPortAsync(Port, _process))
        {
            throw new InvalidOperationException("nginx did not restart on port " + Port);
        }
    }

    private static Process StartProcess(string conf, string dir)
    {
        var psi = new ProcessStartInfo("nginx") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in new[] { "-c", conf, "-p", dir })
        {
            psi.ArgumentList.Add(a);
        }

        return Process.Start(psi)!;
    }

    public int Port { get; }

    public string Root { get; }

    public string Address => $"127.0.0.1:{Port}";

    /// <summary>
    /// A TLS listener offering h2 and http/1.1 (certificate: the tests' localhost certificate): "tls-ok sni=NAME" at /,
    /// the files under /files/, and /h2echo describing the request it got.
    /// </summary>
    public int TlsPort { get; private init; }

    public static async Task<NginxUpstream> StartAsync(string? identity = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), "appliance-nginx-" + Guid.NewGuid().ToString("N"));
        string root = Path.Combine(dir, "www");
        Directory.CreateDirectory(root);
        await File.WriteAllTextAsync(Path.Combine(root, "hello.txt"), "Hello from nginx");
        await File.WriteAllTextAsync(Path.Combine(root, "id.txt"), identity ?? "nginx");
        var random = new Random(42);
        byte[] big = new byte[1024 * 1024 + 17];
        random.NextBytes(big);
        await File.WriteAllBytesAsync(Path.Combine(root, "big.bin"), big);
        await File.WriteAllTextAsync(Path.Combine(root, "text.txt"), string.Concat(Enumerable.Repeat("compressible text line\n", 5000)));

        for (int attempt = 0; ; attempt++)
        {
            int port = FreePort();
            int tlsPort = FreePort();
            string conf = Path.Combine(dir, "nginx.conf");
            await File.WriteAllTextAsync(conf, $$"""
                daemon off;
                worker_processes 1;
                pid {{dir}}/nginx.pid;
                error_log {{dir}}/error.log warn;
                events { worker_connections 1024; }
                http {
                  access_log off;
                  client_body_temp_path {{dir}}/body;
                  proxy_temp_path {{dir}}/proxy;
                  fastcgi_temp_path {{dir}}/fastcgi;
                  uwsgi_temp_path {{dir}}/uwsgi;
                  scgi_temp_path {{dir}}/scgi;
                  keepalive_requests 100000;
                  client_max_body_size 4g;
                  default_type text/plain;
                  server {
                    listen 127.0.0.1:{{port}};
                    root {{root}};
                    location = /echo {
                      return 200 "xff=$http_x_forwarded_for|proto=$http_x_forwarded_proto|xfh=$http_x_forwarded_host|via=$http_via|rid=$http_x_request_id|tp=$http_traceparent|secret=$http_x_secret|conn=$http_connection|host=$host|te=$http_te|cr=$connection_requests|custom=$http_x_custom|ua=$http_user_agent|cookie=$http_cookie|fwd=$http_forwarded|uri=$request_uri|apikey=$http_x_api_key|authz=$http_authorization";
                    }
                    location = /upload {
                      client_body_buffer_size 64k;
                      return 200 "len=$content_length|te=$http_transfer_encoding";
                    }
                    location = /close {
                      add_header Connection close;
                      return 200 "closing";
                    }
                    location /gz/ {
                      alias {{root}}/;
                      gzip on; gzip_min_length 1; gzip_types text/plain; gzip_proxied any;
                    }
                  }
                  server {
                    listen 127.0.0.1:{{tlsPort}} ssl http2;
                    ssl_certificate {{TestCertificates.Cert("localhost")}};
                    ssl_certificate_key {{TestCertificates.Key("localhost")}};
                    root {{root}};
                    location / { return 200 "tls-ok sni=$ssl_server_name"; }
                    location /files/ { alias {{root}}/; dav_methods PUT; }
                    location = /h2echo {
                      return 200 "protocol=$server_protocol|te=$http_te|xff=$http_x_forwarded_for|via=$http_via|len=$content_length|method=$request_method|uri=$request_uri";
                    }
                  }
                }
                """);
            Process process = StartProcess(conf, dir);
            if (await WaitForPortAsync(port, process))
            {
                return new NginxUpstream(process, port, root, conf, dir) { TlsPort = tlsPort };
            }

            string log = File.Exists(Path.Combine(dir, "error.log")) ? await File.ReadAllTextAsync(Path.Combine(dir, "error.log")) : "";
            if (!process.HasExited) process.Kill();
            if (attempt == 3)
            {
                throw new InvalidOperationException("nginx did not start: " + log + await process.StandardError.ReadToEndAsync());
            }
        }
    }

    public static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    private static async Task<bool> WaitForPortAsync(int port, Process process)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!cts.IsCancellationRequested && !process.HasExited)
        {
            using var client = new TcpClient();
            try
            {
                await client.ConnectAsync(IPAddress.Loopback, port, cts.Token);
                return true;
            }
            catch (SocketException)
            {
                // not listening yet: try again until nginx listens or exits (bounded by the token)
                await Task.Yield();
            }
        }

        return false;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}

using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Appliance.Config;
using Appliance.Server;
using Appliance.Transport;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Benchmarks;

/// <summary>
/// One proxied request through the whole pipeline: HTTP/1.1 parse, route match, request header rewrite (route
/// transforms, X-Forwarded-*, Via), upstream pool lease, the request over a real loopback socket to an in-process
/// upstream, and the response relayed back. The client side is in-memory pipes; the upstream answers from a fixed
/// buffer with a zero-allocation socket loop, so the allocation column (process-wide) is the gateway's own.
/// One request at a time: the steady state of a keep-alive client connection and a warm upstream connection.
/// </summary>
[MemoryDiagnoser]
public class ProxyBenchmarks
{
    private static readonly byte[] s_request = Encoding.ASCII.GetBytes(
        "GET /api/items?page=2 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n" +
        "Accept-Language: en\r\nConnection: keep-alive\r\nCookie: a=b\r\nX-Request-Id: 123\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n");

    private static readonly byte[] s_upstreamResponse = Encoding.ASCII.GetBytes(
        "HTTP/1.1 200 OK\r\nServer: origin\r\nDate: Sun, 29 Nov 2026 00:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n" +
        "Connection: keep-alive\r\n\r\nHello, World!");

    private readonly ManualResetEventSlim _responded = new(false);
    private Pipe _in = null!;
    private Pipe _out = null!;
    private Socket _listener = null!;
    private long _responseLength;
    private long _received;

    [GlobalSetup]
    public void Setup()
    {
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(16);
        _ = UpstreamAsync();
        int port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        string json = $$"""
        { "listeners": [ { "name": "b", "address": "127.0.0.1:0", "tls": false } ],
          "clusters": [ { "id": "origin", "destinations": [ { "address": "127.0.0.1:{{port}}" } ] } ],
          "routes": [ { "id": "api", "match": { "pathPrefix": "/api" }, "cluster": "origin",
                        "transforms": { "requestHeaders": { "set": { "X-Gateway": "appliance" }, "remove": ["Accept-Language"] },
                                        "responseHeaders": { "set": { "X-Served-By": "appliance" } } } } ] }
        """;
        ConfigSnapshot snapshot = ConfigCompiler.Compile(ConfigLoader.Parse(Encoding.UTF8.GetBytes(json)), Path.GetTempPath());
        ListenerModel model = snapshot.Listeners[0];
        var runtime = new ListenerRuntime("b", new ListenerRuntime.State(null, model.Limits,
            new Routing.RouteDispatcher(() => snapshot.Routes), Http2Enabled: false));
        _in = new Pipe(new PipeOptions(useSynchronizationContext: false));
        _out = new Pipe(new PipeOptions(useSynchronizationContext: false));
        var info = new ConnectionInfo { Id = 1, ListenerName = "b", RemoteEndPoint = new IPEndPoint(IPAddress.Loopback, 40000), LocalEndPoint = null };
        var connection = new Http1Connection(_in.Reader, _out.Writer, new NoTimeouts(), runtime, info, NullLogger.Instance);
        _ = connection.ProcessAsync();
        _ = ClientReaderAsync();

        // The first response tells how long every response is.
        _responseLength = long.MaxValue;
        _in.Writer.Write(s_request);
        _ = _in.Writer.FlushAsync();
        SpinWait.SpinUntil(() => Volatile.Read(ref _received) > 0, 5000);
        Thread.Sleep(200); // setup only: let the first response arrive whole before measuring its length
        _responseLength = Interlocked.Exchange(ref _received, 0);
        if (_responseLength < 100)
        {
            throw new InvalidOperationException($"the proxied request failed ({_responseLength} bytes)");
        }

        _responded.Reset();
    }

    [GlobalCleanup]
    public void Cleanup() => _listener.Dispose();

    [Benchmark]
    public long ProxiedRequest()
    {
        _in.Writer.Write(s_request);
        _ = _in.Writer.FlushAsync();
        _responded.Wait();
        _responded.Reset();
        return Interlocked.Exchange(ref _received, 0);
    }

    /// <summary>Counts response bytes; signals when a whole response is in.</summary>
    private async Task ClientReaderAsync()
    {
        while (true)
        {
            ReadResult r = await _out.Reader.ReadAsync();
            long n = r.Buffer.Length;
            _out.Reader.AdvanceTo(r.Buffer.End);
            if (Interlocked.Add(ref _received, n) >= _responseLength)
            {
                _responded.Set();
            }

            if (r.IsCompleted)
            {
                return;
            }
        }
    }

    /// <summary>The origin: reads a request head, answers the fixed response; Socket's ValueTask calls reuse their event args.</summary>
    private async Task UpstreamAsync()
    {
        byte[] buffer = new byte[16384];
        while (true)
        {
            Socket s = await _listener.AcceptAsync();
            s.NoDelay = true;
            int filled = 0;
            while (true)
            {
                int n = await s.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None);
                if (n == 0)
                {
                    break;
                }

                filled += n;
                int end = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8);
                if (end >= 0)
                {
                    filled = 0; // one request at a time, no body
                    await s.SendAsync(s_upstreamResponse.AsMemory(), SocketFlags.None);
                }
            }

            s.Dispose();
        }
    }

    private sealed class NoTimeouts : TrackedConnection
    {
        protected override void OnTimeout()
        {
        }

        public override void RequestClose()
        {
        }

        public override void Abort(string reason)
        {
        }
    }
}

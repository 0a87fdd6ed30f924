using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Appliance.Config;
using Appliance.Server;
using Appliance.Transport;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Benchmarks;

/// <summary>
/// The whole HTTP/1.1 keep-alive path — parse, route, direct handler, response writer — over in-memory pipes:
/// one request in, one response out per operation. The allocation column proves the steady state allocates nothing.
/// </summary>
[MemoryDiagnoser]
public class Http1ConnectionBenchmarks
{
    private static readonly byte[] s_request = Encoding.ASCII.GetBytes(
        "GET /hello HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n" +
        "Accept-Language: en\r\nConnection: keep-alive\r\nCookie: a=b\r\nReferer: https://localhost/\r\n" +
        "Cache-Control: no-cache\r\nX-Request-Id: 123\r\n\r\n");

    private Pipe _in = null!;
    private Pipe _out = null!;

    [GlobalSetup]
    public void Setup()
    {
        const string json = """
        { "listeners": [ { "name": "b", "address": "127.0.0.1:0", "tls": false } ],
          "routes": [ { "id": "hello", "match": { "pathPrefix": "/" }, "direct": { "status": 200, "contentType": "text/plain", "body": "Hello, World!" } } ] }
        """;
        ConfigSnapshot snapshot = ConfigCompiler.Compile(ConfigLoader.Parse(Encoding.UTF8.GetBytes(json)), Path.GetTempPath());
        ListenerModel model = snapshot.Listeners[0];
        var runtime = new ListenerRuntime("b", new ListenerRuntime.State(null, model.Limits,
            new Routing.RouteDispatcher(() => snapshot.Routes), Http2Enabled: false));
        _in = new Pipe(new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false));
        _out = new Pipe(new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false));
        var info = new ConnectionInfo { Id = 1, ListenerName = "b", RemoteEndPoint = null, LocalEndPoint = null };
        var connection = new Http1Connection(_in.Reader, _out.Writer, new NoTimeouts(), runtime, info, NullLogger.Instance);
        _ = connection.ProcessAsync();
        long first = KeepAliveRequest();
        if (first < 100)
        {
            throw new InvalidOperationException($"no response came out inline ({first} bytes)");
        }
    }

    [Benchmark]
    public long KeepAliveRequest()
    {
        _in.Writer.Write(s_request);
        _ = _in.Writer.FlushAsync();
        // The response was written and flushed inline; take it out.
        _out.Reader.TryRead(out ReadResult result);
        long length = result.Buffer.Length;
        _out.Reader.AdvanceTo(result.Buffer.End);
        return length;
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

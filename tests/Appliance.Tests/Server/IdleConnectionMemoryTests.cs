using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Appliance.Config;
using Appliance.Server;
using Appliance.Transport;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Tests.Server;

/// <summary>
/// What an idle keep-alive connection keeps between requests: no header buffers (they go back to the pool while it
/// waits, and the next request rents anew). A real Http1Connection over in-memory pipes with inline schedulers, so a
/// request written in is answered before the write returns.
/// </summary>
public sealed class IdleConnectionMemoryTests
{
    private const string Config = """
    {
      "listeners": [ { "name": "h", "address": "127.0.0.1:0", "tls": false } ],
      "routes": [ { "id": "hello", "match": { "path": "/" }, "direct": { "status": 200, "body": "Hello", "headers": { "x-a": "1" } } } ]
    }
    """;

    private sealed class Connection
    {
        private readonly Pipe _in;
        private readonly Pipe _out;

        public Connection()
        {
            ConfigSnapshot snapshot = ConfigCompiler.Compile(ConfigLoader.Parse(Encoding.UTF8.GetBytes(Config)), Path.GetTempPath(), generateSelfSigned: false);
            var runtime = new ListenerRuntime("h", new ListenerRuntime.State(null, snapshot.Listeners[0].Limits,
                new Appliance.Routing.RouteDispatcher(() => snapshot.Routes), Http2Enabled: false));
            var options = new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false);
            _in = new Pipe(options);
            _out = new Pipe(options);
            var info = new ConnectionInfo { Id = 1, ListenerName = "h", RemoteEndPoint = null, LocalEndPoint = null };
            Http1 = new Http1Connection(_in.Reader, _out.Writer, new NoTimeouts(), runtime, info, NullLogger.Instance);
            _ = Http1.ProcessAsync();
        }

        public Http1Connection Http1 { get; }

        public string RoundTrip(string request)
        {
            _in.Writer.Write(Encoding.ASCII.GetBytes(request));
            _ = _in.Writer.FlushAsync();
            Assert.True(_out.Reader.TryRead(out ReadResult result));
            string response = Encoding.ASCII.GetString(result.Buffer.ToArray());
            _out.Reader.AdvanceTo(result.Buffer.End);
            return response;
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

    [Fact]
    public void An_idle_keep_alive_connection_holds_no_header_buffers_and_the_next_request_is_served_alike()
    {
        var connection = new Connection();
        RequestContext context = connection.Http1.Context;
        for (int i = 0; i < 3; i++)
        {
            string response = connection.RoundTrip("GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + new string('v', 3000) + "\r\n\r\n");
            Assert.StartsWith("HTTP/1.1 200 OK\r\n", response);
            Assert.Contains("\r\nx-a: 1\r\n", response, StringComparison.OrdinalIgnoreCase);
            Assert.EndsWith("\r\n\r\nHello", response);
            Assert.False(context.RequestHeaders.HoldsBuffers);
            Assert.False(context.ResponseHeaders.HoldsBuffers);
        }
    }

    [Fact]
    public void Pipelined_requests_are_all_answered_and_the_connection_then_holds_no_header_buffers()
    {
        var connection = new Connection();
        string response = connection.RoundTrip(string.Concat(Enumerable.Repeat("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 3)));
        Assert.Equal(3, response.Split("HTTP/1.1 200 OK\r\n").Length - 1);
        Assert.False(connection.Http1.Context.RequestHeaders.HoldsBuffers);
    }
}

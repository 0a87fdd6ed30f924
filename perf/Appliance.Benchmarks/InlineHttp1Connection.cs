using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Appliance.Config;
using Appliance.Server;
using Appliance.Transport;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Benchmarks;

/// <summary>
/// A real <see cref="Http1Connection"/> over in-memory pipes with inline schedulers, serving the routes of a config:
/// a request written in is parsed, routed and answered before the write returns, so one round trip is one call.
/// </summary>
internal sealed class InlineHttp1Connection
{
    private readonly Pipe _in;
    private readonly Pipe _out;

    public InlineHttp1Connection(string configJson)
    {
        ConfigSnapshot snapshot = ConfigCompiler.Compile(ConfigLoader.Parse(Encoding.UTF8.GetBytes(configJson)), Path.GetTempPath());
        var runtime = new ListenerRuntime("b", new ListenerRuntime.State(null, snapshot.Listeners[0].Limits,
            new Routing.RouteDispatcher(() => snapshot.Routes), Http2Enabled: false));
        var options = new PipeOptions(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false);
        _in = new Pipe(options);
        _out = new Pipe(options);
        var info = new ConnectionInfo { Id = 1, ListenerName = "b", RemoteEndPoint = null, LocalEndPoint = null };
        var connection = new Http1Connection(_in.Reader, _out.Writer, new NoTimeouts(), runtime, info, NullLogger.Instance);
        _ = connection.ProcessAsync();
    }

    /// <summary>Writes the request and takes out what came back; returns its length in bytes.</summary>
    public long RoundTrip(byte[] request)
    {
        _in.Writer.Write(request);
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

using System.Net;
using System.Text;
using Appliance.Protocol.Headers;
using Appliance.Server;

namespace Appliance.Tests.Server;

/// <summary>
/// The pool HTTP/1.1 connections take request contexts from while a request is read or answered. Each test runs on a
/// thread of its own, whose part of the pool no other test touches.
/// </summary>
public sealed class RequestContextPoolTests
{
    private static ConnectionInfo Connection(long id) =>
        new() { Id = id, ListenerName = "l", RemoteEndPoint = new IPEndPoint(IPAddress.Loopback, 1), LocalEndPoint = null };

    private static void OnOwnThread(Action test)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                test();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            throw new Xunit.Sdk.XunitException("failed on its thread: " + failure);
        }
    }

    [Fact]
    public void A_rented_context_is_reset_and_bound_to_its_connection_and_sink() => OnOwnThread(() =>
    {
        ConnectionInfo connection = Connection(7);
        var sink = new NullSink();
        RequestContext c = RequestContextPool.Rent(connection, sink);
        Assert.Same(connection, c.Connection);
        Assert.Same(sink, c.Sink);
        Assert.Equal(Appliance.Protocol.Http1.HttpMethod.Custom, c.Method);
        Assert.Equal(200, c.StatusCode);
        Assert.Equal(0, c.RequestHeaders.Count);
        Assert.Equal(-1, c.ResponseContentLength);
    });

    [Fact]
    public void A_context_given_back_serves_the_next_connection_and_lets_go_of_the_last() => OnOwnThread(() =>
    {
        ConnectionInfo first = Connection(1), second = Connection(2);
        var sink1 = new NullSink();
        var sink2 = new NullSink();
        RequestContext c = RequestContextPool.Rent(first, sink1);
        c.SetTarget("/first?x=1"u8);
        c.RequestHeaders.Add(KnownHeader.None, "x-first"u8, "1"u8);
        c.ResponseHeaders.Add(KnownHeader.ContentType, "Content-Type"u8, "text/plain"u8);
        c.StatusCode = 404;
        c.Reset(); // as the connection does before it gives a context back
        RequestContextPool.Return(c);
        Assert.Null(c.Connection); // the pool keeps no connection alive
        Assert.Null(c.Sink);

        RequestContext again = RequestContextPool.Rent(second, sink2);
        Assert.Same(c, again); // this thread's own part of the pool: no allocation, no lock
        Assert.Same(second, again.Connection);
        Assert.Same(sink2, again.Sink);
        Assert.Equal(0, again.RequestHeaders.Count);
        Assert.Equal(0, again.ResponseHeaders.Count);
        Assert.Equal(200, again.StatusCode);
        Assert.Equal(0, again.RawTarget.Length);
    });

    [Fact]
    public void More_contexts_than_a_thread_keeps_go_to_the_shared_part_and_all_come_back_distinct() => OnOwnThread(() =>
    {
        var sink = new NullSink();
        RequestContext[] rented = [.. Enumerable.Range(0, 12).Select(i => RequestContextPool.Rent(Connection(i), sink))];
        foreach (RequestContext c in rented)
        {
            RequestContextPool.Return(c);
        }

        // Other tests' threads share the shared part, so which contexts come back from it is theirs to change; what
        // holds is that none is handed out twice and each is bound to its new connection.
        RequestContext[] again = [.. Enumerable.Range(100, 12).Select(i => RequestContextPool.Rent(Connection(i), sink))];
        Assert.Equal(12, again.Distinct().Count());
        Assert.All(again.Select((c, i) => (c, i)), p => Assert.Equal(100 + p.i, p.c.Connection.Id));
        Assert.All(rented[..4], c => Assert.Contains(c, again)); // the first given back stayed with this thread
    });

    private sealed class NullSink : ResponseSink
    {
        public override ValueTask WriteAsync(RequestContext context, ReadOnlyMemory<byte> data, bool flush, CancellationToken cancellationToken) => default;

        public override ValueTask FlushAsync(RequestContext context, CancellationToken cancellationToken) => default;

        public override ValueTask CompleteAsync(RequestContext context) => default;

        public override ValueTask SendContinueAsync(RequestContext context) => default;

        public override ValueTask<RequestBody> AcceptUpgradeAsync(RequestContext context) => throw new NotSupportedException();
    }
}

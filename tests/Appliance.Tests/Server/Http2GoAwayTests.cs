using System.Net;
using Appliance.Protocol.Http2;
using Appliance.Server;
using Appliance.Tests.Support;
using Appliance.Transport;

namespace Appliance.Tests.Server;

/// <summary>
/// RFC 9113 §6.8: after the client's GOAWAY the server finishes the streams it has, then closes the connection, also
/// when the last of them ends while the read loop is already waiting for more frames (a handler answering later). A
/// code-built h2c listener whose handler answers only when the test says so.
/// </summary>
public sealed class Http2GoAwayTests : IAsyncLifetime
{
    private readonly ConnectionRegistry _registry = new(period: TimeSpan.FromHours(1));
    private readonly TaskCompletionSource _answer = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private SocketListener _listener = null!;

    public Task InitializeAsync()
    {
        var runtime = new ListenerRuntime("goaway", new ListenerRuntime.State(null, new ServerLimits(), new AnswerWhenTold(_answer.Task), Http2Enabled: true));
        _listener = CodeListener.Start(runtime, _registry);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _answer.TrySetResult();
        await _listener.DisposeAsync();
        _registry.Dispose();
    }

    private sealed class AnswerWhenTold(Task told) : IRequestDispatcher
    {
        public async ValueTask DispatchAsync(RequestContext context)
        {
            await told;
            await context.RespondAsync(200, "text/plain"u8, "late"u8.ToArray());
        }
    }

    [Fact]
    public async Task The_connection_closes_when_the_last_stream_ends_after_the_client_GOAWAY_was_read()
    {
        await using RawH2Client client = await RawH2Client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _listener.Port), tls: false);
        await client.HandshakeAsync();
        await client.SendGetAsync(1);
        client.WriteGoAway(1, Http2ErrorCode.NoError);
        await client.SendPingAsync(42);

        // The PING ACK means the server has read the GOAWAY and gone back to waiting for frames, the stream still open.
        await client.ExpectAsync("PING ACK", f => f.Type == Http2FrameType.Ping && f.Has(Http2FrameFlags.Ack),
            fail: f => f.Type == Http2FrameType.GoAway);

        _answer.SetResult();
        H2Response response = await client.ReadResponseAsync(1, windowUpdates: false); // nothing more from the client to wake the server
        Assert.Equal("late", response.BodyText);
        await client.ExpectConnectionClosedAsync();
    }
}

using System.Net;
using System.Text.Json;
using Appliance.Protocol.Http2;
using Appliance.Server;
using Appliance.Telemetry;
using Appliance.Tests.Support;
using Appliance.Transport;

namespace Appliance.Tests.Server;

/// <summary>
/// nginx's 499 on HTTP/2: a stream whose client closed the connection before its answer went out is logged 499, also
/// while the connection drains after our GOAWAY; a stream cut off when we close the connection ourselves (the
/// shutdown's deadline) is not the client's doing. A code-built h2c listener with an access log, whose handler answers
/// only once the request is aborted (its answer can then never be sent), or at once with more than the stream window.
/// </summary>
public sealed class Http2ClientLeftTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private readonly ConnectionRegistry _registry = new(period: TimeSpan.FromHours(1));
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("appliance-h2-left-");
    private readonly AccessLog _log = new();
    private readonly AnswerWhenAborted _handler = new();
    private SocketListener _listener = null!;

    private string LogPath => Path.Combine(_dir.FullName, "access.log");

    public Task InitializeAsync()
    {
        _log.Configure(new AccessLogOptions(LogPath, AccessLogFormat.Json, AccessLogOptions.DefaultMaxSize, 2, Lz4: false));
        var runtime = new ListenerRuntime("left", new ListenerRuntime.State(null, new ServerLimits(), _handler, Http2Enabled: true, AccessLog: _log));
        _listener = CodeListener.Start(runtime, _registry);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _listener.DisposeAsync();
        _registry.Dispose();
        await _log.DisposeAsync();
        _dir.Delete(recursive: true);
    }

    private sealed class AnswerWhenAborted : IRequestDispatcher
    {
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async ValueTask DispatchAsync(RequestContext context)
        {
            if (context.PathString == "/big")
            {
                // The whole body in one last write, more than the client's stream window (65,535): it waits for a
                // WINDOW_UPDATE that never comes, END_STREAM not yet sent.
                await context.RespondAsync(200, "text/plain"u8, new byte[200_000]);
                return;
            }

            var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (context.RequestAborted.Register(() => aborted.TrySetResult()))
            {
                Started.TrySetResult();
                await aborted.Task;
            }

            await context.RespondAsync(200, "text/plain"u8, "too late"u8.ToArray()); // fails: the stream is gone
        }
    }

    [Fact]
    public async Task A_client_that_closes_the_connection_while_it_drains_is_logged_499()
    {
        RawH2Client client = await RawH2Client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _listener.Port), tls: false);
        await using (client)
        {
            await client.HandshakeAsync();
            await client.SendGetAsync(1);
            await _handler.Started.Task.WaitAsync(Bound);

            _registry.RequestCloseAll(); // a graceful drain: GOAWAY, the stream may still finish
            await client.ExpectGoAwayAsync(Http2ErrorCode.NoError);
        } // the client leaves without its answer

        Assert.Equal(499, (await LoggedStatusAsync()));
    }

    [Fact]
    public async Task A_client_that_leaves_while_the_last_write_waits_for_its_window_is_logged_499()
    {
        RawH2Client client = await RawH2Client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _listener.Port), tls: false);
        await using (client)
        {
            await client.HandshakeAsync();
            await client.SendGetAsync(1, "/big");
            int received = 0;
            while (received < 65_535) // the stream's initial window: then the server waits for a WINDOW_UPDATE
            {
                H2Frame data = await client.ExpectAsync("DATA on stream 1", f => f.Type == Http2FrameType.Data && f.StreamId == 1,
                    fail: f => f.Type is Http2FrameType.RstStream or Http2FrameType.GoAway);
                Assert.False(data.Has(Http2FrameFlags.EndStream));
                received += data.Payload.Length;
            }
        } // the client leaves with most of the body unsent

        Assert.Equal(499, await LoggedStatusAsync());
    }

    [Fact]
    public async Task A_stream_cut_off_by_the_shutdown_deadline_is_not_logged_499()
    {
        await using RawH2Client client = await RawH2Client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _listener.Port), tls: false);
        await client.HandshakeAsync();
        await client.SendGetAsync(1);
        await _handler.Started.Task.WaitAsync(Bound);

        using var passed = new CancellationTokenSource();
        passed.Cancel();
        await _registry.DrainAsync(passed.Token); // the deadline has passed: every connection is closed by us at once
        await client.ExpectConnectionClosedAsync();

        Assert.NotEqual(499, await LoggedStatusAsync());
    }

    /// <summary>The status of the one line logged, once the stream has finished (bounded wait).</summary>
    private async Task<int> LoggedStatusAsync()
    {
        using var deadline = new CancellationTokenSource(Bound);
        while (true)
        {
            await _log.FlushAsync();
            string text = File.Exists(LogPath) ? await File.ReadAllTextAsync(LogPath) : "";
            string[] lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (lines.Length > 0)
            {
                Assert.Single(lines);
                return JsonDocument.Parse(lines[0]).RootElement.GetProperty("status").GetInt32();
            }

            await Task.Yield();
            deadline.Token.ThrowIfCancellationRequested();
        }
    }
}

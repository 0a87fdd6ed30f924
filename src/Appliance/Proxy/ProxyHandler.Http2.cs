using System.Buffers;
using System.IO.Pipelines;
using Appliance.Protocol.Headers;
using Appliance.Server;
using Appliance.Telemetry;
using Microsoft.Extensions.Logging;

namespace Appliance.Proxy;

/// <summary>
/// Forwarding to an HTTP/2 cluster: each request is a stream on a shared connection. The request body is sent
/// while the response is read (full duplex, as gRPC streaming needs), response DATA is flushed to the client as
/// it arrives, and trailers pass through end to end.
/// </summary>
public sealed partial class ProxyHandler
{
    private async ValueTask HandleHttp2Async(RequestContext context, DestinationModel destination, CancellationTokenSource? total)
    {
        ulong tried = _cluster.Bit(destination);
        bool retrying = false;
        try
        {
            while (true)
            {
                Http2UpstreamConnection? connection;
                context.UpstreamAddress = destination.Address;
                try
                {
                    connection = await destination.Http2Pool!.RentAsync(CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception e) when (e is System.Net.Sockets.SocketException or TimeoutException or OperationCanceledException or IOException)
                {
                    if (ConnectFailed(destination, e, ref tried, ref retrying) is { } next)
                    {
                        destination = next;
                        continue;
                    }

                    await ConnectProblemAsync(context, e).ConfigureAwait(false);
                    return;
                }

                if (connection is null)
                {
                    LimitCounters.Increment("upstream_max_connections");
                    await ProblemAsync(context, 503, "the upstream is at its connection and stream limit").ConfigureAwait(false);
                    return;
                }

                destination.Begin();
                Outcome outcome;
                try
                {
                    outcome = await ForwardHttp2Async(context, connection, destination, total).ConfigureAwait(false);
                }
                finally
                {
                    destination.End();
                }

                if (outcome == Outcome.StaleConnection)
                {
                    // Refused before processing (REFUSED_STREAM, GOAWAY, connection lost before any answer): RFC 9113
                    // §8.7 allows a retry whatever the method, as long as no request body was taken from the client.
                    ReportHealth(destination, failed: true);
                    if (_cluster.PickNext(ref tried, ref retrying) is { } next)
                    {
                        destination = next;
                        continue;
                    }

                    await ProblemAsync(context, 502, "the upstream refused the request").ConfigureAwait(false);
                    return;
                }

                ReportHealth(destination, failed: outcome == Outcome.Broken || context.StatusCode >= _cluster.Passive.FailureStatus);
                return;
            }
        }
        finally
        {
            if (retrying)
            {
                _cluster.EndRetry();
            }
        }
    }

    private async ValueTask<Outcome> ForwardHttp2Async(RequestContext context, Http2UpstreamConnection connection, DestinationModel destination,
        CancellationTokenSource? total)
    {
        long sent = Transport.LoopClock.Timestamp;
        context.ResponseHeaders.Clear();
        var stream = new Http2UpstreamStream(context.ResponseHeaders, context.ResponseTrailers);
        RequestBody body = context.Body;
        bool hasBody = body is not EmptyRequestBody && !(body.IsComplete && body.Length == 0);
        try
        {
            connection.StartRequest(stream, context, _transforms, endStream: !hasBody);
        }
        catch (IOException)
        {
            return Outcome.StaleConnection;
        }

        using var cancel = new CancellationTokenSource();
        // timeouts.total resets the stream: whatever waits on it fails, and the answer below is 504.
        using CancellationTokenRegistration deadline = total is null ? default
            : total.Token.UnsafeRegister(static s =>
            {
                (Http2UpstreamConnection c, Http2UpstreamStream st) = ((Http2UpstreamConnection, Http2UpstreamStream))s!;
                c.Cancel(st, "timeouts.total");
            }, (connection, stream));
        Task pump = hasBody ? PumpRequestBodyAsync(body, connection, stream, cancel.Token) : Task.CompletedTask;
        try
        {
            try
            {
                await stream.Head.WaitAsync(_cluster.Timeouts.ResponseHeaders).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                LimitCounters.Increment("upstream_response_timeout");
                await ProblemAsync(context, 504, "the upstream did not answer in time").ConfigureAwait(false);
                return Outcome.Broken;
            }
            catch (Http2StreamRefusedException e)
            {
                // Unprocessed upstream: the request can go elsewhere unchanged if none of its body was taken yet.
                cancel.Cancel();
                await Task.WhenAny(pump).ConfigureAwait(false);
                context.ResponseHeaders.Clear();
                return stream.RequestBodyStarted ? await FailAsync(e.Message).ConfigureAwait(false) : Outcome.StaleConnection;
            }
            catch (IOException e)
            {
                return await FailAsync(e.Message).ConfigureAwait(false);
            }

            long headerTicks = Math.Max(1, Transport.LoopClock.ArrivedSince(sent) - sent);
            destination.RecordLatency(headerTicks);
            context.UpstreamStatus = stream.Status;
            context.UpstreamHeaderTicks = headerTicks;
            StripHopByHop(context.ResponseHeaders);
            ApplyResponseTransforms(context.ResponseHeaders, _transforms);
            context.StatusCode = stream.Status;
            if (stream.ExpectedLength >= 0 && context.Method != Appliance.Protocol.Http1.HttpMethod.Head)
            {
                context.ResponseContentLength = stream.ExpectedLength;
            }

            context.ResponseHeaders.Remove(KnownHeader.ContentLength);
            try
            {
                await CopyHttp2BodyAsync(context, connection, stream).ConfigureAwait(false);
            }
            catch (IOException e) when (total is { IsCancellationRequested: true })
            {
                throw new IOException("the upstream exchange exceeded timeouts.total", e);
            }
            catch (IOException e)
            {
                // Mid-body failure: the status is out, so only an aborted client connection (or stream) can say so.
                throw new IOException("the upstream response was cut short", e);
            }

            return Outcome.Reusable;
        }
        finally
        {
            cancel.Cancel();
            connection.Release(stream);
            try
            {
                await pump.ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or BadRequestException or ObjectDisposedException)
            {
            }
        }

        async ValueTask<Outcome> FailAsync(string reason)
        {
            if (total is { IsCancellationRequested: true })
            {
                await TotalTimeoutAsync(context).ConfigureAwait(false);
                return Outcome.Broken;
            }

            LimitCounters.Increment("upstream_invalid_response");
            _cluster.Logger?.LogInformation("cluster {Cluster}: {Reason}", _cluster.Id, reason);
            await ProblemAsync(context, 502, "the upstream failed the request: " + reason).ConfigureAwait(false);
            return Outcome.Broken;
        }
    }

    /// <summary>Sends the request body as DATA, marking the stream once a byte was taken from the client.</summary>
    private static async Task PumpRequestBodyAsync(RequestBody body, Http2UpstreamConnection connection, Http2UpstreamStream stream,
        CancellationToken cancellationToken)
    {
        await Task.Yield(); // the caller goes on to wait for the response head
        while (true)
        {
            ReadResult read = await body.ReadAsync(cancellationToken).ConfigureAwait(false);
            stream.RequestBodyStarted |= !read.Buffer.IsEmpty;
            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                await connection.WriteDataAsync(stream, segment, endStream: false, cancellationToken).ConfigureAwait(false);
            }

            body.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                await connection.WriteDataAsync(stream, default, endStream: true, cancellationToken).ConfigureAwait(false);
                return;
            }

            if (read.IsCanceled)
            {
                return;
            }
        }
    }

    private static async ValueTask CopyHttp2BodyAsync(RequestContext context, Http2UpstreamConnection connection, Http2UpstreamStream stream)
    {
        PipeReader input = stream.Body.Reader;
        while (true)
        {
            ReadResult read = await input.ReadAsync().ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = read.Buffer;
            foreach (ReadOnlyMemory<byte> segment in buffer)
            {
                await context.WriteAsync(segment).ConfigureAwait(false);
            }

            int taken = (int)buffer.Length; // before AdvanceTo: the segments go back to the pool then
            input.AdvanceTo(buffer.End);
            if (taken > 0)
            {
                connection.OnConsumed(stream, taken);
            }

            if (read.IsCompleted)
            {
                return; // trailers, if any, are in context.ResponseTrailers: the sink sends them on completion
            }

            if (!input.TryRead(out ReadResult more))
            {
                await context.FlushAsync().ConfigureAwait(false); // nothing more yet: the client sees what came (gRPC, SSE)
            }
            else
            {
                input.AdvanceTo(more.Buffer.Start);
            }
        }
    }
}

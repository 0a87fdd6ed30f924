using System.Buffers;
using System.Buffers.Text;
using System.IO.Pipelines;
using System.Net;
using HttpVersion = Appliance.Protocol.Http1.HttpVersion;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using Appliance.Routing;
using Appliance.Server;
using Appliance.Telemetry;
using Microsoft.Extensions.Logging;

namespace Appliance.Proxy;

/// <summary>
/// Forwards a request to a cluster over HTTP/1.1 keep-alive and streams the response back (RFC 9110 §7.6):
/// hop-by-hop fields removed both ways, the request body re-framed for the upstream, X-Forwarded-* and Via
/// added, X-Request-Id and traceparent created when absent. Bodies stream in both directions with the pipes'
/// backpressure; nothing is buffered whole.
/// </summary>
public sealed partial class ProxyHandler : RouteHandler
{
    private static readonly Http1RequestParser s_responseHeaders = new(new Http1ParserLimits { MaxHeaderCount = 1000, MaxHeaderBytes = 64 * 1024 });

    private readonly ClusterModel _cluster;
    private readonly ProxyTransforms _transforms;
    public ProxyHandler(ClusterModel cluster, ProxyTransforms? transforms = null)
    {
        _cluster = cluster;
        _transforms = transforms ?? ProxyTransforms.Default;
    }

    public ClusterModel Cluster => _cluster;

    [AsyncMethodBuilder(typeof(Appliance.Runtime.PooledValueTaskMethodBuilder))]
    public override async ValueTask HandleAsync(RequestContext context)
    {
        Upgrade upgrade = UpgradeOf(context);
        if (_cluster.Protocol == UpstreamProtocol.Http2 && upgrade == Upgrade.Http1)
        {
            upgrade = Upgrade.None; // HTTP/2 has no Upgrade: the request goes on as a plain one (RFC 9110 §7.8 allows ignoring it)
        }

        if (upgrade == Upgrade.Unsupported || (upgrade == Upgrade.WebSocketOverHttp2 && _cluster.Protocol == UpstreamProtocol.Http2))
        {
            await ProblemAsync(context, 501, "only the websocket protocol can be tunnelled to an HTTP/1.1 upstream").ConfigureAwait(false);
            return;
        }

        context.UpstreamCluster = _cluster.Id;
        DestinationModel? destination = _cluster.Pick(context);
        if (destination is null)
        {
            LimitCounters.Increment("upstream_no_healthy_destination");
            await ProblemAsync(context, 503, "no healthy destination in the cluster").ConfigureAwait(false);
            return;
        }

        // timeouts.total: one clock for the whole exchange, retries included (allocated only when configured).
        using CancellationTokenSource? total = _cluster.Timeouts.Total > TimeSpan.Zero ? new CancellationTokenSource(_cluster.Timeouts.Total) : null;
        if (_cluster.Protocol == UpstreamProtocol.Http2)
        {
            await HandleHttp2Async(context, destination, total).ConfigureAwait(false);
            return;
        }

        ulong tried = _cluster.Bit(destination);
        bool retriedStale = false;
        bool retrying = false;
        try
        {
            while (true)
            {
                UpstreamConnection? connection;
                context.UpstreamAddress = destination.Address;
                try
                {
                    connection = await destination.Pool!.RentAsync(CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception e) when (e is UpstreamTlsException or System.Net.Sockets.SocketException or TimeoutException or OperationCanceledException)
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
                    await ProblemAsync(context, 503, "the upstream is at its connection limit").ConfigureAwait(false);
                    return;
                }

                bool reused = connection.Requests > 0;
                destination.Begin();
                Outcome outcome = Outcome.Broken;
                CancellationTokenRegistration abort = total is null ? default
                    : total.Token.UnsafeRegister(static c => ((UpstreamConnection)c!).Abort(), connection);
                try
                {
                    outcome = await ForwardAsync(context, connection, upgrade).ConfigureAwait(false);
                }
                finally
                {
                    abort.Dispose();
                    if (connection.Aborted)
                    {
                        outcome = Outcome.Broken;
                    }

                    destination.End();
                    if (connection.ResponseLatency > 0)
                    {
                        destination.RecordLatency(connection.ResponseLatency);
                    }

                    connection.ResponseLatency = 0;
                    connection.Requests++;
                    destination.Pool!.Return(connection, outcome == Outcome.Reusable);
                }

                if (total is { IsCancellationRequested: true })
                {
                    await TotalTimeoutAsync(context).ConfigureAwait(false);
                    return;
                }

                // A reused keep-alive connection can be closed by the upstream just as we send on it: retry once on a
                // fresh connection when nothing of the request body or the response has gone yet.
                if (outcome == Outcome.StaleConnection && reused && !retriedStale)
                {
                    retriedStale = true;
                    continue;
                }

                if (outcome == Outcome.StaleConnection)
                {
                    ReportHealth(destination, failed: true);
                    // No response byte came and no request body was read: an idempotent request goes to another
                    // destination (nginx retries "error" for idempotent methods only, RFC 9110 §9.2.2).
                    if (IsIdempotent(context) && _cluster.PickNext(ref tried, ref retrying) is { } next)
                    {
                        destination = next;
                        retriedStale = false;
                        continue;
                    }

                    await ProblemAsync(context, 502, "the upstream closed the connection").ConfigureAwait(false);
                    return;
                }

                ReportHealth(destination, failed: context.StatusCode >= _cluster.Passive.FailureStatus);
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

    /// <summary>
    /// A connect or TLS handshake to <paramref name="destination"/> failed: counted, logged and reported to passive
    /// health. Nothing was sent, so a refused or timed-out connect moves to another destination (nginx's
    /// proxy_next_upstream error), within the retry budget; a TLS failure does not (the cluster's TLS is the same
    /// everywhere). Returns the destination to try next, or null.
    /// </summary>
    private DestinationModel? ConnectFailed(DestinationModel destination, Exception e, ref ulong tried, ref bool retrying)
    {
        ReportHealth(destination, failed: true);
        if (e is UpstreamTlsException)
        {
            LimitCounters.Increment("upstream_tls_failed");
            _cluster.Logger?.LogWarning("cluster {Cluster}: {Error}", _cluster.Id, e.Message);
            return null;
        }

        LimitCounters.Increment("upstream_connect_failed");
        return _cluster.PickNext(ref tried, ref retrying);
    }

    private static ValueTask ConnectProblemAsync(RequestContext context, Exception e) => e switch
    {
        UpstreamTlsException => ProblemAsync(context, 502, "TLS to the upstream failed"),
        TimeoutException => ProblemAsync(context, 504, "cannot connect to the upstream"),
        _ => ProblemAsync(context, 502, "cannot connect to the upstream"),
    };

    /// <summary>The exchange ran past timeouts.total: 504, or a cut connection if the response had started.</summary>
    private ValueTask TotalTimeoutAsync(RequestContext context)
    {
        LimitCounters.Increment("upstream_total_timeout");
        _cluster.Logger?.LogInformation("cluster {Cluster}: request {Path} exceeded timeouts.total", _cluster.Id, context.PathString);
        return context.ResponseStarted
            ? throw new IOException("the upstream exchange exceeded timeouts.total")
            : ProblemAsync(context, 504, "the upstream exchange exceeded timeouts.total");
    }

    /// <summary>What the client asked to switch to, as this hop can forward it.</summary>
    private enum Upgrade
    {
        None,
        /// <summary>HTTP/1.1 Upgrade (WebSocket and others), forwarded as it came.</summary>
        Http1,
        /// <summary>RFC 8441 extended CONNECT for websocket, turned into an HTTP/1.1 WebSocket handshake (RFC 6455 §4).</summary>
        WebSocketOverHttp2,
        /// <summary>Extended CONNECT for another protocol: nothing to map it to on HTTP/1.1.</summary>
        Unsupported,
    }

    private static Upgrade UpgradeOf(RequestContext c)
    {
        ReadOnlySpan<byte> protocol = c.UpgradeProtocol;
        if (protocol.IsEmpty)
        {
            return Upgrade.None;
        }

        if (c.Version == HttpVersion.Http2)
        {
            return System.Text.Ascii.EqualsIgnoreCase(protocol, "websocket"u8) ? Upgrade.WebSocketOverHttp2 : Upgrade.Unsupported;
        }

        // h2c upgrades end here: this hop speaks HTTP/2 to clients itself (RFC 9113 §3.1 dropped the upgrade).
        return System.Text.Ascii.EqualsIgnoreCase(protocol, "h2c"u8) ? Upgrade.None : Upgrade.Http1;
    }

    private static bool IsIdempotent(RequestContext c) =>
        c.Method is HttpMethod.Get or HttpMethod.Head or HttpMethod.Options or HttpMethod.Trace or HttpMethod.Put or HttpMethod.Delete;

    /// <summary>Passive health: real traffic's failures eject a destination for a while.</summary>
    private void ReportHealth(DestinationModel destination, bool failed)
    {
        if (!failed)
        {
            destination.Health.ReportSuccess(_cluster.Passive);
        }
        else if (destination.Health.ReportFailure(_cluster.Passive, _cluster))
        {
            LimitCounters.Increment("upstream_destination_ejected");
        }
    }

    private enum Outcome
    {
        Reusable,
        Broken,
        /// <summary>Failed before any response byte and before the request body was read: safe to retry.</summary>
        StaleConnection,
    }

    /// <summary>
    /// Sends the request and relays the response. A request without a body whose head the socket takes at once (the
    /// usual GET) returns the relay's own task: the caller awaits it directly, one async frame less per request.
    /// </summary>
    private ValueTask<Outcome> ForwardAsync(RequestContext context, UpstreamConnection upstream, Upgrade upgrade)
    {
        if (HasBody(context, upgrade) || upgrade == Upgrade.WebSocketOverHttp2)
        {
            return ForwardAsync(context, upstream, upgrade, headQueued: false);
        }

        try
        {
            if (SendHead(context, upstream, upgrade, webSocketKey: null, contentLength: 0, chunked: false, expectContinue: false))
            {
                return RelayResponseAsync(context, upstream, upgrade, webSocketKey: null, heldBody: null, chunked: false);
            }
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            return new ValueTask<Outcome>(Outcome.StaleConnection);
        }

        return ForwardAsync(context, upstream, upgrade, headQueued: true); // the head waits in the pipe: flushed there
    }

    /// <summary>Whether a request body goes after the head (an upgrade's bytes go through the tunnel instead).</summary>
    private static bool HasBody(RequestContext context, Upgrade upgrade) => context.Body is not EmptyRequestBody && upgrade == Upgrade.None;

    /// <summary>Writes the request head and hands it to the socket: false when it went into the pipe instead (to flush).</summary>
    private bool SendHead(RequestContext context, UpstreamConnection upstream, Upgrade upgrade, string? webSocketKey, long contentLength,
        bool chunked, bool expectContinue)
    {
        upstream.ResponseLatency = -Transport.LoopClock.Timestamp; // completed when the head arrives
        HeadBuffer head = HeadBuffer.Start(); // written whole, then sent (or put into the upstream's pipe) at once
        WriteRequestHead(context, head, contentLength, chunked, _transforms, upgrade, webSocketKey, expectContinue);
        return upstream.SendHead(head);
    }

    [AsyncMethodBuilder(typeof(Appliance.Runtime.PooledValueTaskMethodBuilder<>))]
    private async ValueTask<Outcome> ForwardAsync(RequestContext context, UpstreamConnection upstream, Upgrade upgrade, bool headQueued)
    {
        PipeWriter output = upstream.Output;
        RequestBody body = context.Body;
        bool hasBody = HasBody(context, upgrade);
        bool chunked = hasBody && body.Length < 0;
        bool bodyStarted = false;
        // RFC 9110 §10.1.1: the client waits for 100 Continue: so does this hop, and the upstream's answer decides.
        bool expectContinue = hasBody && context.ContinueExpected;
        string? webSocketKey = upgrade == Upgrade.WebSocketOverHttp2 ? Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)) : null;
        try
        {
            if (!headQueued)
            {
                headQueued = !SendHead(context, upstream, upgrade, webSocketKey, hasBody ? body.Length : 0, chunked, expectContinue);
            }

            if (headQueued && (await output.FlushAsync().ConfigureAwait(false)).IsCompleted)
            {
                return Outcome.StaleConnection;
            }

            if (hasBody && !expectContinue)
            {
                bodyStarted = true;
                await CopyRequestBodyAsync(body, output, chunked).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            if (!bodyStarted)
            {
                return Outcome.StaleConnection;
            }

            await ProblemAsync(context, 502, "the upstream closed the connection while receiving the request").ConfigureAwait(false);
            return Outcome.Broken;
        }

        return await RelayResponseAsync(context, upstream, upgrade, webSocketKey, expectContinue ? body : null, chunked).ConfigureAwait(false);
    }

    private static void WriteRequestHead(RequestContext c, HeadBuffer o, long contentLength, bool chunked, ProxyTransforms t,
        Upgrade upgrade, string? webSocketKey, bool expectContinue)
    {
        o.Write(upgrade == Upgrade.WebSocketOverHttp2 ? "GET"u8 : c.MethodToken); // RFC 8441 §5: CONNECT maps to the GET handshake
        o.Write(" "u8);
        ReadOnlySpan<byte> target = c.RawTarget;
        if (!target.IsEmpty && target[0] == (byte)'/')
        {
            if (!t.TryRewriteTarget(target, o))
            {
                o.Write(target); // origin-form exactly as received: the upstream sees the client's encoding
            }
        }
        else
        {
            o.Write(c.Path.IsEmpty ? "/"u8 : c.Path);
            o.Write(c.Query);
        }

        o.Write(" HTTP/1.1\r\nHost: "u8);
        o.Write(c.Authority);
        o.Write("\r\n"u8);

        var fields = new Http1ForwardedFieldWriter(o);
        ForwardedFields.Write(c, t, ref fields, joinCookies: true);
        if (expectContinue)
        {
            o.Write("Expect: 100-continue\r\n"u8);
        }
        if (upgrade != Upgrade.None)
        {
            // RFC 9110 §7.8: the upgrade offer is hop-by-hop; this hop makes it again. Over HTTP/2 the client sent
            // no Sec-WebSocket-Key (RFC 8441 §5), so this hop makes one and checks the upstream's answer to it.
            o.Write("Connection: Upgrade\r\nUpgrade: "u8);
            o.Write(upgrade == Upgrade.WebSocketOverHttp2 ? "websocket"u8 : c.UpgradeProtocol);
            if (webSocketKey is not null)
            {
                o.Write("\r\nSec-WebSocket-Key: "u8);
                o.Write(System.Text.Encoding.ASCII.GetBytes(webSocketKey));
            }

            o.Write("\r\n\r\n"u8);
        }
        else if (chunked)
        {
            o.Write("Transfer-Encoding: chunked\r\n\r\n"u8);
        }
        else if (contentLength > 0 || c.Method is HttpMethod.Post or HttpMethod.Put or HttpMethod.Patch)
        {
            Span<byte> span = o.GetSpan(40);
            "Content-Length: "u8.CopyTo(span);
            Utf8Formatter.TryFormat(contentLength, span[16..], out int digits);
            "\r\n\r\n"u8.CopyTo(span[(16 + digits)..]);
            o.Advance(20 + digits);
        }
        else
        {
            o.Write("\r\n"u8);
        }
    }

    [AsyncMethodBuilder(typeof(Appliance.Runtime.PooledValueTaskMethodBuilder))]
    private static async ValueTask CopyRequestBodyAsync(RequestBody body, PipeWriter output, bool chunked)
    {
        while (true)
        {
            ReadResult read = await body.ReadAsync().ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = read.Buffer;
            if (!buffer.IsEmpty)
            {
                if (chunked)
                {
                    Span<byte> size = output.GetSpan(20);
                    Utf8Formatter.TryFormat(buffer.Length, size, out int n, new StandardFormat('x'));
                    size[n++] = (byte)'\r';
                    size[n++] = (byte)'\n';
                    output.Advance(n);
                }

                foreach (ReadOnlyMemory<byte> segment in buffer)
                {
                    output.Write(segment.Span);
                }

                if (chunked)
                {
                    output.Write("\r\n"u8);
                }
            }

            body.AdvanceTo(buffer.End);
            if (read.IsCompleted || read.IsCanceled)
            {
                break;
            }

            FlushResult f = await output.FlushAsync().ConfigureAwait(false);
            if (f.IsCompleted)
            {
                throw new IOException("upstream closed");
            }
        }

        if (chunked)
        {
            output.Write("0\r\n\r\n"u8);
        }

        FlushResult last = await output.FlushAsync().ConfigureAwait(false);
        if (last.IsCompleted)
        {
            throw new IOException("upstream closed");
        }
    }

    /// <summary>How long a request held for 100 Continue waits for the upstream before its body is sent anyway (curl: 1 s).</summary>
    private static readonly TimeSpan s_continueWait = TimeSpan.FromSeconds(1);

    [AsyncMethodBuilder(typeof(Appliance.Runtime.PooledValueTaskMethodBuilder<>))]
    private async ValueTask<Outcome> RelayResponseAsync(RequestContext context, UpstreamConnection upstream, Upgrade upgrade, string? webSocketKey,
        RequestBody? heldBody, bool chunked)
    {
        Transport.ConnectionReader input = upstream.Input;
        upstream.CloseRequested = false;
        upstream.KeepAlive10 = false; // each response says it again (an HTTP/1.0 upstream keeps a connection per answer)
        upstream.ConnectionNamesFields = false;
        upstream.ArmTimeout(heldBody is null ? _cluster.Timeouts.ResponseHeaders : s_continueWait);
        int status;
        HttpVersion version;
        bool anyByte = false;
        try
        {
            while (true)
            {
                // ---- one response head (1xx interim ones are skipped) ----
                context.ResponseHeaders.Clear();
                bool lineDone = false;
                var state = new Http1HeaderState();
                status = 0;
                version = HttpVersion.Http11;
                var handler = new ResponseHeaderHandler(context, upstream);
                while (true)
                {
                    ReadResult read;
                    try
                    {
                        ValueTask<ReadResult> reading = input.ReadAsync(upstream.Timeout.Token);
                        if (reading.IsCompleted)
                        {
                            read = reading.Result;
                        }
                        else
                        {
                            read = await reading.ConfigureAwait(false);
                            if (Transport.EventLoop.OnLoopThread)
                            {
                                upstream.EventThread = Environment.CurrentManagedThreadId; // completions run inline there
                            }
                        }
                    }
                    catch (OperationCanceledException) when (heldBody is not null && !anyByte)
                    {
                        // The upstream said nothing: RFC 9110 §10.1.1 lets the body go without waiting longer.
                        if (!await SendHeldBodyAsync(heldBody, upstream, chunked).ConfigureAwait(false))
                        {
                            await ProblemAsync(context, 502, "the upstream closed the connection while receiving the request").ConfigureAwait(false);
                            return Outcome.Broken;
                        }

                        heldBody = null;
                        continue;
                    }

                    ReadOnlySequence<byte> buffer = read.Buffer;
                    anyByte |= !buffer.IsEmpty;
                    var reader = new SequenceReader<byte>(buffer);
                    RequestRejection rejection = RequestRejection.None;
                    if (!lineDone)
                    {
                        lineDone = Http1ResponseParser.TryParseStatusLine(ref reader, out status, out version, out rejection);
                    }

                    bool headersDone = lineDone && rejection == RequestRejection.None
                        && s_responseHeaders.TryParseHeaders(ref handler, ref reader, ref state, out rejection);
                    if (rejection != RequestRejection.None)
                    {
                        input.AdvanceTo(reader.Position);
                        LimitCounters.Increment("upstream_invalid_response");
                        await ProblemAsync(context, 502, "invalid response from the upstream: " + rejection.Reason()).ConfigureAwait(false);
                        return Outcome.Broken;
                    }

                    if (headersDone)
                    {
                        input.AdvanceTo(reader.Position);
                        break;
                    }

                    if (read.IsCompleted)
                    {
                        input.AdvanceTo(buffer.End);
                        if (!anyByte)
                        {
                            return Outcome.StaleConnection;
                        }

                        await ProblemAsync(context, 502, "the upstream closed the connection in the response head").ConfigureAwait(false);
                        return Outcome.Broken;
                    }

                    input.AdvanceTo(reader.Position, buffer.End);
                }

                if (status == 101)
                {
                    if (upgrade == Upgrade.None)
                    {
                        // RFC 9110 §15.2.2: a server must not switch protocols unasked; what follows is not HTTP.
                        LimitCounters.Increment("upstream_invalid_response");
                        await ProblemAsync(context, 502, "invalid response from the upstream: 101 to a request that offered no upgrade").ConfigureAwait(false);
                        return Outcome.Broken;
                    }

                    break;
                }

                if (status == 100 && heldBody is not null)
                {
                    // The upstream wants the body: the client hears 100 Continue now, and the body follows.
                    await context.Sink.SendContinueAsync(context).ConfigureAwait(false);
                    if (!await SendHeldBodyAsync(heldBody, upstream, chunked).ConfigureAwait(false))
                    {
                        await ProblemAsync(context, 502, "the upstream closed the connection while receiving the request").ConfigureAwait(false);
                        return Outcome.Broken;
                    }

                    heldBody = null;
                    anyByte = false;
                    continue;
                }

                if (status is >= 100 and < 200)
                {
                    continue; // interim response (100 Continue, 103 Early Hints): not relayed yet
                }

                break;
            }
        }
        catch (OperationCanceledException)
        {
            LimitCounters.Increment("upstream_response_timeout");
            await ProblemAsync(context, 504, "the upstream did not answer in time").ConfigureAwait(false);
            return Outcome.Broken;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            // ObjectDisposedException: the total timeout closed the connection under the read.
            if (!anyByte)
            {
                return Outcome.StaleConnection;
            }

            await ProblemAsync(context, 502, "the upstream reset the connection").ConfigureAwait(false);
            return Outcome.Broken;
        }

        upstream.ResetTimeout();
        if (upstream.ResponseLatency < 0)
        {
            upstream.ResponseLatency = Math.Max(1, upstream.ResponseLatency + Transport.LoopClock.ArrivedSince(-upstream.ResponseLatency));
        }

        context.UpstreamStatus = status;
        context.UpstreamHeaderTicks = upstream.ResponseLatency;

        if (heldBody is not null)
        {
            // A final answer without asking for the body (417, 401, 413…): the client's body is never read, and the
            // upstream connection cannot tell a later request from that body, so it is not reused.
            upstream.CloseRequested = true;
        }

        if (status == 101)
        {
            return await TunnelAsync(context, upstream, upgrade, webSocketKey).ConfigureAwait(false);
        }

        RequestRejection framing = Http1ResponseFraming.Determine(context.ResponseHeaders, status, context.Method == HttpMethod.Head, version,
            out BodyKind kind, out long length);
        if (framing != RequestRejection.None)
        {
            await ProblemAsync(context, 502, "invalid response framing from the upstream: " + framing.Reason()).ConfigureAwait(false);
            return Outcome.Broken;
        }

        if (version == HttpVersion.Http10 && !upstream.KeepAlive10)
        {
            upstream.CloseRequested = true;
        }

        if (upstream.ConnectionNamesFields)
        {
            RemoveConnectionOptions(context.ResponseHeaders);
        }

        StripHopByHop(context.ResponseHeaders);
        ApplyResponseTransforms(context.ResponseHeaders, _transforms);
        context.StatusCode = status;
        if (kind == BodyKind.ContentLength)
        {
            context.ResponseContentLength = length;
        }
        else if (kind == BodyKind.None && context.Method == HttpMethod.Head && context.ResponseHeaders.Contains(KnownHeader.ContentLength))
        {
            // HEAD: pass the length the upstream announced (RFC 9110 §9.3.2).
            context.ResponseHeaders.TryGetValue(KnownHeader.ContentLength, out ReadOnlySpan<byte> cl);
            Http1RequestFraming.TryParseContentLength(cl, out long headLength);
            context.ResponseContentLength = headLength;
        }

        context.ResponseHeaders.Remove(KnownHeader.ContentLength);
        try
        {
            switch (kind)
            {
                case BodyKind.ContentLength:
                    if (length == 0)
                    {
                        break;
                    }

                    if (input.TryRead(out ReadResult ready))
                    {
                        ReadOnlySequence<byte> buffered = ready.Buffer;
                        if (buffered.Length >= length && buffered.IsSingleSegment)
                        {
                            // The whole body came with the head (a small response): relayed here, without the copy
                            // loop's async frame. The write is awaited before the bytes are handed back to the reader.
                            await context.WriteAsync(buffered.First[..(int)length]).ConfigureAwait(false);
                            input.AdvanceTo(buffered.GetPosition(length));
                            break;
                        }

                        input.AdvanceTo(buffered.Start);
                    }

                    await CopyLengthAsync(context, input, length).ConfigureAwait(false);
                    break;
                case BodyKind.Chunked:
                    await CopyChunkedAsync(context, input).ConfigureAwait(false);
                    break;
                case BodyKind.CloseDelimited:
                    upstream.CloseRequested = true;
                    await CopyUntilCloseAsync(context, input).ConfigureAwait(false);
                    break;
            }
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException or BadRequestException)
        {
            // Mid-body failure: the status is out, so only an aborted client connection can say so.
            throw new IOException("the upstream response was cut short", e);
        }

        return upstream.CloseRequested ? Outcome.Broken : Outcome.Reusable;
    }

    /// <summary>
    /// The upstream switched protocols: answer the client (101, or 200 on an HTTP/2 extended CONNECT), then copy
    /// bytes both ways until the upstream closes or nothing moves for the cluster's tunnel idle timeout. A client
    /// that finishes its side half-closes the upstream connection; the upstream finishing ends the tunnel.
    /// </summary>
    private async ValueTask<Outcome> TunnelAsync(RequestContext context, UpstreamConnection upstream, Upgrade upgrade, string? webSocketKey)
    {
        HeaderCollection headers = context.ResponseHeaders;
        if (upgrade == Upgrade.WebSocketOverHttp2)
        {
            // RFC 6455 §4.1: the accept value proves the upstream read our key; without it there is no WebSocket.
            if (!headers.TryGetValue("sec-websocket-accept"u8, out ReadOnlySpan<byte> accept)
                || !accept.Trim(" \t"u8).SequenceEqual(System.Text.Encoding.ASCII.GetBytes(WebSocketAccept(webSocketKey!))))
            {
                LimitCounters.Increment("upstream_invalid_response");
                await ProblemAsync(context, 502, "invalid WebSocket handshake from the upstream").ConfigureAwait(false);
                return Outcome.Broken;
            }

            headers.Remove("sec-websocket-accept"u8);
            headers.Remove(KnownHeader.Upgrade);
        }
        else if (!headers.TryGetValue(KnownHeader.Upgrade, out _))
        {
            LimitCounters.Increment("upstream_invalid_response");
            await ProblemAsync(context, 502, "invalid response from the upstream: 101 without Upgrade").ConfigureAwait(false);
            return Outcome.Broken;
        }

        headers.Remove(KnownHeader.Connection, KnownHeader.ContentLength, KnownHeader.TransferEncoding); // the rest: IsDroppedAtParse
        ApplyResponseTransforms(headers, _transforms);
        RequestBody client = await context.AcceptUpgradeAsync().ConfigureAwait(false);
        LimitCounters.Increment("upstream_tunnels");

        using var idle = new CancellationTokenSource(_cluster.Timeouts.TunnelIdle);
        Task up = PumpClientToUpstreamAsync(client, upstream, idle);
        try
        {
            PipeReader input = upstream.Input;
            while (true)
            {
                ReadResult read = await input.ReadAsync(idle.Token).ConfigureAwait(false);
                foreach (ReadOnlyMemory<byte> segment in read.Buffer)
                {
                    await context.WriteAsync(segment, idle.Token).ConfigureAwait(false);
                }

                input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    break;
                }

                await context.FlushAsync(idle.Token).ConfigureAwait(false);
                idle.CancelAfter(_cluster.Timeouts.TunnelIdle);
            }

            await context.CompleteAsync().ConfigureAwait(false);
            await context.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException or ObjectDisposedException)
        {
            if (idle.IsCancellationRequested)
            {
                LimitCounters.Increment("upstream_tunnel_idle_timeout");
            }
        }
        finally
        {
            idle.Cancel(); // the client's side stops too
            try
            {
                await up.ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException or ObjectDisposedException or BadRequestException)
            {
            }
        }

        return Outcome.Broken; // the connection spoke another protocol: never back to the pool
    }

    private async Task PumpClientToUpstreamAsync(RequestBody client, UpstreamConnection upstream, CancellationTokenSource idle)
    {
        await Task.Yield(); // the other direction runs on the caller
        PipeWriter output = upstream.Output;
        while (true)
        {
            ReadResult read = await client.ReadAsync(idle.Token).ConfigureAwait(false);
            if (read.IsCanceled)
            {
                return;
            }

            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                output.Write(segment.Span);
            }

            client.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                await upstream.ShutdownSendAsync().ConfigureAwait(false);
                return;
            }

            FlushResult flushed = await output.FlushAsync(idle.Token).ConfigureAwait(false);
            if (flushed.IsCompleted)
            {
                return;
            }

            idle.CancelAfter(_cluster.Timeouts.TunnelIdle);
        }
    }

    /// <summary>RFC 6455 §4.2.2: base64(SHA-1(key + the WebSocket GUID)).</summary>
    internal static string WebSocketAccept(string key) =>
        Convert.ToBase64String(SHA1.HashData(System.Text.Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));

    /// <summary>Sends a body held back for 100 Continue; false when the upstream went away meanwhile.</summary>
    private async ValueTask<bool> SendHeldBodyAsync(RequestBody body, UpstreamConnection upstream, bool chunked)
    {
        try
        {
            await CopyRequestBodyAsync(body, upstream.Output, chunked).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            return false;
        }

        upstream.ArmTimeout(_cluster.Timeouts.ResponseHeaders);
        return true;
    }

    private static void ApplyResponseTransforms(HeaderCollection headers, ProxyTransforms t)
    {
        foreach (byte[] name in t.ResponseRemove)
        {
            headers.Remove(name);
        }

        foreach ((byte[] name, byte[] value) in t.ResponseSet)
        {
            headers.Remove(name);
            headers.Add(KnownHeaders.Lookup(name), name, value);
        }

        foreach ((byte[] name, byte[] value) in t.ResponseAdd)
        {
            headers.Add(KnownHeaders.Lookup(name), name, value);
        }
    }

    /// <summary>
    /// RFC 9110 §7.6.1: the fields a response's Connection names are hop-by-hop, removed before it is forwarded (after
    /// the framing was read from it). "close" and "keep-alive" name nothing that StripHopByHop leaves. Called when the
    /// parse saw Connection name a field (<see cref="UpstreamConnection.ConnectionNamesFields"/>).
    /// </summary>
    private static void RemoveConnectionOptions(HeaderCollection headers)
    {
        // From the last field down: a removal shifts only later indices onto earlier ones, so every Connection field
        // is still reached (some twice, which removes nothing more). Values live in the collection's arena, which
        // removals leave alone; Connection itself stays until StripHopByHop.
        for (int i = headers.Count - 1; i >= 0; i = Math.Min(i, headers.Count) - 1)
        {
            if (headers[i].Known != KnownHeader.Connection)
            {
                continue;
            }

            foreach (ReadOnlySpan<byte> token in new HttpList(headers[i].Value))
            {
                if (!System.Text.Ascii.EqualsIgnoreCase(token, "close"u8) && !System.Text.Ascii.EqualsIgnoreCase(token, "keep-alive"u8)
                    && !System.Text.Ascii.EqualsIgnoreCase(token, "connection"u8))
                {
                    headers.Remove(token);
                }
            }
        }
    }

    // Like nginx: the response carries the gateway's own Date and Server, not the upstream's (one pass for all). An
    // HTTP/1.1 response has lost all but Connection, Transfer-Encoding and Upgrade as it was parsed (IsDroppedAtParse);
    // an HTTP/2 upstream's has them all to lose here.
    private static void StripHopByHop(HeaderCollection headers) =>
        headers.Remove(KnownHeader.Connection, KnownHeader.KeepAlive, KnownHeader.ProxyConnection, KnownHeader.TransferEncoding,
            KnownHeader.Upgrade, KnownHeader.TE, KnownHeader.Trailer, KnownHeader.Date, KnownHeader.Server);

    /// <summary>
    /// The fields of StripHopByHop's list that an HTTP/1.1 response's parse has no use for, so they are never copied in:
    /// Date and Server (the gateway's own replace them) and the hop-by-hop Keep-Alive, Proxy-Connection, TE and Trailer.
    /// Connection, Transfer-Encoding and Upgrade are read first (framing, the tunnel) and removed after (a Connection
    /// field that names nothing but close or keep-alive is not kept either: ResponseHeaderHandler reads it whole).
    /// </summary>
    private static bool IsDroppedAtParse(KnownHeader known) =>
        known is KnownHeader.Date or KnownHeader.Server or KnownHeader.KeepAlive or KnownHeader.ProxyConnection
            or KnownHeader.TE or KnownHeader.Trailer;

    [AsyncMethodBuilder(typeof(Appliance.Runtime.PooledValueTaskMethodBuilder))]
    private static async ValueTask CopyLengthAsync(RequestContext context, Transport.ConnectionReader input, long remaining)
    {
        bool bodyWritten = false;
        while (remaining > 0)
        {
            ReadResult read = await input.ReadAsync().ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = read.Buffer;
            if (buffer.IsEmpty && read.IsCompleted)
            {
                throw new IOException("upstream closed before the end of the body");
            }

            ReadOnlySequence<byte> slice = buffer.Length > remaining ? buffer.Slice(0, remaining) : buffer;
            foreach (ReadOnlyMemory<byte> segment in slice)
            {
                await context.WriteAsync(segment).ConfigureAwait(false);
            }

            remaining -= slice.Length;
            bodyWritten |= !slice.IsEmpty;
            input.AdvanceTo(slice.End);
            if (remaining > 0)
            {
                if (input.TryReadMore(out ReadResult more))
                {
                    input.AdvanceTo(more.Buffer.Start); // more is already here: keep filling before a flush
                }
                else if (bodyWritten)
                {
                    await context.FlushAsync().ConfigureAwait(false); // nothing buffered: let the client see what came
                }

                // The head alone waits for the body's first bytes (nginx's postpone_output): a flush of its own would
                // cost a TLS record and a send on every response whose body arrives a moment after its head.
            }
        }
    }

    [AsyncMethodBuilder(typeof(Appliance.Runtime.PooledValueTaskMethodBuilder))]
    private static async ValueTask CopyChunkedAsync(RequestContext context, Transport.ConnectionReader input)
    {
        var decoder = new ChunkedDecoder(new Http1ParserLimits());
        while (true)
        {
            ReadResult read = await input.ReadAsync().ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = read.Buffer;
            bool wroteData = false;
            // Every chunk already buffered is relayed before reading again: "examined" must only cover what
            // truly needs more bytes, or the next read would wait for data that is already here.
            while (true)
            {
                SequencePosition consumed = ProcessChunk(ref decoder, buffer, out ReadOnlySequence<byte> data, out bool done);
                foreach (ReadOnlyMemory<byte> segment in data)
                {
                    await context.WriteAsync(segment).ConfigureAwait(false);
                }

                wroteData |= !data.IsEmpty;
                bool progressed = !buffer.Slice(0, consumed).IsEmpty;
                buffer = buffer.Slice(consumed);
                if (done)
                {
                    input.AdvanceTo(consumed);
                    return;
                }

                if (!progressed)
                {
                    input.AdvanceTo(consumed, read.Buffer.End);
                    break;
                }
            }

            if (read.IsCompleted)
            {
                throw new IOException("upstream closed inside a chunked body");
            }

            if (input.TryReadMore(out ReadResult more))
            {
                input.AdvanceTo(more.Buffer.Start); // more is already here: relay it before a flush
            }
            else if (wroteData)
            {
                await context.FlushAsync().ConfigureAwait(false); // streamed responses (SSE) reach the client as they come
            }
        }
    }

    /// <summary>Decodes the next framing step or data run of a chunked body.</summary>
    private static SequencePosition ProcessChunk(ref ChunkedDecoder decoder, ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> data, out bool done)
    {
        var reader = new SequenceReader<byte>(buffer);
        var discard = new DiscardTrailers();
        data = default;
        done = false;
        ChunkedStatus status = decoder.Read(ref discard, ref reader, out long n, out RequestRejection rejection);
        switch (status)
        {
            case ChunkedStatus.Data:
                data = buffer.Slice(reader.Position, n);
                decoder.ConsumeData(n);
                return data.End;
            case ChunkedStatus.Done:
                done = true;
                return reader.Position;
            case ChunkedStatus.Error:
                throw new IOException("invalid chunked encoding from the upstream: " + rejection.Reason());
            default:
                return reader.Position;
        }
    }

    [AsyncMethodBuilder(typeof(Appliance.Runtime.PooledValueTaskMethodBuilder))]
    private static async ValueTask CopyUntilCloseAsync(RequestContext context, PipeReader input)
    {
        while (true)
        {
            ReadResult read = await input.ReadAsync().ConfigureAwait(false);
            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                await context.WriteAsync(segment).ConfigureAwait(false);
            }

            input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                return;
            }

            await context.FlushAsync().ConfigureAwait(false);
        }
    }

    private static ValueTask ProblemAsync(RequestContext context, int status, string detail)
    {
        if (context.ResponseStarted)
        {
            throw new IOException(detail);
        }

        context.ResponseHeaders.Clear();
        context.ResponseContentLength = -1;
        byte[] body = ProblemDetails.Json(status, detail);
        return context.RespondAsync(status, "application/problem+json"u8, body);
    }

    /// <summary>Copies upstream response fields into the context (filtered later) and notes "Connection: close".</summary>
    private readonly struct ResponseHeaderHandler(RequestContext context, UpstreamConnection upstream) : IHttp1RequestHandler
    {
        public void OnRequestLine(HttpMethod method, ReadOnlySpan<byte> methodToken, ReadOnlySpan<byte> target, HttpVersion version)
        {
        }

        public void OnHeader(KnownHeader known, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
            if (IsDroppedAtParse(known))
            {
                return; // on a 101 too: the tunnel's answer carries only what its upgrade needs
            }

            if (known == KnownHeader.Connection)
            {
                if (value.Length == 10 && System.Text.Ascii.EqualsIgnoreCase(value, "keep-alive"u8))
                {
                    upstream.KeepAlive10 = true; // the usual line, without the list parse below
                    return;
                }

                // Connection options are case-insensitive tokens (RFC 9110 §7.6.1).
                bool namesFields = false;
                foreach (ReadOnlySpan<byte> token in new HttpList(value))
                {
                    if (System.Text.Ascii.EqualsIgnoreCase(token, "close"u8))
                    {
                        upstream.CloseRequested = true;
                    }
                    else if (System.Text.Ascii.EqualsIgnoreCase(token, "keep-alive"u8))
                    {
                        upstream.KeepAlive10 = true;
                    }
                    else
                    {
                        namesFields = upstream.ConnectionNamesFields = true; // RemoveConnectionOptions has work to do
                    }
                }

                if (!namesFields)
                {
                    return; // only close or keep-alive, read now: hop-by-hop, it would only be removed again
                }
            }

            context.ResponseHeaders.Add(known, name, value);
        }
    }

    private readonly struct DiscardTrailers : IHttp1RequestHandler
    {
        public void OnRequestLine(HttpMethod method, ReadOnlySpan<byte> methodToken, ReadOnlySpan<byte> target, HttpVersion version)
        {
        }

        public void OnHeader(KnownHeader known, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
        }
    }
}

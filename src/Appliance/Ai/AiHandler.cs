using System.Buffers;
using System.IO.Pipelines;
using System.Net.Http;
using System.Text.Json;
using Appliance.Protocol.Headers;
using Appliance.Routing;
using Appliance.Server;

namespace Appliance.Ai;

/// <summary>
/// routes[].ai: OpenAI's API over the ai section's providers. Under the route's path it answers
/// <c>POST …/chat/completions</c> (whole or streamed, whatever provider serves the model) and
/// <c>GET …/models</c> / <c>GET …/models/{name}</c>; anything else is 404. Errors are OpenAI's
/// (<c>{"error": {…}}</c>) with the status OpenAI would use, so OpenAI's SDKs raise them as they would OpenAI's:
/// <list type="bullet">
/// <item>400 for a request the gateway or the model's provider cannot take, naming the parameter; 404
/// <c>model_not_found</c> for a model this route does not serve; 413 for a body over ai.maxRequestBytes;</item>
/// <item>the provider's own status and message when it refuses (its error put in OpenAI's shape);</item>
/// <item>502 when the provider cannot be reached or its answer cannot be read; 504 when it takes longer than its
/// timeout.</item>
/// </list>
/// A stream that breaks after it started ends with one OpenAI error event (translated streams) or is cut (passed-through
/// ones), never with a clean end: the client must not take half an answer for a whole one.
/// </summary>
public sealed class AiHandler(AiGateway gateway, IReadOnlySet<string>? models) : RouteHandler
{
    private const int MaxErrorBytes = 64 * 1024;

    private static readonly byte[] EventStream = "text/event-stream"u8.ToArray();
    private static readonly byte[] NoCache = "no-cache"u8.ToArray();

    public AiGateway Gateway => gateway;

    public override bool CountsTokens => true;

    public override async ValueTask HandleAsync(RequestContext context)
    {
        try
        {
            ReadOnlySpan<byte> path = context.Path;
            if (path.EndsWith("/chat/completions"u8))
            {
                await ChatAsync(context).ConfigureAwait(false);
            }
            else if (path.EndsWith("/models"u8) || path[..Math.Max(0, path.LastIndexOf((byte)'/'))].EndsWith("/models"u8))
            {
                await ModelsAsync(context).ConfigureAwait(false);
            }
            else
            {
                throw new AiError(404, "invalid_request_error", "Not found: this route serves /chat/completions and /models.", code: "unknown_url");
            }
        }
        catch (AiError e) when (!context.ResponseStarted)
        {
            context.ResponseHeaders.Clear(); // a stream's, set before its first byte failed to come
            if (!context.Body.IsComplete)
            {
                context.CloseConnection = true; // the rest of the body is not worth reading
            }

            if (e.Status == 405)
            {
                context.ResponseHeaders.Add(KnownHeader.None, "Allow"u8, e.Param == "GET" ? "GET"u8 : "POST"u8);
            }

            await context.RespondAsync(e.Status, "application/json"u8, e.ToJson()).ConfigureAwait(false);
        }
    }

    private bool Serves(string name) => models is null || models.Contains(name);

    private ValueTask ModelsAsync(RequestContext context)
    {
        if (context.MethodToken is not [(byte)'G', (byte)'E', (byte)'T'])
        {
            throw new AiError(405, "invalid_request_error", "Use GET.", param: "GET");
        }

        ReadOnlySpan<byte> path = context.Path;
        // The path is already percent-decoded except %2F, which a model name with a '/' needs.
        string? one = path.EndsWith("/models"u8) ? null
            : System.Text.Encoding.UTF8.GetString(path[(path.LastIndexOf((byte)'/') + 1)..]).Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
        AiModel[] list = gateway.Models.Values.Where(m => Serves(m.Name) && (one is null || m.Name == one)).OrderBy(m => m.Name, StringComparer.Ordinal).ToArray();
        if (one is not null && list.Length == 0)
        {
            throw NoSuchModel(one);
        }

        var buffer = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buffer))
        {
            if (one is null)
            {
                w.WriteStartObject();
                w.WriteString("object"u8, "list"u8);
                w.WriteStartArray("data"u8);
            }

            foreach (AiModel model in list)
            {
                w.WriteStartObject();
                w.WriteString("id"u8, model.Name);
                w.WriteString("object"u8, "model"u8);
                w.WriteNumber("created"u8, 0);
                w.WriteString("owned_by"u8, model.Provider.Id);
                w.WriteEndObject();
            }

            if (one is null)
            {
                w.WriteEndArray();
                w.WriteEndObject();
            }
        }

        return context.RespondAsync(200, "application/json"u8, buffer.WrittenMemory);
    }

    private static AiError NoSuchModel(string name) =>
        new(404, "invalid_request_error", $"The model '{name}' does not exist or you do not have access to it.", "model", "model_not_found");

    private async ValueTask ChatAsync(RequestContext context)
    {
        if (context.MethodToken is not [(byte)'P', (byte)'O', (byte)'S', (byte)'T'])
        {
            throw new AiError(405, "invalid_request_error", "Use POST.");
        }

        ReadOnlyMemory<byte> body = await ReadBodyAsync(context, gateway.MaxRequestBytes).ConfigureAwait(false);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw AiError.Invalid($"The request body is not valid JSON: {e.Message}", null);
        }

        using (document)
        {
            ChatRequest request;
            AiModel? model;
            try
            {
                request = ChatRequest.Parse(document.RootElement);
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException)
            {
                throw WrongType();
            }

            if (!Serves(request.Model) || !gateway.Models.TryGetValue(request.Model, out model))
            {
                throw NoSuchModel(request.Model);
            }

            // The model, then its fallbacks in order, each while the one before failed on the provider's side
            // (unreachable, too slow, overloaded, refusing the gateway's key) and nothing was sent to the client. A
            // fallback whose provider cannot take the request (a parameter its kind lacks) is passed over: the
            // client then gets the provider failure, which it may retry, not a 400 it would not.
            IReadOnlyList<string> fallbacks = model.Fallbacks; // the requested model's, not those of its fallbacks
            AiError? failure = null;
            for (int attempt = 0; ; attempt++)
            {
                if (attempt > 0)
                {
                    if (attempt > fallbacks.Count)
                    {
                        throw failure!;
                    }

                    if (!gateway.Models.TryGetValue(fallbacks[attempt - 1], out AiModel? next))
                    {
                        continue; // checked when the config was compiled
                    }

                    model = next;
                }

                HttpRequestMessage message;
                try
                {
                    message = CreateRequest(request, model);
                }
                catch (AiError) when (failure is not null)
                {
                    continue;
                }

                try
                {
                    await AnswerAsync(context, request, model, message).ConfigureAwait(false);
                    return;
                }
                catch (AiError e) when (e.ProviderFailed && !context.ResponseStarted && attempt < fallbacks.Count)
                {
                    failure = e;
                }
            }
        }
    }

    private static AiError WrongType() =>
        AiError.Invalid("The request holds a value of the wrong type, or a string that is not valid Unicode.", null);

    /// <summary>The request for <paramref name="model"/>'s provider; <see cref="AiError"/> (400) when its kind cannot take it.</summary>
    private static HttpRequestMessage CreateRequest(ChatRequest request, AiModel model)
    {
        HttpRequestMessage message;
        try
        {
            message = ProviderAdapter.For(model.Provider.Kind).CreateRequest(request, model);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException)
        {
            // A member of the wrong type (JsonElement's accessors throw for it) or a string that is not UTF-16.
            throw WrongType();
        }

        // HTTP/2 where the provider offers it (ALPN): its streams share one connection.
        message.Version = System.Net.HttpVersion.Version20;
        message.VersionPolicy = HttpVersionPolicy.RequestVersionOrLower;
        return message;
    }

    /// <summary>One attempt: <paramref name="message"/> to <paramref name="model"/>'s provider, and its answer to the client.</summary>
    private async ValueTask AnswerAsync(RequestContext context, ChatRequest request, AiModel model, HttpRequestMessage message)
    {
        ProviderAdapter adapter = ProviderAdapter.For(model.Provider.Kind);
        using HttpRequestMessage sent = message;
        context.UpstreamStatus = 0;
        context.InputTokens = context.OutputTokens = 0; // an earlier attempt's are its model's, counted there
        context.AiCostNanos = -1;
        context.AiModel = model.Name;
        ModelCounters counters = gateway.Counters.For(model.Name);
        counters.Attempted();
        context.UpstreamCluster = "ai:" + model.Provider.Id;
        context.UpstreamAddress = model.Provider.BaseUrl.Authority;
        try
        {
            await SendAndAnswerAsync(context, request, model, adapter, message).ConfigureAwait(false);
        }
        catch (Exception) when (context.ClientAborted)
        {
            // The client went away (RequestAborted cancelled the provider's request): not the provider's failure, no
            // fallback; the connection logs 499 when the client left (HTTP/2: not for a stream it broke, which is reset).
            throw new OperationCanceledException("the client went away before the model's answer was complete");
        }
        catch (AiError e) when (e.ProviderFailed)
        {
            counters.ProviderFailed();
            throw;
        }
        finally
        {
            counters.Used(context.InputTokens, context.OutputTokens, context.AiCostNanos);
        }
    }

    private async ValueTask SendAndAnswerAsync(RequestContext context, ChatRequest request, AiModel model, ProviderAdapter adapter, HttpRequestMessage message)
    {
        // The provider's time, and the client's patience: a client that goes away stops the answer it would pay for.
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        deadline.CancelAfter(model.Provider.Timeout);
        long started = TimeProvider.System.GetTimestamp();
        HttpResponseMessage response;
        try
        {
            response = await AiGateway.Http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            throw new AiError(504, "timeout", "The model's provider did not answer in time.") { ProviderFailed = true };
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
        {
            // OperationCanceledException without the deadline: the connect timeout (TCP or TLS) ran out.
            throw new AiError(502, "api_connection_error", "The model's provider could not be reached.") { ProviderFailed = true };
        }

        using (response)
        {
            context.UpstreamStatus = (int)response.StatusCode;
            context.UpstreamHeaderTicks = TimeProvider.System.GetTimestamp() - started;
            if (!response.IsSuccessStatusCode)
            {
                byte[] error;
                try
                {
                    error = await ReadAllAsync(response, MaxErrorBytes, deadline.Token, truncate: true).ConfigureAwait(false);
                }
                catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
                {
                    error = []; // the status still says what happened
                }

                throw adapter.TranslateError((int)response.StatusCode, error);
            }

            long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            if (!request.Stream)
            {
                byte[] answer = await ReadProviderAsync(response, deadline).ConfigureAwait(false);
                byte[] completion;
                try
                {
                    completion = adapter.TranslateResponse(answer, request, model, created, out TokenUsage usage);
                    Charge(context, model, usage);
                }
                catch (Exception e) when (e is JsonException or InvalidDataException or InvalidOperationException)
                {
                    throw new AiError(502, "api_error", "The model's provider sent an answer the gateway cannot read.");
                }

                await context.RespondAsync(200, "application/json"u8, completion).ConfigureAwait(false);
                return;
            }

            int maxEventBytes = (int)Math.Min(gateway.MaxResponseBytes, int.MaxValue);
            await StreamAsync(context, response, adapter.CreateTranslator(maxEventBytes), maxEventBytes, request, model, created, deadline)
                .ConfigureAwait(false);
        }
    }

    private static async ValueTask StreamAsync(
        RequestContext context, HttpResponseMessage response, StreamTranslator? translator, int maxEventBytes, ChatRequest request, AiModel model, long created, CancellationTokenSource deadline)
    {
        Stream upstream;
        try
        {
            upstream = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or HttpRequestException or IOException)
        {
            throw new AiError(502, "api_error", "The model's provider broke off its answer.") { ProviderFailed = true };
        }

        context.StatusCode = 200;
        context.ResponseHeaders.Add(KnownHeader.ContentType, "Content-Type"u8, EventStream);
        context.ResponseHeaders.Add(KnownHeader.CacheControl, "Cache-Control"u8, NoCache);
        PipeReader reader = PipeReader.Create(upstream, new StreamPipeReaderOptions(bufferSize: 16 * 1024, leaveOpen: false));
        var output = new ArrayBufferWriter<byte>(16 * 1024);
        OpenAiStreamUsage? watcher = translator is null ? new OpenAiStreamUsage(maxEventBytes) : null;
        long sent = 0; // passed through: bytes at the buffer's start already sent (an event the watcher has not finished)
        translator?.Start(CallIds.NewCompletionId(), System.Text.Encoding.UTF8.GetBytes(model.Name), created, request.IncludeUsage);
        try
        {
            StreamStatus status = StreamStatus.Continue;
            while (status == StreamStatus.Continue)
            {
                ReadResult read;
                try
                {
                    read = await reader.ReadAsync(deadline.Token).ConfigureAwait(false);
                }
                catch (Exception e) when ((e is OperationCanceledException or HttpRequestException or IOException) && !context.ClientAborted)
                {
                    if (watcher is not null)
                    {
                        // Passed through: nothing can be added to the provider's stream, so it is cut (RST_STREAM on
                        // HTTP/2, a closed connection on HTTP/1.1); before anything went out, a 502 says it.
                        throw context.ResponseStarted
                            ? new IOException("the model's provider broke off its streamed answer", e)
                            : new AiError(502, "api_error", "The model's provider broke off its answer.") { ProviderFailed = true };
                    }

                    status = translator!.Abort(output, deadline.IsCancellationRequested ? "The model's provider did not finish in time."u8 : "The model's provider broke off its answer."u8);
                    await SendAsync(context, FailedBeforeAnswer(context, output)).ConfigureAwait(false);
                    return;
                }

                ReadOnlySequence<byte> buffer = read.Buffer;
                if (watcher is not null)
                {
                    foreach (ReadOnlyMemory<byte> segment in buffer.Slice(sent))
                    {
                        await context.WriteAsync(segment).ConfigureAwait(false);
                    }

                    var watched = new SequenceReader<byte>(buffer);
                    watcher.Watch(ref watched);
                    sent = watched.Remaining;
                    reader.AdvanceTo(watched.Position, buffer.End);
                    await context.FlushAsync().ConfigureAwait(false);
                    if (read.IsCompleted)
                    {
                        return;
                    }

                    continue;
                }

                var sequence = new SequenceReader<byte>(buffer);
                status = translator!.Translate(ref sequence, output);
                reader.AdvanceTo(sequence.Position, buffer.End);
                if (status == StreamStatus.Continue && read.IsCompleted)
                {
                    status = translator.Complete(output);
                }

                await SendAsync(context, status == StreamStatus.Failed ? FailedBeforeAnswer(context, output) : output).ConfigureAwait(false);
            }
        }
        finally
        {
            Charge(context, model, translator?.Usage ?? watcher!.Usage);

            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The answer's tokens, and their cost by the model's price, on the context (the access log, usage, metrics).</summary>
    private static void Charge(RequestContext context, AiModel model, in TokenUsage usage)
    {
        context.InputTokens = TokenUsage.Clamp(usage.InputTokens);
        context.OutputTokens = TokenUsage.Clamp(usage.OutputTokens);
        context.AiCostNanos = model.Cost?.Nanos(usage) ?? -1;
    }

    /// <summary>
    /// A translated stream that failed: its output when the client already has part of the answer, else an
    /// <see cref="AiError"/> with the provider's error (as when Anthropic answers 200 and then an overloaded_error
    /// event): nothing reached the client, so the model's fallbacks may still answer, or the client gets a status.
    /// </summary>
    private static ArrayBufferWriter<byte> FailedBeforeAnswer(RequestContext context, ArrayBufferWriter<byte> output)
    {
        if (context.ResponseStarted)
        {
            return output;
        }

        ReadOnlySpan<byte> written = output.WrittenSpan;
        int last = written[..^2].LastIndexOf("\n\n"u8);
        ReadOnlySpan<byte> json = written[(last < 0 ? 0 : last + 2)..^2]["data: "u8.Length..];
        string type = "api_error", message = "The model's provider failed its answer.";
        using (JsonDocument document = JsonDocument.Parse(json.ToArray()))
        {
            if (document.RootElement.TryGetProperty("error", out JsonElement error))
            {
                type = error.GetProperty("type").GetString() ?? type;
                message = error.GetProperty("message").GetString() ?? message;
            }
        }

        throw new AiError(502, type, message) { ProviderFailed = true };
    }

    private static async ValueTask SendAsync(RequestContext context, ArrayBufferWriter<byte> output)
    {
        if (output.WrittenCount == 0)
        {
            return;
        }

        await context.WriteAsync(output.WrittenMemory).ConfigureAwait(false);
        await context.FlushAsync().ConfigureAwait(false);
        output.ResetWrittenCount();
    }

    private async ValueTask<byte[]> ReadProviderAsync(HttpResponseMessage response, CancellationTokenSource deadline)
    {
        try
        {
            return await ReadAllAsync(response, gateway.MaxResponseBytes, deadline.Token, truncate: false).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            throw new AiError(504, "timeout", "The model's provider did not finish in time.");
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            throw new AiError(502, "api_error", "The model's provider broke off its answer.");
        }
    }

    /// <summary>The provider's body, at most <paramref name="max"/> bytes: cut there when <paramref name="truncate"/>, else refused (502).</summary>
    private static async ValueTask<byte[]> ReadAllAsync(HttpResponseMessage response, long max, CancellationToken cancellationToken, bool truncate)
    {
        using Stream stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var buffer = new MemoryStream();
        byte[] chunk = new byte[16 * 1024];
        int n;
        while ((n = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > max)
            {
                if (truncate)
                {
                    buffer.Write(chunk, 0, (int)(max - buffer.Length));
                    break;
                }

                throw new AiError(502, "api_error", "The model's provider sent an answer larger than ai.maxResponseBytes.");
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }

    /// <summary>The client's body, refused with 413 beyond <paramref name="max"/> bytes.</summary>
    private static async ValueTask<ReadOnlyMemory<byte>> ReadBodyAsync(RequestContext context, long max)
    {
        RequestBody body = context.Body;
        if (body.Length > max)
        {
            throw TooLarge(max);
        }

        // A declared length reserves no more than 64 KiB before the bytes come: a client's word costs nothing.
        var buffer = new ArrayBufferWriter<byte>((int)Math.Clamp(body.Length, 4096, 64 * 1024));
        while (true)
        {
            ReadResult read = await body.ReadAsync().ConfigureAwait(false);
            if (buffer.WrittenCount + read.Buffer.Length > max)
            {
                throw TooLarge(max);
            }

            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                buffer.Write(segment.Span);
            }

            body.AdvanceTo(read.Buffer.End, read.Buffer.End);
            if (read.IsCompleted)
            {
                return buffer.WrittenMemory;
            }
        }
    }

    private static AiError TooLarge(long max) =>
        new(413, "invalid_request_error", $"The request body is larger than this gateway accepts ({max} bytes).", code: "request_too_large");
}

using System.Text;
using Appliance.Protocol.Headers;
using Appliance.Server;

namespace Appliance.Routing;

/// <summary>Answers from the config: a fixed status, headers and body, all encoded once when the config is compiled.</summary>
public sealed class DirectResponseHandler : RouteHandler
{
    private readonly int _status;
    private readonly byte[] _body;
    private readonly (KnownHeader Known, byte[] Name, byte[] Value)[] _headers;

    public DirectResponseHandler(int status, string? contentType, string? body, IReadOnlyDictionary<string, string>? headers)
    {
        _status = status;
        _body = Encoding.UTF8.GetBytes(body ?? "");
        var list = new List<(KnownHeader, byte[], byte[])>();
        if (_body.Length > 0 || contentType is not null)
        {
            list.Add((KnownHeader.ContentType, "Content-Type"u8.ToArray(), Encoding.ASCII.GetBytes(contentType ?? "text/plain; charset=utf-8")));
        }

        foreach ((string name, string value) in headers ?? new Dictionary<string, string>())
        {
            byte[] nameBytes = Encoding.ASCII.GetBytes(name);
            list.Add((KnownHeaders.Lookup(nameBytes), nameBytes, Encoding.ASCII.GetBytes(value)));
        }

        _headers = list.ToArray();
    }

    public override ValueTask HandleAsync(RequestContext context)
    {
        // Request bodies are read and discarded before answering, so the connection stays usable.
        if (!context.Body.IsComplete)
        {
            return DrainThenRespondAsync(context);
        }

        return Respond(context);
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(Appliance.Runtime.PooledValueTaskMethodBuilder))]
    private async ValueTask DrainThenRespondAsync(RequestContext context)
    {
        await context.Body.DrainAsync().ConfigureAwait(false);
        await Respond(context).ConfigureAwait(false);
    }

    private ValueTask Respond(RequestContext context)
    {
        foreach ((KnownHeader known, byte[] name, byte[] value) in _headers)
        {
            context.ResponseHeaders.Add(known, name, value);
        }

        return context.RespondAsync(_status, default, _body);
    }
}

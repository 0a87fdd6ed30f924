namespace Appliance.Server;

/// <summary>
/// The request contexts of HTTP/1.1 connections, shared: a connection takes one when a request starts arriving and
/// gives it back when it waits idle for the next, so an idle keep-alive connection holds no request state (the
/// context, its header collections and their arenas: about 5 KB per connection, S6 in perf/RESULTS.md). nginx does
/// the same with its per-request pool.
/// </summary>
/// <remarks>
/// <para>A context is taken back whole, arenas included, so steady state allocates nothing: the same few contexts
/// go round between the requests in flight. An earlier attempt gave back only the header buffers, to the shared
/// ArrayPool, which keeps few: with 10,000 connections and a trickle of requests (S8) each request rented new arrays
/// that old objects then referenced, and full collections followed. Here the pool keeps up to
/// <see cref="Capacity"/> contexts, more than the requests in flight at once in any scenario measured; past that, a
/// context given back is left to the collector.</para>
/// <para>A few contexts per thread are kept outside the lock: a connection's request usually ends on the event-loop
/// thread that starts the next connection's.</para>
/// </remarks>
internal static class RequestContextPool
{
    private const int Capacity = 512;
    private const int PerThread = 4;

    [ThreadStatic]
    private static RequestContext?[]? t_contexts;

    [ThreadStatic]
    private static int t_count;

    private static readonly Lock s_lock = new();
    private static readonly RequestContext?[] s_contexts = new RequestContext?[Capacity];
    private static int s_count;

    /// <summary>A reset context bound to <paramref name="connection"/> and <paramref name="sink"/>.</summary>
    public static RequestContext Rent(ConnectionInfo connection, ResponseSink sink)
    {
        RequestContext? context = null;
        if (t_count > 0)
        {
            RequestContext?[] local = t_contexts!;
            context = local[--t_count];
            local[t_count] = null;
        }
        else
        {
            lock (s_lock)
            {
                if (s_count > 0)
                {
                    context = s_contexts[--s_count];
                    s_contexts[s_count] = null;
                }
            }
        }

        if (context is null)
        {
            context = new RequestContext(connection);
            context.Reset(); // as pooled ones are
        }

        context.Bind(connection, sink);
        return context;
    }

    /// <summary>Takes back a context that was reset (<see cref="RequestContext.Reset"/>) since it last served a request. Nothing may use it afterwards.</summary>
    public static void Return(RequestContext context)
    {
        context.Unbind();
        RequestContext?[] local = t_contexts ??= new RequestContext?[PerThread];
        if (t_count < local.Length)
        {
            local[t_count++] = context;
            return;
        }

        lock (s_lock)
        {
            if (s_count < Capacity)
            {
                s_contexts[s_count++] = context;
            }
        }
    }
}

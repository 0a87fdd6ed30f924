using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace Appliance.Runtime;

/// <summary>
/// An async method builder for <see cref="ValueTask"/> methods on the request path whose suspended state lives in
/// a box taken from a shared pool and given back when the caller has read the result.
/// </summary>
/// <remarks>
/// The runtime's PoolingAsyncValueTaskMethodBuilder keeps one box per thread and one per core. That suits a
/// method suspended by few callers at once; a proxy has one suspended exchange per client connection, its
/// continuations hop between thread-pool threads, and most boxes miss those caches (measured: three boxes, about
/// 300 bytes, per proxied request). This pool holds up to <see cref="PoolSize"/> boxes per method, so the steady
/// state allocates nothing whatever the concurrency. Same contract as any ValueTask: await it once.
/// The execution context is captured when the method first suspends and restored around each resumption, as the
/// runtime's builders do.
/// </remarks>
[StructLayout(LayoutKind.Auto)]
public struct PooledValueTaskMethodBuilder
{
    private PooledValueTaskMethodBuilder<VoidResult> _inner;

    public static PooledValueTaskMethodBuilder Create() => default;

    public readonly ValueTask Task => _inner.UntypedTask;

#pragma warning disable CA1822 // the compiler calls Start on the builder instance
    public readonly void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine =>
        AsyncMethodBuilderCore.Start(ref stateMachine);
#pragma warning restore CA1822

    public readonly void SetStateMachine(IAsyncStateMachine stateMachine)
    {
    }

    public void SetResult() => _inner.SetResult(default);

    public void SetException(Exception exception) => _inner.SetException(exception);

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine =>
        _inner.AwaitOnCompleted(ref awaiter, ref stateMachine);

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine =>
        _inner.AwaitUnsafeOnCompleted(ref awaiter, ref stateMachine);
}

/// <summary>The result type of the non-generic builder.</summary>
public readonly struct VoidResult;

/// <inheritdoc cref="PooledValueTaskMethodBuilder"/>
[StructLayout(LayoutKind.Auto)]
public struct PooledValueTaskMethodBuilder<TResult>
{
    /// <summary>Boxes kept per async method (beyond it, finished boxes are left to the GC).</summary>
    public const int PoolSize = 1024;

    private PooledBox<TResult>? _box;
    private TResult? _result;
    private Exception? _exception;

    public static PooledValueTaskMethodBuilder<TResult> Create() => default;

    public readonly ValueTask<TResult> Task =>
        _box is not null ? new ValueTask<TResult>(_box, _box.Version)
        : _exception is not null ? ValueTask.FromException<TResult>(_exception)
        : new ValueTask<TResult>(_result!);

    internal readonly ValueTask UntypedTask =>
        _box is not null ? new ValueTask(_box, _box.Version)
        : _exception is not null ? ValueTask.FromException(_exception)
        : default;

#pragma warning disable CA1822 // the compiler calls Start on the builder instance
    public readonly void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine =>
        AsyncMethodBuilderCore.Start(ref stateMachine);
#pragma warning restore CA1822

    public readonly void SetStateMachine(IAsyncStateMachine stateMachine)
    {
    }

    public void SetResult(TResult result)
    {
        if (_box is null)
        {
            _result = result; // completed without suspending: no box at all
        }
        else
        {
            _box.SetResult(result);
        }
    }

    public void SetException(Exception exception)
    {
        if (_box is null)
        {
            _exception = exception;
        }
        else
        {
            _box.SetException(exception);
        }
    }

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine =>
        awaiter.OnCompleted(GetBox(ref stateMachine).MoveNextAction);

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine =>
        awaiter.UnsafeOnCompleted(GetBox(ref stateMachine).MoveNextAction);

    private PooledBox<TResult> GetBox<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine
    {
        if (_box is not null)
        {
            return _box; // already running from its box: the state machine inside it is the one awaiting
        }

        PooledBox<TResult, TStateMachine> box = PooledBox<TResult, TStateMachine>.Rent();
        // This builder lives inside the state machine: point it at the box before the copy, so the copy in the box
        // (the one that runs from now on) knows its box too (the runtime's builders do the same).
        _box = box;
        box.StateMachine = stateMachine;
        box.Context = ExecutionContext.Capture();
        return box;
    }
}

/// <summary>Starts a state machine as the runtime's builders do (execution and synchronization context restored after).</summary>
internal static class AsyncMethodBuilderCore
{
    public static void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine =>
        AsyncValueTaskMethodBuilder.Create().Start(ref stateMachine);
}

/// <summary>The completion side of a pooled box: what the awaiting caller sees.</summary>
public abstract class PooledBox<TResult> : IValueTaskSource<TResult>, IValueTaskSource
{
    /// <summary>Continuations run inline, like the runtime's builders (no extra thread hop per await).</summary>
    private ManualResetValueTaskSourceCore<TResult> _core = new() { RunContinuationsAsynchronously = false };

    internal short Version => _core.Version;

    /// <summary>The continuation handed to awaiters: made once per box, so resuming allocates nothing.</summary>
    internal Action MoveNextAction { get; private protected init; } = null!;

    internal void SetResult(TResult result) => _core.SetResult(result);

    internal void SetException(Exception exception) => _core.SetException(exception);

    public TResult GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            _core.Reset();
            Return();
        }
    }

    void IValueTaskSource.GetResult(short token) => GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    /// <summary>Clears the state machine and goes back to the pool.</summary>
    private protected abstract void Return();
}

/// <summary>Which threads keep the larger cache of boxes.</summary>
public static class PooledBoxes
{
    [ThreadStatic]
    private static bool t_loopThread;

    /// <summary>True on a thread that called <see cref="MarkLoopThread"/>.</summary>
    internal static bool OnLoopThread => t_loopThread;

    /// <summary>An event loop's thread, once at its start: it runs many connections' exchanges at once.</summary>
    public static void MarkLoopThread() => t_loopThread = true;
}

/// <summary>The box of one async method: its state machine, the context it resumes in, and its pool.</summary>
internal sealed class PooledBox<TResult, TStateMachine> : PooledBox<TResult>
    where TStateMachine : IAsyncStateMachine
{
    private static readonly ContextCallback s_moveNext = static state => ((PooledBox<TResult, TStateMachine>)state!).StateMachine.MoveNext();
    private static readonly Stack<PooledBox<TResult, TStateMachine>> s_pool = new();

    // Boxes kept per thread in front of the shared pool: an exchange mostly ends on the thread it started on (the
    // connection's event thread, which runs many connections' exchanges at once), so most rents and returns take no lock.
    // An event-loop thread keeps up to 256: S3's 16 HTTP/2 connections of 32 streams start 32 exchanges per TLS record
    // read and end them one by one, and with 32 slots most of those 512 boxes went through the lock (1.2 % of the CPU
    // in Monitor.Enter/Exit). Other threads (the thread pool's, where few exchanges run and boxes left in a cache are
    // never trimmed) keep 32.
    private const int ThreadCacheSize = 32;
    private const int LoopThreadCacheSize = 256;
    [ThreadStatic]
    private static PooledBox<TResult, TStateMachine>?[]? t_cache;
    [ThreadStatic]
    private static int t_cached;

    public TStateMachine StateMachine = default!;
    public ExecutionContext? Context;

    private PooledBox() => MoveNextAction = MoveNext;

    public static PooledBox<TResult, TStateMachine> Rent()
    {
        if (t_cached > 0)
        {
            int i = --t_cached;
            PooledBox<TResult, TStateMachine> cached = t_cache![i]!;
            t_cache[i] = null;
            return cached;
        }

        lock (s_pool)
        {
            if (s_pool.TryPop(out PooledBox<TResult, TStateMachine>? box))
            {
                return box;
            }
        }

        return new PooledBox<TResult, TStateMachine>();
    }

    private void MoveNext()
    {
        ExecutionContext? context = Context;
        if (context is null)
        {
            StateMachine.MoveNext();
        }
        else
        {
            ExecutionContext.Run(context, s_moveNext, this);
        }
    }

    private protected override void Return()
    {
        StateMachine = default!;
        Context = null;
        PooledBox<TResult, TStateMachine>?[] cache = t_cache ??=
            new PooledBox<TResult, TStateMachine>?[PooledBoxes.OnLoopThread ? LoopThreadCacheSize : ThreadCacheSize];
        if (t_cached < cache.Length)
        {
            cache[t_cached++] = this;
            return;
        }

        lock (s_pool)
        {
            if (s_pool.Count < PooledValueTaskMethodBuilder<TResult>.PoolSize)
            {
                s_pool.Push(this);
            }
        }
    }
}

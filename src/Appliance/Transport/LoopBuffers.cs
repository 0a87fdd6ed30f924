using System.Buffers;

namespace Appliance.Transport;

/// <summary>
/// Buffers kept by each event loop's thread, in front of the shared ArrayPool, for the three sizes connections read and
/// write with most (4 KiB: a client connection's reads, an upstream connection's write segments, sealed TLS records
/// of a small response; 32 KiB: a client connection's write segments; 64 KiB: an upstream connection's reads).
/// </summary>
/// <remarks>
/// A connection takes its read buffer when data is announced and gives it back once it has parsed what came (an idle
/// connection holds none). With io_uring reads (<see cref="SocketRing"/>) every connection a round of events woke
/// holds its buffer until the round's reads are made together: hundreds at once under HTTP/2 proxying (16 client
/// connections of 32 streams), where the shared pool keeps some 32 arrays a size per core and allocated the rest
/// (32 KiB per proxied request, measured); an upstream request head, which then goes through the connection's pipe,
/// holds a write segment the same way, and so does every response of the round (32 KiB) until the round's sends
/// return it: the shared pool's per-thread slot held one, the rest took its per-core locks. Up to <see cref="Kept"/>
/// buffers of 4 and 64 KiB, and <see cref="KeptMedium"/> of 32 KiB, stay here; beyond that, and off the loop threads,
/// the shared pool is used as before.
/// </remarks>
internal static class LoopBuffers
{
    public const int Kept = 1024;
    public const int KeptMedium = 256;
    private const int Small = 4096, Medium = 32768, Large = 65536;

    [ThreadStatic]
    private static byte[]?[]? t_small;
    [ThreadStatic]
    private static byte[]?[]? t_large;
    [ThreadStatic]
    private static byte[]?[]? t_medium;
    [ThreadStatic]
    private static int t_smallCount;
    [ThreadStatic]
    private static int t_mediumCount;
    [ThreadStatic]
    private static int t_largeCount;

    public static byte[] Rent(int size)
    {
        if (size == Small && t_smallCount > 0)
        {
            return Take(t_small!, ref t_smallCount);
        }

        if (size == Medium && t_mediumCount > 0)
        {
            return Take(t_medium!, ref t_mediumCount);
        }

        if (size == Large && t_largeCount > 0)
        {
            return Take(t_large!, ref t_largeCount);
        }

        return ArrayPool<byte>.Shared.Rent(size);
    }

    public static void Return(byte[] buffer)
    {
        if (EventLoop.OnLoopThread)
        {
            if (buffer.Length == Small && t_smallCount < Kept)
            {
                (t_small ??= new byte[Kept][])[t_smallCount++] = buffer;
                return;
            }

            if (buffer.Length == Medium && t_mediumCount < KeptMedium)
            {
                (t_medium ??= new byte[KeptMedium][])[t_mediumCount++] = buffer;
                return;
            }

            if (buffer.Length == Large && t_largeCount < Kept)
            {
                (t_large ??= new byte[Kept][])[t_largeCount++] = buffer;
                return;
            }
        }

        ArrayPool<byte>.Shared.Return(buffer);
    }

    private static byte[] Take(byte[]?[] stack, ref int count)
    {
        byte[] buffer = stack[--count]!;
        stack[count] = null;
        return buffer;
    }
}

/// <summary>
/// <see cref="LoopBuffers"/> as an ArrayPool for code that takes one (the TLS record layer's sealed records,
/// <see cref="Appliance.Tls.RecordBuffers"/>): on a loop thread a request up to 4 KiB gets a kept 4 KiB buffer, so a
/// round that seals many connections' records and sends them together keeps them on the thread; elsewhere, and for
/// more, the shared pool.
/// </summary>
internal sealed class LoopArrayPool : ArrayPool<byte>
{
    public static readonly LoopArrayPool Instance = new();
    private const int Small = 4096;

    public override byte[] Rent(int minimumLength) =>
        minimumLength <= Small && EventLoop.OnLoopThread ? LoopBuffers.Rent(Small) : Shared.Rent(minimumLength);

    public override void Return(byte[] array, bool clearArray = false)
    {
        if (clearArray)
        {
            Array.Clear(array);
        }

        LoopBuffers.Return(array);
    }
}

using System.Buffers;

namespace Appliance.Transport;

/// <summary>
/// Buffers kept by each event loop's thread, in front of the shared ArrayPool, for the two sizes connections read and
/// write with most (4 KiB: a client connection's reads, an upstream connection's write segments; 64 KiB: an upstream
/// connection's reads).
/// </summary>
/// <remarks>
/// A connection takes its read buffer when data is announced and gives it back once it has parsed what came (an idle
/// connection holds none). With io_uring reads (<see cref="SocketRing"/>) every connection a round of events woke
/// holds its buffer until the round's reads are made together: hundreds at once under HTTP/2 proxying (16 client
/// connections of 32 streams), where the shared pool keeps some 32 arrays a size per core and allocated the rest
/// (32 KiB per proxied request, measured); an upstream request head, which then goes through the connection's pipe,
/// holds a write segment the same way. Up to <see cref="Kept"/> buffers a size stay here; beyond that, and off
/// the loop threads, the shared pool is used as before.
/// </remarks>
internal static class LoopBuffers
{
    public const int Kept = 1024;
    private const int Small = 4096, Large = 65536;

    [ThreadStatic]
    private static byte[]?[]? t_small;
    [ThreadStatic]
    private static byte[]?[]? t_large;
    [ThreadStatic]
    private static int t_smallCount;
    [ThreadStatic]
    private static int t_largeCount;

    public static byte[] Rent(int size)
    {
        if (size == Small && t_smallCount > 0)
        {
            return Take(t_small!, ref t_smallCount);
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

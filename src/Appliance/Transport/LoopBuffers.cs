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
    public const int Small = 4096;
    private const int Medium = 32768, Large = 65536;

    /// <summary>Per size class (4, 32, 64 KiB): the kept buffers and how many there are.</summary>
    [ThreadStatic]
    private static byte[]?[]?[]? t_stacks;
    [ThreadStatic]
    private static int[]? t_counts;

    private static int ClassOf(int size) => size switch { Small => 0, Medium => 1, Large => 2, _ => -1 };

    public static byte[] Rent(int size)
    {
        int c = ClassOf(size);
        if (c >= 0 && t_counts is { } counts && counts[c] > 0)
        {
            byte[]?[] stack = t_stacks![c]!;
            int n = --counts[c];
            byte[] buffer = stack[n]!;
            stack[n] = null;
            return buffer;
        }

        return ArrayPool<byte>.Shared.Rent(size);
    }

    public static void Return(byte[] buffer)
    {
        int c = ClassOf(buffer.Length);
        if (c >= 0 && EventLoop.OnLoopThread)
        {
            int[] counts = t_counts ??= new int[3];
            byte[]?[] stack = (t_stacks ??= new byte[]?[]?[3])[c] ??= new byte[c == 1 ? KeptMedium : Kept][];
            if (counts[c] < stack.Length)
            {
                stack[counts[c]++] = buffer;
                return;
            }
        }

        ArrayPool<byte>.Shared.Return(buffer);
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

    public override byte[] Rent(int minimumLength) =>
        minimumLength <= LoopBuffers.Small && EventLoop.OnLoopThread ? LoopBuffers.Rent(LoopBuffers.Small) : Shared.Rent(minimumLength);

    public override void Return(byte[] array, bool clearArray = false)
    {
        if (clearArray)
        {
            Array.Clear(array);
        }

        LoopBuffers.Return(array);
    }
}

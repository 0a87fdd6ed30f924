using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Appliance.Protocol;

/// <summary>
/// Copies of the short byte strings a message is made of (names, values, a target): up to 32 bytes they are two
/// overlapping word or vector moves, inline, where <see cref="ReadOnlySpan{T}.CopyTo(Span{T})"/> is a call into the
/// general memmove and its dispatch on size (about 30 instructions for a field name). Longer ones are a block copy;
/// through <see cref="To"/>, overlapping ones go to memmove.
/// </summary>
public static class ShortCopy
{
    /// <summary>Copies <paramref name="source"/> to the start of <paramref name="destination"/> (which must hold it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void To(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if ((uint)source.Length > (uint)destination.Length)
        {
            ThrowTooShort();
        }

        nint distance = Unsafe.ByteOffset(ref MemoryMarshal.GetReference(source), ref MemoryMarshal.GetReference(destination));
        if (distance > -source.Length && distance < source.Length)
        {
            // Overlapping (a value rewritten from a slice of itself): the moves below would read what they wrote.
            source.CopyTo(destination);
            return;
        }

        Copy(ref MemoryMarshal.GetReference(destination), source);
    }

    /// <summary>
    /// Copies <paramref name="source"/> to <paramref name="destination"/>, where the caller has made room and which
    /// the source does not overlap (a buffer's free end, written from elsewhere).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Copy(ref byte destination, ReadOnlySpan<byte> source)
    {
        ref byte from = ref MemoryMarshal.GetReference(source);
        int n = source.Length;
        if (n >= 16)
        {
            if (n <= 32)
            {
                Vector128.StoreUnsafe(Vector128.LoadUnsafe(ref from), ref destination);
                Vector128.StoreUnsafe(Vector128.LoadUnsafe(ref from, (nuint)(n - 16)), ref destination, (nuint)(n - 16));
            }
            else
            {
                Unsafe.CopyBlockUnaligned(ref destination, ref from, (uint)n);
            }
        }
        else if (n >= 8)
        {
            Unsafe.WriteUnaligned(ref destination, Unsafe.ReadUnaligned<ulong>(ref from));
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref destination, n - 8), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, n - 8)));
        }
        else if (n >= 4)
        {
            Unsafe.WriteUnaligned(ref destination, Unsafe.ReadUnaligned<uint>(ref from));
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref destination, n - 4), Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref from, n - 4)));
        }
        else
        {
            for (int i = 0; i < n; i++)
            {
                Unsafe.Add(ref destination, i) = Unsafe.Add(ref from, i);
            }
        }
    }

    private static void ThrowTooShort() => throw new ArgumentException("Destination is too short.", "destination");
}

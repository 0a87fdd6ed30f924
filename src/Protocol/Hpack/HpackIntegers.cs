using System.Buffers;

namespace Appliance.Protocol.Hpack;

/// <summary>
/// Prefix-coded integers (RFC 7541 §5.1): the value fills the low N bits of the first byte, and if it does not fit,
/// continues in 7-bit groups, least significant first, each byte but the last with its high bit set.
/// </summary>
public static class HpackIntegers
{
    // An int needs at most five 7-bit groups (35 bits); a sixth continuation byte can only be padding or overflow.
    private const int MaxContinuationBytes = 5;

    /// <summary>The number of bytes <paramref name="value"/> takes with an N-bit prefix.</summary>
    public static int EncodedLength(int value, int prefixBits)
    {
        int max = (1 << prefixBits) - 1;
        if (value < max)
        {
            return 1;
        }

        int length = 2;
        for (uint rest = (uint)(value - max); rest >= 0x80; rest >>= 7)
        {
            length++;
        }

        return length;
    }

    /// <summary>
    /// Writes <paramref name="value"/> (not negative) with an N-bit prefix; <paramref name="flags"/> are the
    /// representation's bits above the prefix in the first byte. False when <paramref name="destination"/> is too small.
    /// </summary>
    public static bool TryEncode(int value, int prefixBits, byte flags, Span<byte> destination, out int written)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        int max = (1 << prefixBits) - 1;
        if (value < max)
        {
            if (destination.IsEmpty)
            {
                written = 0;
                return false;
            }

            destination[0] = (byte)(flags | value);
            written = 1;
            return true;
        }

        int length = EncodedLength(value, prefixBits);
        if (destination.Length < length)
        {
            written = 0;
            return false;
        }

        destination[0] = (byte)(flags | max);
        uint rest = (uint)(value - max);
        int i = 1;
        for (; rest >= 0x80; rest >>= 7)
        {
            destination[i++] = (byte)(rest | 0x80);
        }

        destination[i++] = (byte)rest;
        written = i;
        return true;
    }

    /// <summary>
    /// Reads an integer with an N-bit prefix from the start of <paramref name="source"/> (the first byte's flag bits
    /// are ignored). <see cref="OperationStatus.NeedMoreData"/> when the encoding continues past the end;
    /// <see cref="OperationStatus.InvalidData"/> for a value above <see cref="int.MaxValue"/> or more continuation bytes
    /// than an int can need (§5.1: implementations must guard against overflow).
    /// </summary>
    public static OperationStatus Decode(ReadOnlySpan<byte> source, int prefixBits, out int value, out int consumed)
    {
        value = 0;
        consumed = 0;
        if (source.IsEmpty)
        {
            return OperationStatus.NeedMoreData;
        }

        int max = (1 << prefixBits) - 1;
        int prefix = source[0] & max;
        if (prefix < max)
        {
            value = prefix;
            consumed = 1;
            return OperationStatus.Done;
        }

        long result = max;
        for (int i = 1; i <= MaxContinuationBytes; i++)
        {
            if (i >= source.Length)
            {
                return OperationStatus.NeedMoreData;
            }

            byte b = source[i];
            result += (long)(b & 0x7F) << (7 * (i - 1));
            if (result > int.MaxValue)
            {
                return OperationStatus.InvalidData;
            }

            if ((b & 0x80) == 0)
            {
                value = (int)result;
                consumed = i + 1;
                return OperationStatus.Done;
            }
        }

        return OperationStatus.InvalidData;
    }
}

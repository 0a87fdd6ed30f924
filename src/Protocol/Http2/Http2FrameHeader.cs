using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Appliance.Protocol.Http2;

/// <summary>
/// The 9-octet frame header (RFC 9113 §4.1): 24-bit payload length, type, flags, a reserved bit and a 31-bit stream
/// identifier. The reserved bit has no meaning and must be ignored when received (§4.1), and is sent as zero.
/// </summary>
public readonly struct Http2FrameHeader
{
    /// <summary>Size of the header on the wire.</summary>
    public const int Size = 9;

    /// <summary>The largest payload length the 24-bit field can carry (and the ceiling of SETTINGS_MAX_FRAME_SIZE).</summary>
    public const int MaxLength = 0xFF_FFFF;

    private const uint StreamIdMask = 0x7FFF_FFFF;

    public Http2FrameHeader(int length, Http2FrameType type, Http2FrameFlags flags, int streamId)
    {
        Length = length;
        Type = type;
        Flags = flags;
        StreamId = streamId;
    }

    /// <summary>Payload length, not counting these 9 octets.</summary>
    public int Length { get; }

    public Http2FrameType Type { get; }

    public Http2FrameFlags Flags { get; }

    /// <summary>Stream identifier with the reserved bit cleared; 0 for frames about the connection.</summary>
    public int StreamId { get; }

    /// <summary>False for extension types, which the connection must ignore and discard (§4.1, §5.5).</summary>
    public bool IsKnownType => Type <= Http2FrameType.Continuation;

    public bool HasFlag(Http2FrameFlags flag) => (Flags & flag) != 0;

    /// <summary>
    /// Reads a header when all 9 octets are available and advances past it; otherwise returns false and leaves the
    /// reader where it was.
    /// </summary>
    public static bool TryRead(ref SequenceReader<byte> reader, out Http2FrameHeader header)
    {
        if (!TryPeek(ref reader, out header))
        {
            return false;
        }

        reader.Advance(Size);
        return true;
    }

    /// <summary>Writes the header into the first 9 bytes of <paramref name="destination"/>.</summary>
    public void Write(Span<byte> destination)
    {
        if ((uint)Length > MaxLength)
        {
            ThrowLengthOutOfRange();
        }

        _ = destination[Size - 1]; // one bounds check for the whole header
        destination[0] = (byte)(Length >> 16);
        destination[1] = (byte)(Length >> 8);
        destination[2] = (byte)Length;
        destination[3] = (byte)Type;
        destination[4] = (byte)Flags;
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(5), (uint)StreamId & StreamIdMask);
    }

    public override string ToString() => $"{Type} flags=0x{(byte)Flags:x2} stream={StreamId} length={Length}";

    /// <summary>Reads a header without advancing the reader.</summary>
    internal static bool TryPeek(ref SequenceReader<byte> reader, out Http2FrameHeader header)
    {
        ReadOnlySpan<byte> unread = reader.UnreadSpan;
        if (unread.Length >= Size)
        {
            header = Parse(unread);
            return true;
        }

        Span<byte> copy = stackalloc byte[Size];
        if (!reader.TryCopyTo(copy))
        {
            header = default;
            return false;
        }

        header = Parse(copy);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Http2FrameHeader Parse(ReadOnlySpan<byte> source)
    {
        _ = source[Size - 1];
        int length = (source[0] << 16) | (source[1] << 8) | source[2];
        int streamId = (int)(BinaryPrimitives.ReadUInt32BigEndian(source.Slice(5)) & StreamIdMask);
        return new Http2FrameHeader(length, (Http2FrameType)source[3], (Http2FrameFlags)source[4], streamId);
    }

    private static void ThrowLengthOutOfRange() =>
        throw new InvalidOperationException($"A frame payload cannot exceed {MaxLength} bytes.");
}

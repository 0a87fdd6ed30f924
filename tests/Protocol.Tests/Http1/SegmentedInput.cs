using System.Buffers;

namespace Appliance.Protocol.Tests.Http1;

/// <summary>Input bytes cut into linked segments once, so any window of them is a (multi-segment) ReadOnlySequence.</summary>
internal sealed class SegmentedInput
{
    private readonly List<Segment> _segments = [];

    public SegmentedInput(byte[] data, int segmentSize)
    {
        Length = data.Length;
        Segment? last = null;
        for (int offset = 0; offset < data.Length; offset += segmentSize)
        {
            var memory = new ReadOnlyMemory<byte>(data, offset, Math.Min(segmentSize, data.Length - offset));
            var segment = new Segment(memory, offset);
            if (last is not null)
            {
                last.SetNext(segment);
            }

            _segments.Add(segment);
            last = segment;
        }
    }

    public long Length { get; }

    public int SegmentCount => _segments.Count;

    /// <summary>Bytes [start, end) of the input.</summary>
    public ReadOnlySequence<byte> Slice(long start, long end)
    {
        if (start >= end)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        Segment first = _segments[Find(start, startInclusive: true)];
        Segment last = _segments[Find(end, startInclusive: false)];
        return new ReadOnlySequence<byte>(first, (int)(start - first.RunningIndex), last, (int)(end - last.RunningIndex));
    }

    /// <summary>A sequence made of the given parts, one segment each.</summary>
    public static ReadOnlySequence<byte> Create(params byte[][] parts)
    {
        Segment? first = null;
        Segment? last = null;
        long running = 0;
        foreach (byte[] part in parts)
        {
            var segment = new Segment(part, running);
            running += part.Length;
            if (last is null)
            {
                first = segment;
            }
            else
            {
                last.SetNext(segment);
            }

            last = segment;
        }

        return first is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(first, 0, last!, last!.Memory.Length);
    }

    // The segment holding byte `position` (startInclusive) or ending at or after `position` (exclusive end).
    private int Find(long position, bool startInclusive)
    {
        int lo = 0;
        int hi = _segments.Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            long segmentEnd = _segments[mid].RunningIndex + _segments[mid].Memory.Length;
            bool before = startInclusive ? segmentEnd <= position : segmentEnd < position;
            if (before)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public void SetNext(Segment next) => Next = next;
    }
}

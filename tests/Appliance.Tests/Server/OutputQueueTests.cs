using System.Buffers;
using Appliance.Server;

namespace Appliance.Tests.Server;

/// <summary>
/// The HTTP/2 output queue: what producers write comes out of <see cref="OutputQueue.TakeAll"/> whole and in order,
/// in full segments and at most one partial one, whatever the sizes asked for; misuse fails clearly.
/// </summary>
public sealed class OutputQueueTests
{
    private static byte[] Drain(OutputQueue queue, ref ArraySegment<byte>[] batch, out int segments, out int smallestInner)
    {
        int count = queue.TakeAll(ref batch);
        var all = new List<byte>();
        segments = count;
        smallestInner = int.MaxValue;
        for (int i = 0; i < count; i++)
        {
            all.AddRange(batch[i]);
            if (i < count - 1)
            {
                smallestInner = Math.Min(smallestInner, batch[i].Count);
            }

            ArrayPool<byte>.Shared.Return(batch[i].Array!);
            batch[i] = default;
        }

        return [.. all];
    }

    [Fact]
    public void Bytes_come_out_in_order_in_full_segments_and_one_partial()
    {
        var queue = new OutputQueue();
        var batch = new ArraySegment<byte>[4];
        var random = new Random(11);
        var expected = new List<byte>();
        for (int round = 0; round < 20; round++)
        {
            int pieces = random.Next(1, 40);
            for (int p = 0; p < pieces; p++)
            {
                // Frame-like writes: a 9-byte header asked for alone, then payloads of any size through Write.
                Span<byte> header = queue.GetSpan(9);
                for (int i = 0; i < 9; i++)
                {
                    header[i] = (byte)(round + p + i);
                    expected.Add(header[i]);
                }

                queue.Advance(9);
                byte[] payload = new byte[random.Next(0, 20_000)];
                random.NextBytes(payload);
                queue.Write(payload);
                expected.AddRange(payload);
            }

            Assert.False(queue.IsEmpty);
            byte[] taken = Drain(queue, ref batch, out _, out int smallestInner);
            Assert.Equal(expected, taken);
            Assert.True(queue.IsEmpty);
            expected.Clear();
            // Every segment but the last is full, short only of a header that did not fit its end (one write each).
            Assert.True(smallestInner >= OutputQueue.SegmentSize - 8, $"a segment of {smallestInner} bytes before the last");
        }

        Assert.Equal(0, queue.TakeAll(ref batch));
    }

    [Fact]
    public void A_span_larger_than_a_segment_is_contiguous()
    {
        var queue = new OutputQueue();
        queue.Write("abc"u8);
        Span<byte> big = queue.GetSpan(100_000);
        Assert.True(big.Length >= 100_000);
        big[..100_000].Fill(7);
        queue.Advance(100_000);
        var batch = new ArraySegment<byte>[1];
        byte[] taken = Drain(queue, ref batch, out int segments, out _);
        Assert.Equal(2, segments);
        Assert.Equal(100_003, taken.Length);
        Assert.Equal("abc"u8.ToArray(), taken[..3]);
        Assert.All(taken[3..], b => Assert.Equal(7, b));
    }

    [Fact]
    public void Advancing_past_the_span_fails_and_release_empties_the_queue()
    {
        var queue = new OutputQueue();
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.Advance(1));
        int length = queue.GetSpan(10).Length;
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.Advance(length + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.Advance(-1));
        queue.Advance(10);
        queue.Write(new byte[40_000]);
        queue.Release();
        Assert.True(queue.IsEmpty);
        var batch = new ArraySegment<byte>[4];
        Assert.Equal(0, queue.TakeAll(ref batch));
    }
}

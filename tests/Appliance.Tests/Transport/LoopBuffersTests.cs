using Appliance.Transport;

namespace Appliance.Tests.Transport;

/// <summary>
/// The buffers an event loop keeps on its thread: the sizes it keeps (4, 32 and 64 KiB), most recently returned
/// first, and the pool the TLS record layer seals into (a kept 4 KiB buffer for up to 4 KiB on a loop thread, the
/// shared pool elsewhere and for more).
/// </summary>
public sealed class LoopBuffersTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private static Task<T> OnLoop<T>(int index, Func<T> work)
    {
        var loop = new EventLoop(index);
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Post(() =>
        {
            try
            {
                done.TrySetResult(work());
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        });
        return done.Task.WaitAsync(Patience);
    }

    [Theory]
    [InlineData(4096)]
    [InlineData(32768)]
    [InlineData(65536)]
    public async Task A_loop_thread_gets_back_the_buffer_it_returned_last_for_each_kept_size(int size)
    {
        (bool same, bool sameAgain) = await OnLoop(94 + (size >> 12), () =>
        {
            byte[] first = new byte[size], second = new byte[size];
            LoopBuffers.Return(first);
            LoopBuffers.Return(second);
            byte[] a = LoopBuffers.Rent(size);
            byte[] b = LoopBuffers.Rent(size);
            return (ReferenceEquals(a, second), ReferenceEquals(b, first));
        });
        Assert.True(same);
        Assert.True(sameAgain);
    }

    [Fact]
    public async Task The_record_pool_gives_a_kept_4_KiB_buffer_on_a_loop_thread_and_the_shared_pool_for_more()
    {
        (int small, bool kept, int large, int odd) = await OnLoop(120, () =>
        {
            byte[] record = LoopArrayPool.Instance.Rent(200); // a small response's sealed record
            int length = record.Length;
            LoopArrayPool.Instance.Return(record);
            bool keptIt = ReferenceEquals(LoopArrayPool.Instance.Rent(4096), record);
            byte[] big = LoopArrayPool.Instance.Rent(16_500); // a full record: past what is kept
            LoopArrayPool.Instance.Return(big);
            byte[] other = System.Buffers.ArrayPool<byte>.Shared.Rent(300); // from the shared pool: taken back too
            LoopArrayPool.Instance.Return(other, clearArray: true);
            return (length, keptIt, big.Length, other.Length);
        });
        Assert.Equal(4096, small);
        Assert.True(kept);
        Assert.True(large >= 16_500);
        Assert.Equal(512, odd);
    }

    [Fact]
    public void Off_a_loop_thread_the_record_pool_is_the_shared_pool()
    {
        byte[] record = LoopArrayPool.Instance.Rent(200);
        Assert.Equal(256, record.Length); // the shared pool's size class, not a kept 4 KiB buffer
        LoopArrayPool.Instance.Return(record);
    }
}

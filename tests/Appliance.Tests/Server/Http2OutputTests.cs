using System.Collections.Concurrent;
using Appliance.Protocol.Http2;
using Appliance.Server;

namespace Appliance.Tests.Server;

/// <summary>
/// The HTTP/2 connection's writer: when a response's frames reach the socket, and in how many writes. Every write is
/// a TLS record and a send on a real connection, so these are the syscall counts of HTTP/2 responses.
/// </summary>
public sealed class Http2OutputTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Records each write the copy loop makes, and on which thread; the first write can be held at a gate.</summary>
    private sealed class RecordingStream(bool holdFirstWrite = false) : Stream
    {
        private readonly ManualResetEventSlim _gate = new(!holdFirstWrite);
        private int _count;

        public ConcurrentQueue<(byte[] Bytes, int Thread)> Writes { get; } = new();

        public SemaphoreSlim Written { get; } = new(0);

        public ManualResetEventSlim FirstWriteStarted { get; } = new();

        public void Release() => _gate.Set();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Interlocked.Increment(ref _count) == 1)
            {
                FirstWriteStarted.Set();
                // Synchronous on purpose: a copy loop running on the caller's thread would hold the caller here.
                _gate.Wait(Timeout);
            }

            Writes.Enqueue((buffer.ToArray(), Environment.CurrentManagedThreadId));
            Written.Release();
            return default;
        }

        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    }

    private static RequestContext Respond(Http2Stream stream, int status, int length)
    {
        RequestContext context = stream.Context;
        context.StatusCode = status;
        context.ResponseContentLength = length;
        return context;
    }

    private static Http2Stream NewStream(Http2Output output, int id)
    {
        var info = new ConnectionInfo { Id = 1, ListenerName = "h2", RemoteEndPoint = null, LocalEndPoint = null };
        var stream = new Http2Stream(null!, output, info);
        stream.Initialize(id, Http2Settings.DefaultInitialWindowSize, Http2Settings.DefaultInitialWindowSize);
        return stream;
    }

    private static List<Http2FrameType> Frames(byte[] bytes)
    {
        var types = new List<Http2FrameType>();
        var reader = new System.Buffers.SequenceReader<byte>(new System.Buffers.ReadOnlySequence<byte>(bytes));
        while (Http2FrameHeader.TryRead(ref reader, out Http2FrameHeader header))
        {
            types.Add(header.Type);
            reader.Advance(header.Length);
        }

        Assert.Equal(0, reader.Remaining); // whole frames only
        return types;
    }

    [Fact]
    public async Task A_response_written_in_one_call_leaves_as_one_write_of_headers_and_data()
    {
        var transport = new RecordingStream();
        var output = new Http2Output(transport, 1 << 20);
        output.Start();
        Http2Stream stream = NewStream(output, 1);
        RequestContext context = Respond(stream, 200, 5);

        await stream.WriteAsync(context, "hello"u8.ToArray(), flush: false, CancellationToken.None);

        Assert.True(await transport.Written.WaitAsync(Timeout));
        Assert.Single(transport.Writes);
        Assert.True(transport.Writes.TryPeek(out (byte[] Bytes, int Thread) write));
        Assert.Equal([Http2FrameType.Headers, Http2FrameType.Data], Frames(write.Bytes));
        output.Complete();
        await output.Completion.WaitAsync(Timeout);
    }

    [Fact]
    public async Task With_one_handler_running_a_flush_writes_on_the_callers_thread_before_returning()
    {
        var transport = new RecordingStream();
        var output = new Http2Output(transport, 1 << 20);
        output.Start();
        output.HandlerRunning();

        output.WritePing(1);

        Assert.Single(transport.Writes); // already written: inline, no thread hop for a lone request
        Assert.True(transport.Writes.TryPeek(out (byte[] Bytes, int Thread) write));
        Assert.Equal(Environment.CurrentManagedThreadId, write.Thread);
        output.HandlerFinished();
        output.Complete();
        await output.Completion.WaitAsync(Timeout);
    }

    [Fact]
    public async Task With_other_handlers_running_a_flush_is_handed_off_and_later_frames_join_one_write()
    {
        var transport = new RecordingStream(holdFirstWrite: true);
        var output = new Http2Output(transport, 1 << 20);
        output.Start();
        output.HandlerRunning();
        output.HandlerRunning();
        output.HandlerRunning();

        output.WritePing(1); // returns at once although the socket write is held: it runs elsewhere
        Assert.True(transport.FirstWriteStarted.Wait(Timeout));
        output.WritePing(2);
        output.WritePing(3);
        transport.Release();

        Assert.True(await transport.Written.WaitAsync(Timeout));
        Assert.True(await transport.Written.WaitAsync(Timeout));
        (byte[] Bytes, int Thread)[] writes = [.. transport.Writes];
        Assert.Equal(2, writes.Length);
        Assert.NotEqual(Environment.CurrentManagedThreadId, writes[0].Thread);
        Assert.Equal([Http2FrameType.Ping], Frames(writes[0].Bytes));
        Assert.Equal([Http2FrameType.Ping, Http2FrameType.Ping], Frames(writes[1].Bytes));
        output.Complete();
        await output.Completion.WaitAsync(Timeout);
    }

    [Fact]
    public async Task Frames_written_but_not_flushed_wait_for_their_flush_even_when_the_copy_loop_is_free()
    {
        var transport = new RecordingStream(holdFirstWrite: true);
        var output = new Http2Output(transport, 1 << 20);
        output.Start();
        output.HandlerRunning();
        output.HandlerRunning();
        output.WritePing(1); // handed off, and held in the socket write
        Assert.True(transport.FirstWriteStarted.Wait(Timeout));

        // A read loop's batch: frames written one by one, flushed once at its end. The copy loop finishes its write in
        // the middle of it and must not take the part written so far.
        output.BeginBatch();
        output.WritePing(2);
        transport.Release();
        Assert.True(await transport.Written.WaitAsync(Timeout));
        output.WritePing(3);
        output.EndBatch();

        Assert.True(await transport.Written.WaitAsync(Timeout));
        (byte[] Bytes, int Thread)[] writes = [.. transport.Writes];
        Assert.Equal(2, writes.Length);
        Assert.Equal([Http2FrameType.Ping, Http2FrameType.Ping], Frames(writes[1].Bytes));
        output.HandlerFinished();
        output.HandlerFinished();
        output.Complete();
        await output.Completion.WaitAsync(Timeout);
    }

    [Fact]
    public async Task A_header_block_larger_than_a_segment_spans_segments_without_gaps()
    {
        var transport = new RecordingStream();
        var output = new Http2Output(transport, 1 << 20);
        output.Start();
        Http2Stream stream = NewStream(output, 1);
        RequestContext context = Respond(stream, 200, 0);
        // About 40 KB of header block in 16 KiB frames: HEADERS and CONTINUATIONs, back to back, written whole.
        for (int i = 0; i < 40; i++)
        {
            context.ResponseHeaders.Add(System.Text.Encoding.ASCII.GetBytes("x-filler-" + i),
                System.Text.Encoding.ASCII.GetBytes(new string((char)('a' + (i % 26)), 1000)));
        }

        await stream.WriteAsync(context, ReadOnlyMemory<byte>.Empty, flush: true, CancellationToken.None);
        output.Complete();
        await output.Completion.WaitAsync(Timeout);

        byte[] all = [.. transport.Writes.SelectMany(w => w.Bytes)];
        List<Http2FrameType> frames = Frames(all);
        Assert.Equal(Http2FrameType.Headers, frames[0]);
        Assert.True(frames.Count >= 3);
        Assert.All(frames.Skip(1).SkipLast(1), f => Assert.Equal(Http2FrameType.Continuation, f));
        Assert.Equal(Http2FrameType.Data, frames[^1]); // the empty DATA with END_STREAM
        // Segments are filled to the end (short only of a frame header that did not fit): one full write each.
        Assert.All(transport.Writes.SkipLast(1), w => Assert.True(w.Bytes.Length >= OutputQueue.SegmentSize - 8, $"a write of {w.Bytes.Length}"));
    }
}

using System.Buffers;
using Appliance.Protocol.Http2;
using BenchmarkDotNet.Attributes;

namespace Appliance.Benchmarks;

/// <summary>
/// HTTP/2 framing alone, no HPACK: reading a burst of requests (HEADERS + CONTINUATION + padded and plain DATA, with
/// a WINDOW_UPDATE and a PING between them) from one buffer and from 1 KiB segments, and writing responses
/// (HEADERS + DATA) into a reused buffer writer. All must report zero allocated bytes.
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class Http2FrameBenchmarks
{
    private const int Streams = 16;
    private const int MaxFrameSize = 16_384;

    private static readonly byte[] s_headerBlock = CreateHeaderBlock(180);
    private static readonly byte[] s_body = CreateHeaderBlock(1200);

    private readonly ArrayBufferWriter<byte> _output = new(64 * 1024);
    private ReadOnlySequence<byte> _single;
    private ReadOnlySequence<byte> _segmented;

    [GlobalSetup]
    public void Setup()
    {
        var input = new ArrayBufferWriter<byte>();
        for (int i = 0; i < Streams; i++)
        {
            int streamId = (2 * i) + 1;
            Http2FrameWriter.WriteHeaders(input, streamId, s_headerBlock, endStream: false, MaxFrameSize);
            Http2FrameWriter.WriteData(input, streamId, s_body, endStream: false);
            WritePaddedData(input, streamId, s_body.AsSpan(0, 300), padding: 20);
            Http2FrameWriter.WriteWindowUpdate(input, 0, 65_535);
            Http2FrameWriter.WritePing(input, (ulong)i, ack: false);
            Http2FrameWriter.WriteData(input, streamId, default, endStream: true);
        }

        byte[] bytes = input.WrittenSpan.ToArray();
        _single = new ReadOnlySequence<byte>(bytes);
        _segmented = Segment.Split(bytes, 1024);
    }

    [Benchmark(Baseline = true)]
    public long ReadFrames() => Read(_single);

    [Benchmark]
    public long ReadFramesFromSegments() => Read(_segmented);

    [Benchmark]
    public int WriteResponses()
    {
        _output.ResetWrittenCount();
        for (int i = 0; i < Streams; i++)
        {
            int streamId = (2 * i) + 1;
            Http2FrameWriter.WriteHeaders(_output, streamId, s_headerBlock, endStream: false, MaxFrameSize);
            Http2FrameWriter.WriteData(_output, streamId, s_body, endStream: true);
        }

        return _output.WrittenCount;
    }

    private static long Read(ReadOnlySequence<byte> input)
    {
        long total = 0;
        var reader = new SequenceReader<byte>(input);
        while (Http2FrameReader.TryReadFrame(ref reader, MaxFrameSize, out Http2FrameHeader header, out ReadOnlySequence<byte> payload, out _))
        {
            Http2FrameError error;
            switch (header.Type)
            {
                case Http2FrameType.Headers:
                    Http2FrameReader.TryReadHeaders(header, payload, out Http2HeadersFrame headers, out error);
                    total += headers.Fragment.Length;
                    break;
                case Http2FrameType.Data:
                    Http2FrameReader.TryReadData(header, payload, out Http2DataFrame data, out error);
                    total += data.Data.Length;
                    break;
                case Http2FrameType.WindowUpdate:
                    Http2FrameReader.TryReadWindowUpdate(header, payload, out int increment, out error);
                    total += increment;
                    break;
                case Http2FrameType.Ping:
                    Http2FrameReader.TryReadPing(header, payload, out ulong opaque, out error);
                    total += (long)(opaque & 1);
                    break;
                default:
                    error = default;
                    break;
            }

            if (error.IsError)
            {
                return -1;
            }
        }

        return total;
    }

    private static void WritePaddedData(IBufferWriter<byte> output, int streamId, ReadOnlySpan<byte> data, int padding)
    {
        int length = 1 + data.Length + padding;
        Span<byte> frame = output.GetSpan(Http2FrameHeader.Size + length);
        new Http2FrameHeader(length, Http2FrameType.Data, Http2FrameFlags.Padded, streamId).Write(frame);
        frame[Http2FrameHeader.Size] = (byte)padding;
        data.CopyTo(frame.Slice(Http2FrameHeader.Size + 1));
        frame.Slice(Http2FrameHeader.Size + 1 + data.Length, padding).Clear();
        output.Advance(Http2FrameHeader.Size + length);
    }

    private static byte[] CreateHeaderBlock(int length)
    {
        byte[] block = new byte[length];
        for (int i = 0; i < block.Length; i++)
        {
            block[i] = (byte)('a' + (i % 26));
        }

        return block;
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        private Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public static ReadOnlySequence<byte> Split(byte[] bytes, int size)
        {
            var first = new Segment(bytes.AsMemory(0, Math.Min(size, bytes.Length)), 0);
            Segment last = first;
            for (int offset = size; offset < bytes.Length; offset += size)
            {
                var next = new Segment(bytes.AsMemory(offset, Math.Min(size, bytes.Length - offset)), offset);
                last.Next = next;
                last = next;
            }

            return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
        }
    }
}

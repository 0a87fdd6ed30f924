using System.Buffers;
using Appliance.Protocol.Http2;

namespace Appliance.Protocol.Tests.Http2;

/// <summary>Every frame the server writes, read back by the frame reader.</summary>
public class Http2FrameRoundTripTests
{
    [Fact]
    public void Settings_round_trip_in_order()
    {
        Http2Setting[] sent =
        [
            new(Http2SettingId.HeaderTableSize, 0),
            new(Http2SettingId.EnablePush, 0),
            new(Http2SettingId.MaxConcurrentStreams, 100),
            new(Http2SettingId.InitialWindowSize, Http2Settings.MaxWindowSize),
            new(Http2SettingId.MaxFrameSize, Http2Settings.MaxAllowedFrameSize),
            new(Http2SettingId.MaxHeaderListSize, 32_768),
        ];

        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadSingle(w => Http2FrameWriter.WriteSettings(w, sent));

        Assert.Equal((Http2FrameType.Settings, Http2FrameFlags.None, 0, 36), (header.Type, header.Flags, header.StreamId, header.Length));
        Assert.True(Http2FrameReader.TryReadSettings(header, payload, out Http2SettingsFrame frame, out _));
        Assert.False(frame.IsAck);
        Assert.Equal(6, frame.Count);
        var received = new List<Http2Setting>();
        foreach (Http2Setting setting in frame)
        {
            received.Add(setting);
        }

        Assert.Equal(sent.Select(s => (s.Id, s.Value)), received.Select(s => (s.Id, s.Value)));
    }

    [Fact]
    public void Empty_settings_round_trip()
    {
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadSingle(w => Http2FrameWriter.WriteSettings(w, []));

        Assert.True(Http2FrameReader.TryReadSettings(header, payload, out Http2SettingsFrame frame, out _));
        Assert.Equal(0, frame.Count);
        Assert.False(frame.IsAck);
    }

    [Fact]
    public void Settings_ack_round_trips()
    {
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadSingle(Http2FrameWriter.WriteSettingsAck);

        Assert.Equal((Http2FrameType.Settings, Http2FrameFlags.Ack, 0, 0), (header.Type, header.Flags, header.StreamId, header.Length));
        Assert.True(Http2FrameReader.TryReadSettings(header, payload, out Http2SettingsFrame frame, out _));
        Assert.True(frame.IsAck);
        Assert.Equal(0, frame.Count);
    }

    [Theory]
    [InlineData(0UL, true)]
    [InlineData(0x0102030405060708UL, true)]
    [InlineData(ulong.MaxValue, false)]
    public void Ping_round_trips_its_opaque_data(ulong data, bool ack)
    {
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadSingle(w => Http2FrameWriter.WritePing(w, data, ack));

        Assert.Equal(ack ? Http2FrameFlags.Ack : Http2FrameFlags.None, header.Flags);
        Assert.True(Http2FrameReader.TryReadPing(header, payload, out ulong received, out _));
        Assert.Equal(data, received);
    }

    [Fact]
    public void Ping_ack_echoes_the_bytes_in_wire_order()
    {
        byte[] ping = Http2TestFrames.Build(Http2FrameType.Ping, Http2FrameFlags.None, 0, [1, 2, 3, 4, 5, 6, 7, 8]);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(ping));
        Assert.True(Http2FrameReader.TryReadFrame(ref reader, 16_384, out Http2FrameHeader header, out ReadOnlySequence<byte> payload, out _));
        Assert.True(Http2FrameReader.TryReadPing(header, payload, out ulong data, out _));

        byte[] ack = new byte[Http2FrameWriter.PingLength];
        Assert.Equal(17, Http2FrameWriter.WritePingAck(ack, data));
        Assert.Equal(Http2TestFrames.Build(Http2FrameType.Ping, Http2FrameFlags.Ack, 0, [1, 2, 3, 4, 5, 6, 7, 8]), ack);
    }

    [Theory]
    [InlineData(0, Http2ErrorCode.NoError, "")]
    [InlineData(int.MaxValue, Http2ErrorCode.EnhanceYourCalm, "too many resets")]
    [InlineData(7, (Http2ErrorCode)0xDEAD, "x")]
    public void GoAway_round_trips(int lastStreamId, Http2ErrorCode code, string debug)
    {
        byte[] debugData = System.Text.Encoding.ASCII.GetBytes(debug);
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadSingle(w => Http2FrameWriter.WriteGoAway(w, lastStreamId, code, debugData));

        Assert.Equal((Http2FrameType.GoAway, 0, 8 + debugData.Length), (header.Type, header.StreamId, header.Length));
        Assert.True(Http2FrameReader.TryReadGoAway(header, payload, out Http2GoAwayFrame frame, out _));
        Assert.Equal(lastStreamId, frame.LastStreamId);
        Assert.Equal(code, frame.ErrorCode);
        Assert.Equal(debugData, frame.DebugData.ToArray());
    }

    [Theory]
    [InlineData(1, Http2ErrorCode.Cancel)]
    [InlineData(int.MaxValue, Http2ErrorCode.Http11Required)]
    [InlineData(3, (Http2ErrorCode)0xFFFF_FFFF)]
    public void RstStream_round_trips_known_and_unknown_codes(int streamId, Http2ErrorCode code)
    {
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadSingle(w => Http2FrameWriter.WriteRstStream(w, streamId, code));

        Assert.Equal((Http2FrameType.RstStream, streamId, 4), (header.Type, header.StreamId, header.Length));
        Assert.True(Http2FrameReader.TryReadRstStream(header, payload, out Http2ErrorCode received, out _));
        Assert.Equal(code, received);
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(0, int.MaxValue)]
    [InlineData(5, 65_535)]
    public void WindowUpdate_round_trips_for_connection_and_stream(int streamId, int increment)
    {
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadSingle(w => Http2FrameWriter.WriteWindowUpdate(w, streamId, increment));

        Assert.Equal((Http2FrameType.WindowUpdate, streamId, 4), (header.Type, header.StreamId, header.Length));
        Assert.True(Http2FrameReader.TryReadWindowUpdate(header, payload, out int received, out _));
        Assert.Equal(increment, received);
    }

    [Theory]
    [InlineData(0, true)]
    [InlineData(1, false)]
    [InlineData(16_384, true)]
    [InlineData(100_000, false)]
    public void Data_round_trips(int length, bool endStream)
    {
        byte[] data = Enumerable.Range(0, length).Select(i => (byte)i).ToArray();
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadSingle(w => Http2FrameWriter.WriteData(w, 9, data, endStream), maxFrameSize: 100_000);

        Assert.Equal((Http2FrameType.Data, 9, length), (header.Type, header.StreamId, header.Length));
        Assert.True(Http2FrameReader.TryReadData(header, payload, out Http2DataFrame frame, out _));
        Assert.Equal(endStream, frame.EndStream);
        Assert.Equal(0, frame.PaddingLength);
        Assert.Equal(length, frame.FlowControlledLength);
        Assert.Equal(data, frame.Data.ToArray());
    }

    [Fact]
    public void Data_from_a_multi_segment_sequence_round_trips()
    {
        ReadOnlySequence<byte> body = Http1.SegmentedInput.Create("hello "u8.ToArray(), [], "world"u8.ToArray());
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadSingle(w => Http2FrameWriter.WriteData(w, 1, body, endStream: true));

        Assert.True(Http2FrameReader.TryReadData(header, payload, out Http2DataFrame frame, out _));
        Assert.True(frame.EndStream);
        Assert.Equal("hello world"u8.ToArray(), frame.Data.ToArray());
    }

    [Theory]
    [InlineData(0, 16_384, 1)]
    [InlineData(100, 16_384, 1)]
    [InlineData(16_384, 16_384, 1)]
    [InlineData(16_385, 16_384, 2)]
    [InlineData(40_000, 16_384, 3)]
    [InlineData(49_152, 16_384, 3)]
    [InlineData(40_000, 20_000, 2)]
    public void Headers_split_into_continuations_round_trip(int blockLength, int maxFrameSize, int expectedFrames)
    {
        byte[] block = Enumerable.Range(0, blockLength).Select(i => (byte)(i * 7)).ToArray();
        foreach (bool endStream in new[] { false, true })
        {
            var output = new ArrayBufferWriter<byte>();
            Http2FrameWriter.WriteHeaders(output, 11, block, endStream, maxFrameSize);
            Assert.Equal(Http2FrameWriter.GetHeadersLength(blockLength, maxFrameSize), output.WrittenCount);

            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(output.WrittenMemory));
            var reassembled = new List<byte>();
            int frames = 0;
            while (Http2FrameReader.TryReadFrame(ref reader, maxFrameSize, out Http2FrameHeader header, out ReadOnlySequence<byte> payload, out _))
            {
                frames++;
                bool last = frames == expectedFrames;
                Assert.Equal(11, header.StreamId);
                Assert.Equal(last, header.HasFlag(Http2FrameFlags.EndHeaders));
                if (frames == 1)
                {
                    Assert.Equal(Http2FrameType.Headers, header.Type);
                    Assert.True(Http2FrameReader.TryReadHeaders(header, payload, out Http2HeadersFrame headers, out _));
                    Assert.Equal(endStream, headers.EndStream);
                    Assert.False(headers.HasPriority);
                    reassembled.AddRange(headers.Fragment.ToArray());
                }
                else
                {
                    Assert.Equal(Http2FrameType.Continuation, header.Type);
                    Assert.Equal(last ? Http2FrameFlags.EndHeaders : Http2FrameFlags.None, header.Flags);
                    Assert.True(Http2FrameReader.TryReadContinuation(header, payload, out ReadOnlySequence<byte> fragment, out _));
                    reassembled.AddRange(fragment.ToArray());
                }
            }

            Assert.Equal(expectedFrames, frames);
            Assert.Equal(0, reader.Remaining);
            Assert.Equal(block, reassembled.ToArray());
        }
    }

    [Fact]
    public void Every_frame_of_one_response_round_trips_in_sequence()
    {
        var output = new ArrayBufferWriter<byte>();
        Http2FrameWriter.WriteSettings(output, [new(Http2SettingId.MaxConcurrentStreams, 128)]);
        Http2FrameWriter.WriteSettingsAck(output);
        Http2FrameWriter.WriteWindowUpdate(output, 0, 1 << 20);
        Http2FrameWriter.WriteHeaders(output, 1, [0x88], endStream: false, 16_384);
        Http2FrameWriter.WriteData(output, 1, "body"u8, endStream: true);
        Http2FrameWriter.WriteRstStream(output, 3, Http2ErrorCode.RefusedStream);
        Http2FrameWriter.WritePingAck(output, 42);
        Http2FrameWriter.WriteGoAway(output, 3, Http2ErrorCode.NoError, default);

        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(output.WrittenMemory));
        var described = new List<string>();
        while (Http2FrameReader.TryReadFrame(ref reader, 16_384, out Http2FrameHeader header, out ReadOnlySequence<byte> payload, out _))
        {
            described.Add(Http2TestFrames.Describe(header, payload, out Http2FrameError error));
            Assert.False(error.IsError);
        }

        Assert.Equal(
            [
                "Settings s=0 f=0x00 len=6: ack=False n=1 MaxConcurrentStreams=128",
                "Settings s=0 f=0x01 len=0: ack=True n=0",
                "WindowUpdate s=0 f=0x00 len=4: inc=1048576",
                "Headers s=1 f=0x04 len=1: end=False eh=True pad=0 frag=88",
                "Data s=1 f=0x01 len=4: end=True pad=0 flow=4 data=626F6479",
                "RstStream s=3 f=0x00 len=4: code=RefusedStream",
                "Ping s=0 f=0x01 len=8: data=000000000000002a",
                "GoAway s=0 f=0x00 len=8: last=3 code=NoError debug=",
            ],
            described);
    }

    private static (Http2FrameHeader Header, ReadOnlySequence<byte> Payload) ReadSingle(Action<IBufferWriter<byte>> write, int maxFrameSize = 16_384)
    {
        var output = new ArrayBufferWriter<byte>();
        write(output);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(output.WrittenMemory.ToArray()));
        Assert.True(Http2FrameReader.TryReadFrame(ref reader, maxFrameSize, out Http2FrameHeader header, out ReadOnlySequence<byte> payload, out Http2FrameError error));
        Assert.False(error.IsError);
        Assert.Equal(0, reader.Remaining);
        return (header, payload);
    }
}

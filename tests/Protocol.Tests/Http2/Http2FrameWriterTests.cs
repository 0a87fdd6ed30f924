using System.Buffers;
using Appliance.Protocol.Http2;
using static Appliance.Protocol.Tests.Http2.Http2TestFrames;

namespace Appliance.Protocol.Tests.Http2;

public class Http2FrameWriterTests
{
    [Fact]
    public void Span_and_buffer_writer_forms_write_the_same_bytes()
    {
        byte[] block = Bytes(40_000, 0x42);
        Http2Setting[] settings = [new(Http2SettingId.MaxConcurrentStreams, 100), new(Http2SettingId.InitialWindowSize, 1 << 20)];
        var cases = new (Func<byte[], int> ToSpan, Action<IBufferWriter<byte>> ToWriter)[]
        {
            (s => Http2FrameWriter.WriteSettings(s, settings), w => Http2FrameWriter.WriteSettings(w, settings)),
            (s => Http2FrameWriter.WriteSettingsAck(s), w => Http2FrameWriter.WriteSettingsAck(w)),
            (s => Http2FrameWriter.WritePing(s, 7, ack: false), w => Http2FrameWriter.WritePing(w, 7, ack: false)),
            (s => Http2FrameWriter.WritePingAck(s, 7), w => Http2FrameWriter.WritePingAck(w, 7)),
            (s => Http2FrameWriter.WriteGoAway(s, 9, Http2ErrorCode.ProtocolError, "why"u8), w => Http2FrameWriter.WriteGoAway(w, 9, Http2ErrorCode.ProtocolError, "why"u8)),
            (s => Http2FrameWriter.WriteRstStream(s, 9, Http2ErrorCode.Cancel), w => Http2FrameWriter.WriteRstStream(w, 9, Http2ErrorCode.Cancel)),
            (s => Http2FrameWriter.WriteWindowUpdate(s, 0, 100), w => Http2FrameWriter.WriteWindowUpdate(w, 0, 100)),
            (s => Http2FrameWriter.WriteData(s, 3, "abc"u8, endStream: true), w => Http2FrameWriter.WriteData(w, 3, "abc"u8, endStream: true)),
            (s => Http2FrameWriter.WriteHeaders(s, 3, block, endStream: true, 16_384), w => Http2FrameWriter.WriteHeaders(w, 3, block, endStream: true, 16_384)),
        };

        foreach ((Func<byte[], int> toSpan, Action<IBufferWriter<byte>> toWriter) in cases)
        {
            byte[] span = new byte[50_000];
            int written = toSpan(span);
            var writer = new ArrayBufferWriter<byte>();
            toWriter(writer);
            Assert.Equal(writer.WrittenSpan.ToArray(), span[..written]);
        }
    }

    [Fact]
    public void Fixed_size_frames_have_the_advertised_lengths()
    {
        byte[] buffer = new byte[64];

        Assert.Equal(Http2FrameWriter.SettingsAckLength, Http2FrameWriter.WriteSettingsAck(buffer));
        Assert.Equal(Http2FrameWriter.PingLength, Http2FrameWriter.WritePing(buffer, 1, ack: true));
        Assert.Equal(Http2FrameWriter.RstStreamLength, Http2FrameWriter.WriteRstStream(buffer, 1, Http2ErrorCode.NoError));
        Assert.Equal(Http2FrameWriter.WindowUpdateLength, Http2FrameWriter.WriteWindowUpdate(buffer, 1, 1));
        Assert.Equal(Http2FrameWriter.GetSettingsLength(2), Http2FrameWriter.WriteSettings(buffer, [new(Http2SettingId.EnablePush, 0), new(Http2SettingId.MaxFrameSize, 16_384)]));
        Assert.Equal(Http2FrameWriter.GetGoAwayLength(3), Http2FrameWriter.WriteGoAway(buffer, 1, Http2ErrorCode.NoError, "abc"u8));
    }

    [Fact]
    public void Data_header_alone_announces_the_payload_that_follows()
    {
        byte[] buffer = new byte[9];

        Assert.Equal(9, Http2FrameWriter.WriteDataHeader(buffer, 5, 1000, endStream: true));
        Assert.Equal(new byte[] { 0, 0x03, 0xE8, 0, 1, 0, 0, 0, 5 }, buffer);
    }

    [Fact]
    public void Headers_end_stream_is_set_on_the_headers_frame_only()
    {
        byte[] buffer = new byte[Http2FrameWriter.GetHeadersLength(20_000, 16_384)];
        Http2FrameWriter.WriteHeaders(buffer, 1, Bytes(20_000), endStream: true, 16_384);

        Assert.Equal((byte)Http2FrameType.Headers, buffer[3]);
        Assert.Equal((byte)Http2FrameFlags.EndStream, buffer[4]);
        int second = 9 + 16_384;
        Assert.Equal((byte)Http2FrameType.Continuation, buffer[second + 3]);
        Assert.Equal((byte)Http2FrameFlags.EndHeaders, buffer[second + 4]);
    }

    [Fact]
    public void Caller_mistakes_throw()
    {
        byte[] buffer = new byte[64];

        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteData(buffer, 0, "x"u8, endStream: false));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteRstStream(buffer, 0, Http2ErrorCode.Cancel));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteWindowUpdate(buffer, 1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteWindowUpdate(buffer, -1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteHeaders(buffer, 1, "x"u8, endStream: false, 16_383));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteHeaders(buffer, 1, "x"u8, endStream: false, 16_777_216));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteGoAway(buffer, -1, Http2ErrorCode.NoError, default));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WritePing(new byte[16], 1, ack: false));
    }
}

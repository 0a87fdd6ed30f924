using System.Buffers;
using Appliance.Protocol.Http2;
using static Appliance.Protocol.Tests.Http2.Http2TestFrames;

namespace Appliance.Protocol.Tests.Http2;

/// <summary>Valid frames at the edges of the rules: padding, priority fields, unknown settings and types.</summary>
public class Http2FrameReaderTests
{
    [Fact]
    public void Incomplete_frame_is_not_an_error_and_not_consumed()
    {
        byte[] frame = Build(Http2FrameType.Data, Http2FrameFlags.EndStream, 1, Bytes(10));
        for (int length = 0; length < frame.Length; length++)
        {
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(frame, 0, length));
            Assert.False(Http2FrameReader.TryReadFrame(ref reader, 16_384, out _, out _, out Http2FrameError error));
            Assert.False(error.IsError);
            Assert.Equal(0, reader.Consumed);
        }
    }

    [Fact]
    public void Frame_of_exactly_max_frame_size_is_accepted()
    {
        byte[] frame = Build(Http2FrameType.Data, 0, 1, Bytes(16_384));
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(frame));

        Assert.True(Http2FrameReader.TryReadFrame(ref reader, 16_384, out Http2FrameHeader header, out ReadOnlySequence<byte> payload, out _));
        Assert.Equal(16_384, payload.Length);
        Assert.Equal(16_384, header.Length);
    }

    [Fact]
    public void Padded_data_with_pad_length_one_less_than_payload_is_empty_data()
    {
        // Payload of 4: pad length octet (3) + 3 padding octets, no data. §6.1 allows padding up to payload length - 1.
        Http2DataFrame frame = ReadData(Build(Http2FrameType.Data, Http2FrameFlags.Padded, 1, [3, 0, 0, 0]));

        Assert.Equal(0, frame.Data.Length);
        Assert.Equal(3, frame.PaddingLength);
        Assert.Equal(4, frame.FlowControlledLength);
    }

    [Fact]
    public void Padded_data_strips_pad_length_and_padding_but_flow_control_counts_them()
    {
        Http2DataFrame frame = ReadData(Build(Http2FrameType.Data, Http2FrameFlags.Padded | Http2FrameFlags.EndStream, 1, [2, (byte)'h', (byte)'i', 0, 0]));

        Assert.Equal("hi"u8.ToArray(), frame.Data.ToArray());
        Assert.Equal(2, frame.PaddingLength);
        Assert.Equal(5, frame.FlowControlledLength);
        Assert.True(frame.EndStream);
    }

    [Fact]
    public void Padded_data_with_pad_length_zero_keeps_all_data()
    {
        Http2DataFrame frame = ReadData(Build(Http2FrameType.Data, Http2FrameFlags.Padded, 1, [0, 1, 2]));

        Assert.Equal(new byte[] { 1, 2 }, frame.Data.ToArray());
        Assert.Equal(0, frame.PaddingLength);
        Assert.Equal(3, frame.FlowControlledLength);
    }

    [Fact]
    public void Padded_data_with_a_single_pad_length_octet_is_empty()
    {
        Http2DataFrame frame = ReadData(Build(Http2FrameType.Data, Http2FrameFlags.Padded, 1, [0]));

        Assert.Equal(0, frame.Data.Length);
        Assert.Equal(1, frame.FlowControlledLength);
    }

    [Fact]
    public void Empty_data_with_end_stream_is_valid()
    {
        Http2DataFrame frame = ReadData(Build(Http2FrameType.Data, Http2FrameFlags.EndStream, 1));

        Assert.True(frame.EndStream);
        Assert.Equal(0, frame.Data.Length);
    }

    [Fact]
    public void Headers_with_padding_and_priority_yield_only_the_fragment()
    {
        byte[] frame = Build(
            Http2FrameType.Headers,
            Http2FrameFlags.Padded | Http2FrameFlags.Priority | Http2FrameFlags.EndHeaders | Http2FrameFlags.EndStream,
            5,
            [2, 0x80, 0, 0, 3, 255, 0x82, 0x86, 0, 0]);
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadFrame(frame);

        Assert.True(Http2FrameReader.TryReadHeaders(header, payload, out Http2HeadersFrame headers, out _));
        Assert.Equal(new byte[] { 0x82, 0x86 }, headers.Fragment.ToArray());
        Assert.Equal(2, headers.PaddingLength);
        Assert.True(headers.HasPriority);
        Assert.True(headers.Priority.IsExclusive);
        Assert.Equal(3, headers.Priority.StreamDependency);
        Assert.Equal(255, headers.Priority.Weight);
        Assert.Equal(256, headers.Priority.EffectiveWeight);
        Assert.True(headers.EndStream);
        Assert.True(headers.EndHeaders);
    }

    [Fact]
    public void Headers_with_padding_filling_all_but_the_priority_fields_is_an_empty_fragment()
    {
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadFrame(
            Build(Http2FrameType.Headers, Http2FrameFlags.Padded | Http2FrameFlags.Priority, 1, [2, 0, 0, 0, 0, 16, 0, 0]));

        Assert.True(Http2FrameReader.TryReadHeaders(header, payload, out Http2HeadersFrame headers, out _));
        Assert.Equal(0, headers.Fragment.Length);
        Assert.False(headers.EndHeaders);
    }

    [Fact]
    public void Headers_depending_on_itself_is_a_stream_error_that_still_hands_over_the_fragment()
    {
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadFrame(
            Build(Http2FrameType.Headers, Http2FrameFlags.Priority | Http2FrameFlags.EndHeaders, 1, [0, 0, 0, 1, 16, 0x82]));

        Assert.False(Http2FrameReader.TryReadHeaders(header, payload, out Http2HeadersFrame headers, out Http2FrameError error));
        Assert.True(error.IsStreamError);
        Assert.Equal(Http2ErrorCode.ProtocolError, error.ErrorCode);
        Assert.Equal(new byte[] { 0x82 }, headers.Fragment.ToArray());
        Assert.Equal(1, headers.StreamId);
    }

    [Fact]
    public void Priority_frame_is_parsed()
    {
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadFrame(Build(Http2FrameType.Priority, 0, 3, [0x80, 0, 0, 1, 15]));

        Assert.True(Http2FrameReader.TryReadPriority(header, payload, out Http2Priority priority, out _));
        Assert.Equal((1, true, 15, 16), (priority.StreamDependency, priority.IsExclusive, (int)priority.Weight, priority.EffectiveWeight));
    }

    [Fact]
    public void Settings_with_unknown_ids_are_accepted_and_enumerated()
    {
        byte[] payload = Concat(Setting(0, 1), Setting(7, uint.MaxValue), Setting(3, 5), Setting(0xFFFF, 0), Setting(8, 1));
        (Http2FrameHeader header, ReadOnlySequence<byte> sequence) = ReadFrame(Build(Http2FrameType.Settings, 0, 0, payload));

        Assert.True(Http2FrameReader.TryReadSettings(header, sequence, out Http2SettingsFrame frame, out _));
        var ids = new List<ushort>();
        var settings = new Http2Settings();
        foreach (Http2Setting setting in frame)
        {
            ids.Add((ushort)setting.Id);
            Assert.False(settings.Apply(setting.Id, setting.Value).IsError);
        }

        Assert.Equal(new ushort[] { 0, 7, 3, 0xFFFF, 8 }, ids);
        Assert.Equal(5u, settings.MaxConcurrentStreams);
        Assert.Equal(Http2Settings.DefaultHeaderTableSize, settings.HeaderTableSize);
        Assert.True(settings.EnablePush);
        Assert.Equal(Http2Settings.DefaultInitialWindowSize, settings.InitialWindowSize);
        Assert.Equal(Http2Settings.DefaultMaxFrameSize, settings.MaxFrameSize);
    }

    [Theory]
    [InlineData(2, 0u)]
    [InlineData(2, 1u)]
    [InlineData(4, 0u)]
    [InlineData(4, 0x7FFF_FFFFu)]
    [InlineData(5, 16_384u)]
    [InlineData(5, 16_777_215u)]
    [InlineData(1, uint.MaxValue)]
    [InlineData(3, 0u)]
    [InlineData(6, uint.MaxValue)]
    public void Settings_values_at_the_edges_of_their_ranges_are_accepted(ushort id, uint value)
    {
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadFrame(Build(Http2FrameType.Settings, 0, 0, Setting(id, value)));

        Assert.True(Http2FrameReader.TryReadSettings(header, payload, out _, out Http2FrameError error), error.ToString());
    }

    [Fact]
    public void Window_update_ignores_the_reserved_bit_and_takes_the_maximum_increment()
    {
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadFrame(Build(Http2FrameType.WindowUpdate, 0, 1, U32(0xFFFF_FFFF)));

        Assert.True(Http2FrameReader.TryReadWindowUpdate(header, payload, out int increment, out _));
        Assert.Equal(int.MaxValue, increment);
    }

    [Fact]
    public void GoAway_ignores_the_reserved_bit_of_the_last_stream_id()
    {
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadFrame(Build(Http2FrameType.GoAway, 0, 0, Concat(U32(0x8000_0005), U32(2), [1, 2])));

        Assert.True(Http2FrameReader.TryReadGoAway(header, payload, out Http2GoAwayFrame frame, out _));
        Assert.Equal(5, frame.LastStreamId);
        Assert.Equal(Http2ErrorCode.InternalError, frame.ErrorCode);
        Assert.Equal(new byte[] { 1, 2 }, frame.DebugData.ToArray());
    }

    [Theory]
    [InlineData(0x0a)]
    [InlineData(0x10)]
    [InlineData(0xff)]
    public void Unknown_frame_types_are_read_whole_so_they_can_be_skipped(byte type)
    {
        byte[] input = Concat(Build(type, 0xff, 0, [1, 2, 3]), Build(Http2FrameType.Ping, 0, 0, Bytes(8)));
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(input));

        Assert.True(Http2FrameReader.TryReadFrame(ref reader, 16_384, out Http2FrameHeader unknown, out ReadOnlySequence<byte> payload, out _));
        Assert.False(unknown.IsKnownType);
        Assert.Equal(3, payload.Length);
        Assert.True(Http2FrameReader.TryReadFrame(ref reader, 16_384, out Http2FrameHeader next, out _, out _));
        Assert.Equal(Http2FrameType.Ping, next.Type);
    }

    [Fact]
    public void Undefined_flags_are_ignored()
    {
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadFrame(Build(Http2FrameType.Ping, (Http2FrameFlags)0xFE, 0, Bytes(8)));

        Assert.True(Http2FrameReader.TryReadPing(header, payload, out _, out _));
        Assert.False(header.HasFlag(Http2FrameFlags.Ack));

        (header, payload) = ReadFrame(Build(Http2FrameType.Continuation, (Http2FrameFlags)0xFF, 1, [0x82]));
        Assert.True(Http2FrameReader.TryReadContinuation(header, payload, out ReadOnlySequence<byte> fragment, out _));
        Assert.Equal(1, fragment.Length); // PADDED means nothing on CONTINUATION
    }

    private static Http2DataFrame ReadData(byte[] bytes)
    {
        (Http2FrameHeader header, ReadOnlySequence<byte> payload) = ReadFrame(bytes);
        Assert.True(Http2FrameReader.TryReadData(header, payload, out Http2DataFrame frame, out Http2FrameError error), error.ToString());
        return frame;
    }

    private static (Http2FrameHeader, ReadOnlySequence<byte>) ReadFrame(byte[] bytes)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        Assert.True(Http2FrameReader.TryReadFrame(ref reader, 16_384, out Http2FrameHeader header, out ReadOnlySequence<byte> payload, out _));
        return (header, payload);
    }
}

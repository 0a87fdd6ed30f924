using System.Buffers;
using System.Text;
using Appliance.Protocol.Sse;
using Appliance.Protocol.Tests.Http1;

namespace Appliance.Protocol.Tests.Sse;

public class SseParserTests
{
    public static TheoryData<int> Steps => new([1, 2, 3, 7, 64, 100_000]);

    [Theory]
    [MemberData(nameof(Steps))]
    public void Reads_an_anthropic_stream_whatever_the_cuts(int step)
    {
        const string stream =
            "event: message_start\n" +
            "data: {\"type\":\"message_start\"}\n\n" +
            "event: ping\ndata: {\"type\": \"ping\"}\n\n" +
            "event: content_block_delta\r\ndata: {\"text\":\"Hi\"}\r\n\r\n";

        (List<Event> events, SseStatus last, bool pending) = Parse(stream, step);

        Assert.Equal(
            [new("message_start", "{\"type\":\"message_start\"}", ""), new("ping", "{\"type\": \"ping\"}", ""), new("content_block_delta", "{\"text\":\"Hi\"}", "")],
            events);
        Assert.Equal(SseStatus.NeedMoreData, last);
        Assert.False(pending);
    }

    [Theory]
    [MemberData(nameof(Steps))]
    public void Follows_the_whatwg_field_rules(int step)
    {
        // The spec's own examples: data lines join with LF, one leading space is dropped, a field without a colon
        // has an empty value, comments and unknown fields are ignored, a lone CR ends a line, ids carry over.
        const string stream =
            "\uFEFF: comment\n" +
            "data: first\ndata:second\ndata\ndata:  two spaces\n\n" +
            "id: 7\rdata: cr\r\r" +
            "event: custom\nfoo: bar\ndata: x\n\n" +
            "event: lost\n\n" +
            "data: after\n\n";

        (List<Event> events, _, _) = Parse(stream, step);

        Assert.Equal(
            [new("message", "first\nsecond\n\n two spaces", ""), new("message", "cr", "7"), new("custom", "x", "7"), new("message", "after", "7")],
            events);
    }

    [Fact]
    public void A_bom_is_dropped_only_at_the_start()
    {
        (List<Event> events, _, _) = Parse("\uFEFFdata: a\n\n\uFEFFdata: b\n\ndata: c\n\n", 1);

        // The second BOM makes the line's field name "\uFEFFdata", which is no field.
        Assert.Equal([new("message", "a", ""), new("message", "c", "")], events);
    }

    [Fact]
    public void Crlf_split_across_reads_counts_as_one_line_end()
    {
        var parser = new SseParser();
        var first = new SequenceReader<byte>(new ReadOnlySequence<byte>("data: a\r"u8.ToArray()));
        Assert.Equal(SseStatus.NeedMoreData, parser.Read(ref first));
        var second = new SequenceReader<byte>(new ReadOnlySequence<byte>("\ndata: b\r\n\r\n"u8.ToArray()));
        Assert.Equal(SseStatus.Event, parser.Read(ref second));

        Assert.Equal("a\nb", Encoding.UTF8.GetString(parser.Data));
    }

    [Theory]
    [InlineData("retry: 2500\n", 2500)]
    [InlineData("retry: 25x\n", -1)]
    [InlineData("retry:\n", -1)]
    [InlineData("retry: -1\n", -1)]
    [InlineData("retry: 99999999999999999999\n", -1)]
    public void Retry_takes_only_digits(string line, long expected)
    {
        var parser = new SseParser();
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(line + "data: x\n\n")));

        Assert.Equal(SseStatus.Event, parser.Read(ref reader));
        Assert.Equal(expected, parser.RetryMilliseconds);
    }

    [Fact]
    public void An_id_with_a_nul_is_ignored()
    {
        (List<Event> events, _, _) = Parse("id: a\ndata: 1\n\nid: b\0c\ndata: 2\n\nid\ndata: 3\n\n", 3);

        Assert.Equal([new("message", "1", "a"), new("message", "2", "a"), new("message", "3", "")], events);
    }

    [Theory]
    [MemberData(nameof(Steps))]
    public void An_unfinished_event_at_the_end_is_pending_not_dispatched(int step)
    {
        (List<Event> events, SseStatus last, bool pending) = Parse("data: whole\n\ndata: cut off\n", step);

        Assert.Equal([new("message", "whole", "")], events);
        Assert.Equal(SseStatus.NeedMoreData, last);
        Assert.True(pending);
    }

    [Fact]
    public void A_truncated_line_stays_unread()
    {
        var parser = new SseParser();
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>("data: one\n\ndata: tw"u8.ToArray()));

        Assert.Equal(SseStatus.Event, parser.Read(ref reader));
        Assert.Equal(SseStatus.NeedMoreData, parser.Read(ref reader));
        Assert.Equal("data: tw", Encoding.UTF8.GetString(reader.UnreadSequence.ToArray()));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    public void An_oversized_event_is_refused_before_it_is_buffered(int step)
    {
        // 100 lines of 20 data bytes: no single line is long, the event is.
        string stream = string.Concat(Enumerable.Repeat("data: 0123456789abcdefghij\n", 100)) + "\n";

        (List<Event> events, SseStatus last, _) = Parse(stream, step, maxEventBytes: 1024);

        Assert.Empty(events);
        Assert.Equal(SseStatus.TooLarge, last);
    }

    [Fact]
    public void An_endless_line_is_refused_without_its_end()
    {
        var parser = new SseParser(1024);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes("data: " + new string('a', 2000))));

        Assert.Equal(SseStatus.TooLarge, parser.Read(ref reader));
    }

    [Fact]
    public void An_event_at_the_limit_is_read()
    {
        string stream = "data: " + new string('a', 1024 - 8) + "\n\n";
        Assert.Equal(1024, stream.Length);

        (List<Event> events, SseStatus last, _) = Parse(stream, 5, maxEventBytes: 1024);

        Assert.Single(events);
        Assert.Equal(SseStatus.NeedMoreData, last);
    }

    [Fact]
    public void Events_without_data_or_with_only_comments_are_not_dispatched()
    {
        (List<Event> events, _, bool pending) = Parse(": keep-alive\n\nevent: x\n\nid: 1\n\n: another\n", 2);

        Assert.Empty(events);
        Assert.False(pending);
    }

    [Fact]
    public void Reset_readies_the_parser_for_a_new_stream()
    {
        var parser = new SseParser();
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>("id: 9\nevent: a\ndata: half"u8.ToArray()));
        parser.Read(ref reader);
        parser.Reset();
        reader = new SequenceReader<byte>(new ReadOnlySequence<byte>("\uFEFFdata: new\n\n"u8.ToArray()));

        Assert.Equal(SseStatus.Event, parser.Read(ref reader));
        Assert.Equal("message", Encoding.UTF8.GetString(parser.EventType));
        Assert.Equal("new", Encoding.UTF8.GetString(parser.Data));
        Assert.True(parser.LastEventId.IsEmpty);
    }

    [Fact]
    public void Binary_garbage_is_read_as_fields_without_harm()
    {
        var random = new Random(8);
        byte[] garbage = new byte[64 * 1024];
        random.NextBytes(garbage);
        var parser = new SseParser(4096);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(garbage));
        SseStatus status;
        int events = 0;
        while ((status = parser.Read(ref reader)) == SseStatus.Event)
        {
            events++;
        }

        Assert.True(status is SseStatus.NeedMoreData or SseStatus.TooLarge);
        Assert.True(events < 1000);
    }

    internal readonly record struct Event(string Type, string Data, string Id);

    /// <summary>Feeds the stream as it would arrive: <paramref name="step"/> more bytes per read, the unread rest kept.</summary>
    private static (List<Event> Events, SseStatus Last, bool Pending) Parse(string stream, int step, int maxEventBytes = 1 << 20)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(stream);
        var input = new SegmentedInput(bytes, Math.Max(1, Math.Min(step, 5)));
        var parser = new SseParser(maxEventBytes);
        var events = new List<Event>();
        long consumed = 0;
        SseStatus status = SseStatus.NeedMoreData;
        for (long available = Math.Min(step, bytes.Length); ; available = Math.Min(available + step, bytes.Length))
        {
            var reader = new SequenceReader<byte>(input.Slice(consumed, available));
            while ((status = parser.Read(ref reader)) == SseStatus.Event)
            {
                events.Add(new(Encoding.UTF8.GetString(parser.EventType), Encoding.UTF8.GetString(parser.Data), Encoding.UTF8.GetString(parser.LastEventId)));
            }

            consumed += reader.Consumed;
            if (status == SseStatus.TooLarge || available == bytes.Length)
            {
                return (events, status, parser.HasPendingEvent);
            }
        }
    }
}

using System.Buffers;
using System.Text;
using Appliance.Ai;

namespace Appliance.Tests.Ai;

/// <summary>The watcher of passed-through OpenAI streams: it finds the usage chunk and never harms the stream.</summary>
public class OpenAiStreamUsageTests
{
    private const string Stream =
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n" +
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":31,\"completion_tokens\":7,\"total_tokens\":38,\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n\n" +
        "data: [DONE]\n\n";

    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(100_000)]
    public void Finds_the_usage_chunk_however_the_stream_is_cut(int cut)
    {
        OpenAiStreamUsage watcher = Watch(Stream, cut, 1 << 20);

        Assert.True(watcher.Watching);
        Assert.Equal(31, watcher.Usage.InputTokens);
        Assert.Equal(7, watcher.Usage.OutputTokens);
    }

    [Theory]
    [InlineData("data: {\"usage\": \"lots\"}\n\n")]
    [InlineData("data: {\"usage\": {\"prompt_tokens\": -5, \"completion_tokens\": 1.5}}\n\n")]
    [InlineData("data: {\"usage\": {\"prompt_tokens\": \n\n")]
    [InlineData("data: [\"usage\"]\n\n")]
    [InlineData(": \"usage\"\n\nevent: usage\ndata: x\n\n")]
    public void Bad_usage_counts_nothing_and_throws_nothing(string stream)
    {
        OpenAiStreamUsage watcher = Watch(stream, 3, 1 << 20);

        Assert.Equal(0, watcher.Usage.InputTokens);
        Assert.Equal(0, watcher.Usage.OutputTokens);
    }

    [Fact]
    public void An_oversized_event_ends_the_watching_not_the_stream()
    {
        string stream = "data: " + new string('x', 5000) + "\n\n" + Stream;

        OpenAiStreamUsage watcher = Watch(stream, 512, 4096);

        Assert.False(watcher.Watching);
        Assert.Equal(0, watcher.Usage.InputTokens);
    }

    private static OpenAiStreamUsage Watch(string stream, int cut, int maxEventBytes)
    {
        var watcher = new OpenAiStreamUsage(maxEventBytes);
        byte[] input = Encoding.UTF8.GetBytes(stream);
        var pending = new List<byte>();
        for (int offset = 0; offset < input.Length; offset += cut)
        {
            pending.AddRange(input.AsSpan(offset, Math.Min(cut, input.Length - offset)).ToArray());
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(pending.ToArray()));
            watcher.Watch(ref reader);
            pending.RemoveRange(0, (int)reader.Consumed);
        }

        return watcher;
    }
}

using System.Buffers;
using System.Text;
using Appliance.Ai;
using Appliance.Protocol.Sse;
using BenchmarkDotNet.Attributes;

namespace Appliance.Benchmarks;

/// <summary>
/// Streaming translation (Ai/): one provider answer turned into OpenAI chunk events, per operation. The Anthropic
/// answer is 200 text deltas of a few tokens each (some escaped, some non-ASCII) and a tool call whose arguments
/// come in 20 pieces, 228 events in all; it is fed whole, and as it arrives from a socket, in 1,460-byte segments
/// with events cut across them. The Gemini answer is 60 events of text. The parser alone reads the Anthropic
/// stream. Divide by the event count for the cost per event. Every case must allocate 0 B: the translator, its
/// JSON writer and its buffers are reused across streams, as a connection's would be.
/// </summary>
[MemoryDiagnoser]
public class SseTranslationBenchmarks
{
    private readonly AnthropicStreamTranslator _anthropic = new();
    private readonly GeminiStreamTranslator _gemini = new();
    private readonly SseParser _parser = new();
    private readonly ArrayBufferWriter<byte> _output = new(256 * 1024);
    private ReadOnlySequence<byte> _anthropicWhole;
    private ReadOnlySequence<byte> _anthropicSegmented;
    private ReadOnlySequence<byte> _geminiWhole;

    [GlobalSetup]
    public void Setup()
    {
        byte[] anthropic = Encoding.UTF8.GetBytes(AnthropicAnswer());
        _anthropicWhole = new ReadOnlySequence<byte>(anthropic);
        _anthropicSegmented = Segments(anthropic, 1460);
        _geminiWhole = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(GeminiAnswer()));
        if (Anthropic() != StreamStatus.Done || AnthropicSegmented() != StreamStatus.Done || Gemini() != StreamStatus.Done || ParseOnly() != 228)
        {
            throw new InvalidOperationException("the benchmark's streams do not translate");
        }
    }

    [Benchmark(Description = "Anthropic → OpenAI, 228 events, whole")]
    public StreamStatus Anthropic() => Run(_anthropic, _anthropicWhole);

    [Benchmark(Description = "Anthropic → OpenAI, 228 events, 1460 B segments")]
    public StreamStatus AnthropicSegmented() => Run(_anthropic, _anthropicSegmented);

    [Benchmark(Description = "Gemini → OpenAI, 60 events")]
    public StreamStatus Gemini() => Run(_gemini, _geminiWhole);

    [Benchmark(Description = "SSE parse only, 228 events")]
    public int ParseOnly()
    {
        _parser.Reset();
        var reader = new SequenceReader<byte>(_anthropicWhole);
        int events = 0;
        while (_parser.Read(ref reader) == SseStatus.Event)
        {
            events++;
        }

        return events;
    }

    private StreamStatus Run(StreamTranslator translator, ReadOnlySequence<byte> input)
    {
        _output.ResetWrittenCount();
        translator.Start("chatcmpl-bench"u8, "requested-model"u8, 1_764_547_200, includeUsage: true);
        var reader = new SequenceReader<byte>(input);
        StreamStatus status = translator.Translate(ref reader, _output);
        return status == StreamStatus.Continue ? translator.Complete(_output) : status;
    }

    private static string AnthropicAnswer()
    {
        var s = new StringBuilder();
        s.Append("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-opus-4-6\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":1200,\"output_tokens\":1}}}\n\n");
        s.Append("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
        string[] pieces = [" The quick", " brown fox", " jumps \\\"over\\\"", " the lazy", " dog\\n", " — naïve", " café", " 42 times."];
        for (int i = 0; i < 200; i++)
        {
            s.Append("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"")
                .Append(pieces[i % pieces.Length]).Append("\"}}\n\n");
        }

        s.Append("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
        s.Append("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\",\"input\":{}}}\n\n");
        for (int i = 0; i < 20; i++)
        {
            s.Append("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"")
                .Append(i == 0 ? "{\\\"location\\\": \\\"" : i == 19 ? "\\\"}" : "San Fran").Append("\"}}\n\n");
        }

        s.Append("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n");
        s.Append("event: ping\ndata: {\"type\": \"ping\"}\n\n");
        s.Append("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":850}}\n\n");
        s.Append("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        return s.ToString();
    }

    private static string GeminiAnswer()
    {
        var s = new StringBuilder();
        for (int i = 0; i < 60; i++)
        {
            s.Append("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Rayleigh scattering makes the sky blue; part ")
                .Append(i).Append(".\"}],\"role\": \"model\"}")
                .Append(i == 59 ? ",\"finishReason\": \"STOP\"" : "")
                .Append(",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": ").Append(i * 9)
                .Append(",\"totalTokenCount\": ").Append(8 + (i * 9)).Append("},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"mV5xaOyKBvCb7dcP_aXx8AQ\"}\r\n\r\n");
        }

        return s.ToString();
    }

    private static ReadOnlySequence<byte> Segments(byte[] data, int size)
    {
        Segment? first = null, last = null;
        for (int offset = 0; offset < data.Length; offset += size)
        {
            var segment = new Segment(data.AsMemory(offset, Math.Min(size, data.Length - offset)), offset);
            if (last is null)
            {
                first = segment;
            }
            else
            {
                last.Next = segment;
            }

            last = segment;
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public new Segment? Next
        {
            get => (Segment?)base.Next;
            set => base.Next = value;
        }
    }
}

using System.Buffers;
using System.Text;
using System.Text.Json;
using Appliance.Ai;
using Appliance.Tests.Support;

namespace Appliance.Tests.Ai;

/// <summary>
/// Providers' documented streams, translated, then read by the official OpenAI SDK (Peers/node/openai_stream.js):
/// the chunks it yields and the completion its stream helper accumulates are what a client of the gateway gets.
/// </summary>
public class StreamTranslatorTests
{
    public static TheoryData<int> Cuts => new([1, 7, 100_000]);

    [Theory]
    [MemberData(nameof(Cuts))]
    public async Task Anthropic_text_reaches_the_openai_sdk_whole(int cut)
    {
        (string output, StreamStatus status, TokenUsage usage) = Translate(new AnthropicStreamTranslator(), ProviderStreams.AnthropicText, cut);

        Assert.Equal(StreamStatus.Done, status);
        Assert.Equal(25, usage.InputTokens);
        Assert.Equal(15, usage.OutputTokens);
        JsonElement sdk = await ReadWithSdk(output);
        JsonElement final = sdk.GetProperty("final");
        Assert.Equal("msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", final.GetProperty("id").GetString());
        Assert.Equal("claude-opus-4-6", final.GetProperty("model").GetString());
        JsonElement choice = final.GetProperty("choices")[0];
        Assert.Equal("Hello!", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("assistant", choice.GetProperty("message").GetProperty("role").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(25, final.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(15, final.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(40, final.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.All(sdk.GetProperty("chunks").EnumerateArray(), c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.EndsWith("data: [DONE]\n\n", output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_output_does_not_depend_on_how_the_input_was_cut()
    {
        string whole = Translate(new AnthropicStreamTranslator(), ProviderStreams.AnthropicToolUse, 100_000).Output;

        for (int cut = 1; cut < 40; cut += 3)
        {
            Assert.Equal(whole, Translate(new AnthropicStreamTranslator(), ProviderStreams.AnthropicToolUse, cut).Output);
        }
    }

    [Fact]
    public async Task Anthropic_tool_use_becomes_an_openai_tool_call()
    {
        (string output, StreamStatus status, TokenUsage usage) = Translate(new AnthropicStreamTranslator(), ProviderStreams.AnthropicToolUse, 13);

        Assert.Equal(StreamStatus.Done, status);
        Assert.Equal(472 + 10 + 100, usage.InputTokens);
        Assert.Equal(100, usage.CachedInputTokens);
        JsonElement final = (await ReadWithSdk(output)).GetProperty("final");
        JsonElement choice = final.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        JsonElement message = choice.GetProperty("message");
        Assert.Equal("Okay, let's check the weather for San Francisco, CA:", message.GetProperty("content").GetString());
        JsonElement call = Assert.Single(message.GetProperty("tool_calls").EnumerateArray());
        Assert.Equal("toolu_01T1x1fJ34qAmk2tNTrN7Up6", call.GetProperty("id").GetString());
        Assert.Equal("function", call.GetProperty("type").GetString());
        Assert.Equal("get_weather", call.GetProperty("function").GetProperty("name").GetString());
        using JsonDocument arguments = JsonDocument.Parse(call.GetProperty("function").GetProperty("arguments").GetString()!);
        Assert.Equal("San Francisco, CA", arguments.RootElement.GetProperty("location").GetString());
        Assert.Equal("fahrenheit", arguments.RootElement.GetProperty("unit").GetString());
        Assert.Equal(100, final.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
    }

    [Fact]
    public async Task Anthropic_thinking_becomes_reasoning_content_and_escapes_are_kept()
    {
        (string output, StreamStatus status, _) = Translate(new AnthropicStreamTranslator(), ProviderStreams.AnthropicThinking, 5);

        Assert.Equal(StreamStatus.Done, status);
        JsonElement sdk = await ReadWithSdk(output);
        string reasoning = string.Concat(sdk.GetProperty("chunks").EnumerateArray()
            .SelectMany(c => c.GetProperty("choices").EnumerateArray())
            .Select(c => c.GetProperty("delta").TryGetProperty("reasoning_content", out JsonElement r) ? r.GetString() : ""));
        Assert.Equal("I need to find the GCD of 1071 and 462 using the Euclidean algorithm.\n\n1071 = 2 × 462 + 147", reasoning);
        Assert.Equal(
            "The greatest common divisor of 1071 and 462 is **21**.",
            sdk.GetProperty("final").GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.DoesNotContain("signature", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_anthropic_error_event_reaches_the_sdk_as_an_api_error()
    {
        (string output, StreamStatus status, _) = Translate(new AnthropicStreamTranslator(), ProviderStreams.AnthropicOverloaded, 9);

        Assert.Equal(StreamStatus.Failed, status);
        Assert.DoesNotContain("[DONE]", output, StringComparison.Ordinal);
        JsonElement error = (await ReadWithSdk(output)).GetProperty("error");
        Assert.Equal("APIError", error.GetProperty("name").GetString());
        Assert.Equal("Overloaded", error.GetProperty("message").GetString());
        Assert.Equal("overloaded_error", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_stream_cut_before_message_stop_fails_instead_of_looking_whole()
    {
        string cutOff = ProviderStreams.AnthropicText[..ProviderStreams.AnthropicText.IndexOf("event: message_delta", StringComparison.Ordinal)];

        (string output, StreamStatus status, _) = Translate(new AnthropicStreamTranslator(), cutOff, 100_000);

        Assert.Equal(StreamStatus.Failed, status);
        JsonElement error = (await ReadWithSdk(output)).GetProperty("error");
        Assert.Contains("ended before its answer did", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    public static TheoryData<string, string> BadEvents => new()
    {
        { "not json", "event: content_block_delta\ndata: {\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"\n\n" },
        { "not an object", "event: content_block_delta\ndata: [1,2]\n\n" },
        { "a string index", "event: content_block_delta\ndata: {\"index\":\"0\",\"delta\":{}}\n\n" },
        { "a negative index", "event: content_block_delta\ndata: {\"index\":-1,\"delta\":{}}\n\n" },
        { "a block never started", "event: content_block_delta\ndata: {\"index\":5,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n" },
        { "an index beyond any answer", "event: content_block_start\ndata: {\"index\":99999999,\"content_block\":{\"type\":\"text\"}}\n\n" },
        { "a lone surrogate escape", "event: content_block_delta\ndata: {\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\ud800\"}}\n\n" },
        { "a second message_start", "event: message_start\ndata: {\"message\":{\"id\":\"m\"}}\n\n" },
        { "a text delta that is a number", "event: content_block_delta\ndata: {\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":5}}\n\n" },
    };

    [Theory]
    [MemberData(nameof(BadEvents))]
    public void A_bad_event_fails_the_stream_after_whole_chunks_only(string what, string bad)
    {
        string start = ProviderStreams.AnthropicOverloaded[..ProviderStreams.AnthropicOverloaded.IndexOf("event: error", StringComparison.Ordinal)];

        (string output, StreamStatus status, _) = Translate(new AnthropicStreamTranslator(), start + bad + "event: message_stop\ndata: {}\n\n", 3);

        Assert.True(status == StreamStatus.Failed, what);
        AssertWholeEvents(output, lastIsError: true);
        Assert.Contains("\"content\":\"Par\"", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_utf8_in_a_delta_fails_the_stream_without_half_a_chunk()
    {
        byte[] head = Encoding.UTF8.GetBytes(ProviderStreams.AnthropicOverloaded[..ProviderStreams.AnthropicOverloaded.IndexOf("event: error", StringComparison.Ordinal)]);
        byte[] bad = [.. "event: content_block_delta\ndata: {\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a"u8, 0xC3, 0x28, .. "\"}}\n\n"u8];

        (string output, StreamStatus status, _) = Translate(new AnthropicStreamTranslator(), [.. head, .. bad], 4);

        Assert.Equal(StreamStatus.Failed, status);
        AssertWholeEvents(output, lastIsError: true);
    }

    [Fact]
    public void An_oversized_event_fails_the_stream()
    {
        string huge = "event: content_block_delta\ndata: {\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" + new string('a', 5000) + "\"}}\n\n";

        (string output, StreamStatus status, _) = Translate(new AnthropicStreamTranslator(maxEventBytes: 4096), ProviderStreams.AnthropicOverloaded[..400] + huge, 512);

        Assert.Equal(StreamStatus.Failed, status);
        Assert.Contains("larger than the gateway accepts", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_events_and_blocks_are_left_out()
    {
        string stream = ProviderStreams.AnthropicText.Replace(
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"server_tool_use\",\"id\":\"srvtoolu_1\",\"name\":\"web_search\",\"input\":{}}}\n\n" +
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"query\\\": \\\"x\\\"}\"}}\n\n" +
            "event: brand_new_event\ndata: {\"type\":\"brand_new_event\",\"what\":[1,{\"a\":null}]}\n\n" +
            "data: {\"type\":\"ping\"}\n\n",
            StringComparison.Ordinal);

        (string output, StreamStatus status, _) = Translate(new AnthropicStreamTranslator(), stream, 11);

        Assert.Equal(StreamStatus.Done, status);
        Assert.Equal(Translate(new AnthropicStreamTranslator(), ProviderStreams.AnthropicText, 11).Output, output);
    }

    [Fact]
    public void Events_after_the_end_are_not_translated()
    {
        var translator = new AnthropicStreamTranslator();
        (string output, StreamStatus status, _) = Translate(translator, ProviderStreams.AnthropicText + "event: content_block_delta\ndata: {}\n\n", 100_000);

        Assert.Equal(StreamStatus.Done, status);
        Assert.EndsWith("data: [DONE]\n\n", output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_usage_count_that_is_null_keeps_the_earlier_one()
    {
        string stream = ProviderStreams.AnthropicText.Replace(
            "\"usage\":{\"output_tokens\":15}",
            "\"usage\":{\"input_tokens\":null,\"cache_read_input_tokens\":null,\"output_tokens\":15,\"server_tool_use\":{\"web_search_requests\":1}}",
            StringComparison.Ordinal);
        Assert.NotEqual(ProviderStreams.AnthropicText, stream);

        (_, StreamStatus status, TokenUsage usage) = Translate(new AnthropicStreamTranslator(), stream, 100_000);

        Assert.Equal(StreamStatus.Done, status);
        Assert.Equal(25, usage.InputTokens);
        Assert.Equal(15, usage.OutputTokens);
    }

    [Fact]
    public void A_bad_gemini_part_fails_the_event_before_any_of_its_parts_is_written()
    {
        string stream = ProviderStreams.GeminiText[..(ProviderStreams.GeminiText.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)] +
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi there\"}, {\"functionCall\": {\"args\": {}}}],\"role\": \"model\"},\"index\": 0}]}\r\n\r\n";

        (string output, StreamStatus status, _) = Translate(new GeminiStreamTranslator(), stream, 100_000);

        Assert.Equal(StreamStatus.Failed, status);
        Assert.DoesNotContain("Hi there", output, StringComparison.Ordinal);
        AssertWholeEvents(output, lastIsError: true);
    }

    [Fact]
    public void Usage_is_left_out_unless_asked_for()
    {
        string output = Translate(new AnthropicStreamTranslator(), ProviderStreams.AnthropicText, 100_000, includeUsage: false).Output;

        Assert.DoesNotContain("\"usage\"", output, StringComparison.Ordinal);
        Assert.Contains("\"finish_reason\":\"stop\"", output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_reused_translator_allocates_nothing_per_stream()
    {
        byte[] input = Encoding.UTF8.GetBytes(ProviderStreams.AnthropicToolUse);
        var translator = new AnthropicStreamTranslator();
        var output = new ArrayBufferWriter<byte>(64 * 1024);
        RunOnce(translator, input, output);
        RunOnce(translator, input, output);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            RunOnce(translator, input, output);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        static void RunOnce(StreamTranslator translator, byte[] input, ArrayBufferWriter<byte> output)
        {
            output.ResetWrittenCount();
            translator.Start("chatcmpl-x"u8, "model"u8, 1_700_000_000, includeUsage: true);
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(input));
            translator.Translate(ref reader, output);
            translator.Complete(output);
        }
    }

    [Theory]
    [MemberData(nameof(Cuts))]
    public async Task Gemini_text_and_thoughts_reach_the_openai_sdk(int cut)
    {
        (string output, StreamStatus status, TokenUsage usage) = Translate(new GeminiStreamTranslator(), ProviderStreams.GeminiText, cut);

        Assert.Equal(StreamStatus.Done, status);
        Assert.Equal(8, usage.InputTokens);
        Assert.Equal(36, usage.OutputTokens);
        Assert.Equal(24, usage.ReasoningTokens);
        JsonElement sdk = await ReadWithSdk(output);
        JsonElement final = sdk.GetProperty("final");
        Assert.Equal("mV5xaOyKBvCb7dcP_aXx8AQ", final.GetProperty("id").GetString());
        Assert.Equal("gemini-2.5-flash", final.GetProperty("model").GetString());
        JsonElement choice = final.GetProperty("choices")[0];
        Assert.Equal("The sky is blue — Rayleigh scattering.", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(24, final.GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());
        Assert.Contains("\"reasoning_content\":\"Thinking about it: \"", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_gemini_function_call_becomes_a_whole_tool_call()
    {
        (string output, StreamStatus status, _) = Translate(new GeminiStreamTranslator(), ProviderStreams.GeminiFunctionCall, 100_000);

        Assert.Equal(StreamStatus.Done, status);
        JsonElement choice = (await ReadWithSdk(output)).GetProperty("final").GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        JsonElement call = Assert.Single(choice.GetProperty("message").GetProperty("tool_calls").EnumerateArray());
        Assert.Matches(@"^call_[0-9a-f]{24}\.CiIBVKhc7oDPpCaXyJKKssjqr4g3JNOSgWi$", call.GetProperty("id").GetString()); // the thought signature rides along
        Assert.Equal("get_weather", call.GetProperty("function").GetProperty("name").GetString());
        using JsonDocument arguments = JsonDocument.Parse(call.GetProperty("function").GetProperty("arguments").GetString()!);
        Assert.Equal("Paris", arguments.RootElement.GetProperty("location").GetString());
        Assert.Equal(2, arguments.RootElement.GetProperty("days").GetArrayLength());
    }

    [Fact]
    public async Task A_blocked_gemini_prompt_ends_with_content_filter()
    {
        (string output, StreamStatus status, TokenUsage usage) = Translate(new GeminiStreamTranslator(), ProviderStreams.GeminiBlocked, 100_000);

        Assert.Equal(StreamStatus.Done, status);
        Assert.Equal(9, usage.InputTokens);
        JsonElement choice = (await ReadWithSdk(output)).GetProperty("final").GetProperty("choices")[0];
        Assert.Equal("content_filter", choice.GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task A_gemini_error_reaches_the_sdk_and_a_cut_stream_fails()
    {
        (string output, StreamStatus status, _) = Translate(new GeminiStreamTranslator(), ProviderStreams.GeminiError, 17);
        Assert.Equal(StreamStatus.Failed, status);
        JsonElement error = (await ReadWithSdk(output)).GetProperty("error");
        Assert.Equal("The model is overloaded. Please try again later.", error.GetProperty("message").GetString());
        Assert.Equal("UNAVAILABLE", error.GetProperty("type").GetString());

        string firstEventOnly = ProviderStreams.GeminiText[..(ProviderStreams.GeminiText.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)];
        (output, status, _) = Translate(new GeminiStreamTranslator(), firstEventOnly, 100_000);
        Assert.Equal(StreamStatus.Failed, status);
        AssertWholeEvents(output, lastIsError: true);
    }

    private static (string Output, StreamStatus Status, TokenUsage Usage) Translate(StreamTranslator translator, string stream, int cut, bool includeUsage = true) =>
        Translate(translator, Encoding.UTF8.GetBytes(stream), cut, includeUsage);

    /// <summary>Feeds the stream <paramref name="cut"/> bytes at a time, keeping what the translator left unread, as a proxy loop would.</summary>
    private static (string Output, StreamStatus Status, TokenUsage Usage) Translate(StreamTranslator translator, byte[] input, int cut, bool includeUsage = true)
    {
        var output = new ArrayBufferWriter<byte>();
        translator.Start("chatcmpl-gateway"u8, "requested-model"u8, 1_764_547_200, includeUsage);
        var pending = new List<byte>();
        StreamStatus status = StreamStatus.Continue;
        for (int offset = 0; offset < input.Length && status == StreamStatus.Continue; offset += cut)
        {
            pending.AddRange(input.AsSpan(offset, Math.Min(cut, input.Length - offset)).ToArray());
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(pending.ToArray()));
            status = translator.Translate(ref reader, output);
            pending.RemoveRange(0, (int)reader.Consumed);
        }

        if (status == StreamStatus.Continue)
        {
            status = translator.Complete(output);
        }

        return (Encoding.UTF8.GetString(output.WrittenSpan), status, translator.Usage);
    }

    /// <summary>Every event is "data: JSON" (or [DONE]) and ends in a blank line; the last is an error when asked.</summary>
    private static void AssertWholeEvents(string output, bool lastIsError)
    {
        Assert.EndsWith("\n\n", output, StringComparison.Ordinal);
        string[] events = output[..^2].Split("\n\n");
        foreach (string e in events)
        {
            Assert.StartsWith("data: ", e, StringComparison.Ordinal);
            using JsonDocument json = JsonDocument.Parse(e["data: ".Length..]);
        }

        if (lastIsError)
        {
            using JsonDocument last = JsonDocument.Parse(events[^1]["data: ".Length..]);
            Assert.True(last.RootElement.TryGetProperty("error", out _), events[^1]);
        }
    }

    private static async Task<JsonElement> ReadWithSdk(string stream)
    {
        Peer.Result result = await Peer.RunAsync("node", [NodePeer.Script("openai_stream.js")], stdin: stream, timeout: TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.All);
        using JsonDocument document = JsonDocument.Parse(result.Stdout);
        return document.RootElement.Clone();
    }
}

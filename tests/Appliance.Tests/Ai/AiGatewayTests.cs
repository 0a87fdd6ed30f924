using System.Text.Json;
using Appliance.Tests.Support;

namespace Appliance.Tests.Ai;

/// <summary>
/// routes[].ai end to end: the official OpenAI SDK (Peers/node/openai_chat.js) talks to the gateway, which talks to
/// providers that cannot run here, stood in for by Peers/node/fake_llm_provider.js speaking their documented wire
/// formats (and checking the headers and members each requires). What the provider received is read back from it.
/// </summary>
public sealed class AiGatewayTests : IAsyncLifetime
{
    private const string ToolsJson = """
        "tools": [ { "type": "function", "function": { "name": "get_weather", "description": "Weather now",
          "parameters": { "type": "object", "properties": { "location": { "type": "string" } }, "required": ["location"] } } } ]
        """;

    private readonly string _keys = Path.Combine(Path.GetTempPath(), "appliance-ai-keys-" + Guid.NewGuid().ToString("N"));
    private NodePeer _provider = null!;
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _provider = await NodePeer.StartAsync("fake_llm_provider.js");
        Directory.CreateDirectory(_keys);
        await File.WriteAllTextAsync(Path.Combine(_keys, "anthropic"), "test-anthropic-key\n");
        await File.WriteAllTextAsync(Path.Combine(_keys, "gemini"), "test-gemini-key");
        await File.WriteAllTextAsync(Path.Combine(_keys, "openai"), "test-openai-key");
        string provider = $"http://127.0.0.1:{_provider.Port}";
        string ai = $$"""
            "ai": {
              "maxRequestBytes": "8KiB",
              "providers": [
                { "id": "anthropic", "kind": "anthropic", "baseUrl": "{{provider}}", "apiKeyFile": "{{_keys}}/anthropic" },
                { "id": "google", "kind": "gemini", "baseUrl": "{{provider}}/", "apiKeyFile": "{{_keys}}/gemini" },
                { "id": "local", "kind": "openai", "baseUrl": "{{provider}}/v1", "apiKeyFile": "{{_keys}}/openai" },
                { "id": "slowpoke", "kind": "anthropic", "baseUrl": "{{provider}}", "apiKeyFile": "{{_keys}}/anthropic", "timeout": "1s" },
                { "id": "patient", "kind": "anthropic", "baseUrl": "{{provider}}", "apiKeyFile": "{{_keys}}/anthropic", "timeout": "10m" },
                { "id": "revoked", "kind": "anthropic", "baseUrl": "{{provider}}", "apiKeyFile": "{{_keys}}/gemini" },
                { "id": "local-revoked", "kind": "openai", "baseUrl": "{{provider}}/v1", "apiKeyFile": "{{_keys}}/gemini" }
              ],
              "models": [
                { "name": "claude", "provider": "anthropic", "model": "claude-opus-4-6", "maxTokens": 1000, "cost": { "input": 3, "cachedInput": 0.3, "output": 15 } },
                { "name": "gem", "provider": "google", "model": "gemini-2.5-flash" },
                { "name": "gpt", "provider": "local", "model": "gpt-4o-mini" },
                { "name": "slow", "provider": "slowpoke" },
                { "name": "patient", "provider": "patient", "fallbacks": ["claude"] },
                { "name": "org/tuned", "provider": "revoked" },
                { "name": "backed", "provider": "revoked", "fallbacks": ["slow", "gem"] },
                { "name": "gpt-down", "provider": "local-revoked", "fallbacks": ["claude", "gpt"] },
                { "name": "gpt-down-claude", "provider": "local-revoked", "fallbacks": ["claude"] },
                { "name": "claude-backed", "provider": "anthropic", "model": "claude-opus-4-6", "fallbacks": ["gem"] }
              ]
            },
            """;
        const string routes = """
            { "id": "llm", "match": { "path": "/llm/{**rest}" }, "ai": {} },
            { "id": "llm-claude", "match": { "path": "/claude-only/{**rest}" }, "ai": { "models": ["claude"] } },
            { "id": "llm-keyed", "tenant": "acme", "match": { "path": "/keyed/{**rest}" }, "ai": {}, "policies": { "apiKey": {} } },
            { "id": "llm-budget", "tenant": "acme", "match": { "path": "/budget/{**rest}" }, "ai": {},
              "policies": { "apiKey": {}, "quota": { "tokens": 30, "per": "day" } } },
            """;
        _server = await TestServer.StartAsync(TestServer.DefaultConfig(extraRoutes: routes)
            .Replace("\"server\": {", ai + $"\"admin\": {{ \"socketPath\": \"{AdminSocket}\" }}, \"tenants\": [ {{ \"id\": \"acme\", \"hosts\": [\"acme.test\"] }} ], \"server\": {{")
            .Replace("\"shutdownTimeout\": \"5s\" }", "\"shutdownTimeout\": \"5s\", \"accessLog\": { \"path\": \"access.log\" } }"));
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _provider.DisposeAsync();
        Directory.Delete(_keys, recursive: true);
    }

    private string AdminSocket => Path.Combine(_keys, "admin.sock");

    private string BaseUrl(string prefix = "/llm") => $"http://127.0.0.1:{_server.HttpPort}{prefix}/v1";

    private async Task<JsonElement> Sdk(string request, string prefix = "/llm", string apiKey = "client-gateway-key")
    {
        Peer.Result result = await NodePeer.RunAsync("openai_chat.js", BaseUrl(prefix), apiKey, request);
        Assert.True(result.ExitCode == 0, result.All);
        using JsonDocument document = JsonDocument.Parse(result.Stdout);
        return document.RootElement.Clone();
    }

    private async Task<JsonElement> ProviderReceived()
    {
        Peer.Result result = await Peer.CurlAsync($"http://127.0.0.1:{_provider.Port}/__last");
        using JsonDocument document = JsonDocument.Parse(result.Stdout);
        return document.RootElement.Clone();
    }

    private async Task<string[]> MetricLines() =>
        (await Peer.CurlAsync("--unix-socket", AdminSocket, "http://admin/v1/metrics")).Stdout.Split('\n');

    private static string Message(JsonElement completion) =>
        completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

    [Fact]
    public async Task Anthropic_answers_through_the_openai_sdk()
    {
        JsonElement completion = (await Sdk("""
            { "model": "claude", "messages": [ { "role": "system", "content": "Be brief." }, { "role": "developer", "content": [ { "type": "text", "text": "No emoji." } ] },
              { "role": "user", "content": "hello" } ], "temperature": 0.2, "stop": "END", "user": "u-42" }
            """)).GetProperty("completion");

        Assert.Equal("You said: hello", Message(completion));
        Assert.Equal("chat.completion", completion.GetProperty("object").GetString());
        Assert.Equal("claude-opus-4-6", completion.GetProperty("model").GetString());
        Assert.Equal("stop", completion.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(18, completion.GetProperty("usage").GetProperty("total_tokens").GetInt32());

        JsonElement sent = await ProviderReceived();
        Assert.Equal("/v1/messages", sent.GetProperty("path").GetString());
        Assert.Equal("test-anthropic-key", sent.GetProperty("headers").GetProperty("x-api-key").GetString());
        Assert.Equal("2023-06-01", sent.GetProperty("headers").GetProperty("anthropic-version").GetString());
        Assert.False(sent.GetProperty("headers").TryGetProperty("authorization", out _)); // the client's key stays here
        JsonElement body = sent.GetProperty("body");
        Assert.Equal("claude-opus-4-6", body.GetProperty("model").GetString());
        Assert.Equal(1000, body.GetProperty("max_tokens").GetInt32());
        Assert.Equal("Be brief.\n\nNo emoji.", body.GetProperty("system").GetString());
        Assert.Equal(0.2, body.GetProperty("temperature").GetDouble());
        Assert.Equal("END", body.GetProperty("stop_sequences")[0].GetString());
        Assert.Equal("u-42", body.GetProperty("metadata").GetProperty("user_id").GetString());
        JsonElement message = Assert.Single(body.GetProperty("messages").EnumerateArray());
        Assert.Equal("user", message.GetProperty("role").GetString());
        Assert.False(body.TryGetProperty("stream", out _));
    }

    [Fact]
    public async Task Anthropic_streams_through_the_openai_sdk_with_usage()
    {
        JsonElement result = await Sdk("""
            { "model": "claude", "messages": [ { "role": "user", "content": "hello" } ], "stream": true, "stream_options": { "include_usage": true }, "max_tokens": 77 }
            """);

        JsonElement final = result.GetProperty("final");
        Assert.Equal("You said: hello", Message(final));
        Assert.Equal("stop", final.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(12, final.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(6, final.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.True(result.GetProperty("chunks").GetArrayLength() >= 4);
        JsonElement body = (await ProviderReceived()).GetProperty("body");
        Assert.True(body.GetProperty("stream").GetBoolean());
        Assert.Equal(77, body.GetProperty("max_tokens").GetInt32());
    }

    [Theory]
    [InlineData("claude", false)]
    [InlineData("claude", true)]
    [InlineData("gem", false)]
    [InlineData("gem", true)]
    public async Task A_tool_call_goes_round_the_loop(string model, bool stream)
    {
        JsonElement first = await Sdk($$"""
            { "model": "{{model}}", "messages": [ { "role": "user", "content": "weather" } ], {{ToolsJson}}, "tool_choice": "required", "stream": {{(stream ? "true" : "false")}} }
            """);
        JsonElement completion = first.GetProperty(stream ? "final" : "completion");
        JsonElement choice = completion.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        JsonElement call = Assert.Single(choice.GetProperty("message").GetProperty("tool_calls").EnumerateArray());
        Assert.Equal("get_weather", call.GetProperty("function").GetProperty("name").GetString());
        using (JsonDocument arguments = JsonDocument.Parse(call.GetProperty("function").GetProperty("arguments").GetString()!))
        {
            Assert.Equal("Paris", arguments.RootElement.GetProperty("location").GetString());
        }

        JsonElement sent = (await ProviderReceived()).GetProperty("body");
        if (model == "claude")
        {
            Assert.Equal("get_weather", sent.GetProperty("tools")[0].GetProperty("name").GetString());
            Assert.Equal("object", sent.GetProperty("tools")[0].GetProperty("input_schema").GetProperty("type").GetString());
            Assert.Equal("any", sent.GetProperty("tool_choice").GetProperty("type").GetString());
        }
        else
        {
            Assert.Equal("get_weather", sent.GetProperty("tools")[0].GetProperty("functionDeclarations")[0].GetProperty("name").GetString());
            Assert.Equal("ANY", sent.GetProperty("toolConfig").GetProperty("functionCallingConfig").GetProperty("mode").GetString());
        }

        // The client runs the tool and sends the result back with the conversation so far.
        string id = call.GetProperty("id").GetString()!;
        string assistant = JsonSerializer.Serialize(choice.GetProperty("message"));
        JsonElement second = await Sdk($$"""
            { "model": "{{model}}", "messages": [ { "role": "user", "content": "weather" }, {{assistant}},
              { "role": "tool", "tool_call_id": "{{id}}", "content": "{\"temperature\": 21}" }, { "role": "user", "content": "thanks" } ], {{ToolsJson}} }
            """);
        Assert.Equal("You said: thanks", Message(second.GetProperty("completion")));
        JsonElement messages = (await ProviderReceived()).GetProperty("body").GetProperty(model == "claude" ? "messages" : "contents");
        Assert.Equal(4, messages.GetArrayLength());
        if (model == "claude")
        {
            JsonElement use = messages[1].GetProperty("content").EnumerateArray().Single(b => b.GetProperty("type").GetString() == "tool_use");
            Assert.Equal(id, use.GetProperty("id").GetString());
            Assert.Equal("Paris", use.GetProperty("input").GetProperty("location").GetString());
            JsonElement result = messages[2].GetProperty("content")[0];
            Assert.Equal("tool_result", result.GetProperty("type").GetString());
            Assert.Equal(id, result.GetProperty("tool_use_id").GetString());
        }
        else
        {
            Assert.Equal("model", messages[1].GetProperty("role").GetString());
            Assert.Equal("Paris", messages[1].GetProperty("parts").EnumerateArray().Single(p => p.TryGetProperty("functionCall", out _))
                .GetProperty("functionCall").GetProperty("args").GetProperty("location").GetString());
            JsonElement response = messages[2].GetProperty("parts")[0].GetProperty("functionResponse");
            Assert.Equal("get_weather", response.GetProperty("name").GetString());
            Assert.Equal(21, response.GetProperty("response").GetProperty("temperature").GetInt32());
        }
    }

    [Fact]
    public async Task Gemini_answers_and_streams_through_the_openai_sdk()
    {
        JsonElement completion = (await Sdk("""
            { "model": "gem", "messages": [ { "role": "system", "content": "Be brief." }, { "role": "user", "content": "hello" } ],
              "response_format": { "type": "json_object" }, "top_p": 0.5 }
            """)).GetProperty("completion");
        Assert.Equal("You said: hello", Message(completion));
        Assert.Equal("gemini-2.5-flash", completion.GetProperty("model").GetString());
        JsonElement sent = await ProviderReceived();
        Assert.Equal("/v1beta/models/gemini-2.5-flash:generateContent", sent.GetProperty("path").GetString());
        Assert.Equal("test-gemini-key", sent.GetProperty("headers").GetProperty("x-goog-api-key").GetString());
        JsonElement body = sent.GetProperty("body");
        Assert.Equal("Be brief.", body.GetProperty("systemInstruction").GetProperty("parts")[0].GetProperty("text").GetString());
        Assert.Equal("application/json", body.GetProperty("generationConfig").GetProperty("responseMimeType").GetString());
        Assert.Equal(0.5, body.GetProperty("generationConfig").GetProperty("topP").GetDouble());
        Assert.Equal(4096, body.GetProperty("generationConfig").GetProperty("maxOutputTokens").GetInt32());

        JsonElement streamed = await Sdk("""{ "model": "gem", "messages": [ { "role": "user", "content": "hello" } ], "stream": true }""");
        Assert.Equal("You said: hello", Message(streamed.GetProperty("final")));
        Assert.Equal("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", (await ProviderReceived()).GetProperty("path").GetString());
    }

    [Fact]
    public async Task An_openai_compatible_provider_gets_the_request_as_sent_with_its_own_model_and_key()
    {
        JsonElement completion = (await Sdk("""
            { "model": "gpt", "messages": [ { "role": "user", "content": "hello" } ], "seed": 7, "logit_bias": { "50256": -100 } }
            """)).GetProperty("completion");
        Assert.Equal("You said: hello", Message(completion));
        JsonElement sent = await ProviderReceived();
        Assert.Equal("/v1/chat/completions", sent.GetProperty("path").GetString());
        Assert.Equal("Bearer test-openai-key", sent.GetProperty("headers").GetProperty("authorization").GetString());
        Assert.Equal("gpt-4o-mini", sent.GetProperty("body").GetProperty("model").GetString());
        Assert.Equal(7, sent.GetProperty("body").GetProperty("seed").GetInt32());
        Assert.Equal(-100, sent.GetProperty("body").GetProperty("logit_bias").GetProperty("50256").GetInt32());

        JsonElement streamed = await Sdk("""{ "model": "gpt", "messages": [ { "role": "user", "content": "hello" } ], "stream": true, "stream_options": { "include_usage": true } }""");
        Assert.Equal("You said: hello", Message(streamed.GetProperty("final")));
        Assert.Equal(18, streamed.GetProperty("final").GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Theory]
    [InlineData("""{ "model": "nope", "messages": [ { "role": "user", "content": "x" } ] }""", 404, "model_not_found", "model")]
    [InlineData("""{ "model": "claude", "messages": [] }""", 400, null, "messages")]
    [InlineData("""{ "messages": [ { "role": "user", "content": "x" } ] }""", 400, null, "model")]
    [InlineData("""{ "model": "claude", "messages": [ { "role": "robot", "content": "x" } ] }""", 400, null, "messages[0].role")]
    [InlineData("""{ "model": "claude", "messages": [ { "role": "user", "content": "x" } ], "n": 2 }""", 400, "unsupported_parameter", "n")]
    [InlineData("""{ "model": "claude", "messages": [ { "role": "user", "content": "x" } ], "logprobs": true }""", 400, "unsupported_parameter", "logprobs")]
    [InlineData("""{ "model": "claude", "messages": [ { "role": "user", "content": "x" } ], "max_tokens": -1 }""", 400, null, "max_tokens")]
    [InlineData("""{ "model": "gem", "messages": [ { "role": "user", "content": [ { "type": "image_url", "image_url": { "url": "https://x.test/cat.png" } } ] } ] }""", 400, null, "messages[0].content[0].image_url.url")]
    [InlineData("""{ "model": "gem", "messages": [ { "role": "tool", "tool_call_id": "call_unknown", "content": "x" } ] }""", 400, null, "messages[0].tool_call_id")]
    [InlineData("""{ "model": "claude", "messages": [ { "role": "assistant", "tool_calls": [ { "id": "c", "type": "function", "function": { "name": "f", "arguments": "{not json" } } ] } ] }""", 400, null, "messages[0].tool_calls[0].function.arguments")]
    [InlineData("""{ "model": "claude", "messages": [ { "role": "user", "content": "x" } ], "n": "2" }""", 400, null, "n")]
    [InlineData("""{ "model": "claude", "messages": [ { "role": "user", "content": "x" } ], "max_tokens": "100" }""", 400, null, "max_tokens")]
    [InlineData("""{ "model": "claude", "messages": [ { "role": "user", "content": "x" } ], "tools": [ { "type": "function", "function": { "name": "f" } } ], "tool_choice": 5 }""", 400, null, "tool_choice")]
    [InlineData("""{ "model": "claude", "messages": [ { "role": "system", "content": [ { "type": 1, "text": "x" } ] }, { "role": "user", "content": "x" } ] }""", 400, null, "messages[0].content")]
    [InlineData("""{ "model": "claude", "messages": [ { "role": "user", "content": "\udc00" } ] }""", 400, null, null)]
    [InlineData("""{ "model": "claude", "messages": [ { "role": "user", "content": "x" } ], "reasoning_effort": "extreme" }""", 400, null, "reasoning_effort")]
    [InlineData("""{ "model": "gem", "messages": [ { "role": "user", "content": "x" } ], "reasoning_effort": 3 }""", 400, null, "reasoning_effort")]
    public async Task A_request_the_gateway_cannot_take_is_an_openai_error_naming_the_parameter(string request, int status, string? code, string? param)
    {
        JsonElement error = (await Sdk(request)).GetProperty("error");

        Assert.Equal(status, error.GetProperty("status").GetInt32());
        Assert.Equal(param, error.GetProperty("param").GetString());
        if (code is not null)
        {
            Assert.Equal(code, error.GetProperty("code").GetString());
        }
    }

    [Fact]
    public async Task A_route_serves_only_its_models()
    {
        JsonElement error = (await Sdk("""{ "model": "gem", "messages": [ { "role": "user", "content": "x" } ] }""", "/claude-only")).GetProperty("error");
        Assert.Equal(404, error.GetProperty("status").GetInt32());

        JsonElement models = (await Sdk("models", "/claude-only")).GetProperty("models");
        Assert.Equal(["claude"], models.EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        JsonElement all = (await Sdk("models")).GetProperty("models");
        Assert.Equal(["backed", "claude", "claude-backed", "gem", "gpt", "gpt-down", "gpt-down-claude", "org/tuned", "patient", "slow"], all.EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        Peer.Result one = await Peer.CurlAsync($"{BaseUrl()}/models/org%2Ftuned");
        Assert.Contains("\"id\":\"org/tuned\"", one.Stdout, StringComparison.Ordinal);
        Assert.Equal("anthropic", all[1].GetProperty("owned_by").GetString());
        Assert.Equal("local-revoked", all[5].GetProperty("owned_by").GetString());
    }

    [Theory]
    [InlineData("claude", 529, "overloaded_error", "Overloaded")]
    [InlineData("gem", 503, "UNAVAILABLE", "The model is overloaded. Please try again later.")]
    [InlineData("gpt", 503, "server_error", "The server is overloaded.")]
    public async Task A_provider_error_keeps_its_status_and_message(string model, int status, string type, string message)
    {
        JsonElement error = (await Sdk($$"""{ "model": "{{model}}", "messages": [ { "role": "user", "content": "overload" } ] }""")).GetProperty("error");

        Assert.Equal(status, error.GetProperty("status").GetInt32());
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Contains(message, error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("claude")]
    [InlineData("gem")]
    [InlineData("gpt")]
    public async Task A_stream_the_provider_breaks_off_never_looks_whole(string model)
    {
        JsonElement result = await Sdk($$"""{ "model": "{{model}}", "messages": [ { "role": "user", "content": "break" } ], "stream": true }""");

        Assert.True(result.TryGetProperty("error", out JsonElement error), result.ToString());
        Assert.False(result.TryGetProperty("final", out _));
        if (model != "gpt")
        {
            Assert.Contains("broke off", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_provider_refusing_the_gateways_key_is_a_502_without_its_message()
    {
        JsonElement error = (await Sdk("""{ "model": "org/tuned", "messages": [ { "role": "user", "content": "hello" } ] }""")).GetProperty("error");

        Assert.Equal(502, error.GetProperty("status").GetInt32());
        Assert.DoesNotContain("x-api-key", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains("(401)", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parallel_tool_results_go_to_anthropic_in_one_turn()
    {
        JsonElement first = (await Sdk($$"""{ "model": "claude", "messages": [ { "role": "user", "content": "two cities" } ], {{ToolsJson}} }""")).GetProperty("completion");
        JsonElement message = first.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal(2, message.GetProperty("tool_calls").GetArrayLength());

        string assistant = JsonSerializer.Serialize(message);
        JsonElement second = await Sdk($$"""
            { "model": "claude", "messages": [ { "role": "user", "content": "two cities" }, {{assistant}},
              { "role": "tool", "tool_call_id": "toolu_paris", "content": "18" }, { "role": "tool", "tool_call_id": "toolu_rome", "content": "24" } ], {{ToolsJson}} }
            """);

        // The stand-in refuses, as Anthropic does, tool_use blocks not all answered at the start of the next message.
        Assert.False(second.TryGetProperty("error", out JsonElement error), error.ToString());
        JsonElement messages = (await ProviderReceived()).GetProperty("body").GetProperty("messages");
        Assert.Equal(3, messages.GetArrayLength());
        Assert.Equal(["toolu_paris", "toolu_rome"], messages[2].GetProperty("content").EnumerateArray().Select(b => b.GetProperty("tool_use_id").GetString()));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_gemini_thought_signature_comes_back_with_its_call(bool stream)
    {
        JsonElement first = await Sdk($$"""{ "model": "gem", "messages": [ { "role": "user", "content": "weather" } ], {{ToolsJson}}, "stream": {{(stream ? "true" : "false")}} }""");
        JsonElement message = first.GetProperty(stream ? "final" : "completion").GetProperty("choices")[0].GetProperty("message");
        string assistant = JsonSerializer.Serialize(message);
        string id = message.GetProperty("tool_calls")[0].GetProperty("id").GetString()!;

        await Sdk($$"""
            { "model": "gem", "messages": [ { "role": "user", "content": "weather" }, {{assistant}}, { "role": "tool", "tool_call_id": "{{id}}", "content": "sunny" } ] }
            """);

        JsonElement part = (await ProviderReceived()).GetProperty("body").GetProperty("contents")[1].GetProperty("parts")[0];
        Assert.Equal("CiIBVKhc7oDPpCaXyJKKssjqr4g3+/JNOSgWi==", part.GetProperty("thoughtSignature").GetString());
        Assert.Equal("get_weather", part.GetProperty("functionCall").GetProperty("name").GetString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_failing_provider_falls_back_to_the_next_model(bool stream)
    {
        // "backed" is served by a provider that refuses the gateway's key: its first fallback answers.
        JsonElement result = await Sdk($$"""{ "model": "backed", "messages": [ { "role": "user", "content": "hello" } ], "stream": {{(stream ? "true" : "false")}} }""");

        JsonElement completion = result.GetProperty(stream ? "final" : "completion");
        Assert.Equal("You said: hello", Message(completion));
        Assert.Equal("slow", completion.GetProperty("model").GetString());
    }

    [Fact]
    public async Task Fallbacks_end_with_the_last_failure_and_never_retry_a_bad_request()
    {
        // Every provider in the chain is overloaded: the client gets the last one's error.
        JsonElement error = (await Sdk("""{ "model": "backed", "messages": [ { "role": "user", "content": "overload" } ] }""")).GetProperty("error");
        Assert.Equal(503, error.GetProperty("status").GetInt32());
        Assert.Equal("UNAVAILABLE", error.GetProperty("type").GetString());

        // A request the first provider's kind cannot take is the client's error: no fallback.
        error = (await Sdk("""{ "model": "backed", "messages": [ { "role": "user", "content": "hello" } ], "n": 3 }""")).GetProperty("error");
        Assert.Equal(400, error.GetProperty("status").GetInt32());
        Assert.Equal("n", error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task The_access_log_names_the_model_that_answered_and_its_tokens()
    {
        await Sdk("""{ "model": "claude", "messages": [ { "role": "user", "content": "hello" } ] }""");
        await Sdk("""{ "model": "gem", "messages": [ { "role": "user", "content": "hello" } ], "stream": true }""");
        await Sdk("""{ "model": "backed", "messages": [ { "role": "user", "content": "hello" } ] }""");
        await Sdk("""{ "model": "gpt", "messages": [ { "role": "user", "content": "hello" } ], "stream": true, "stream_options": { "include_usage": true } }""");
        await Peer.CurlAsync($"http://127.0.0.1:{_server.HttpPort}/");

        JsonElement[] lines = (await _server.AccessLogLinesAsync(5)).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(5, lines.Length);
        JsonElement claude = lines.Single(l => l.TryGetProperty("model", out JsonElement m) && m.GetString() == "claude");
        Assert.Equal(("claude", 12, 6), Fields(claude));
        Assert.Equal(0.000126m, claude.GetProperty("cost").GetDecimal()); // 12 × 3 + 6 × 15 per million tokens
        JsonElement gem = lines.Single(l => l.TryGetProperty("model", out JsonElement m) && m.GetString() == "gem");
        Assert.Equal(("gem", 12, 6), Fields(gem));
        Assert.False(gem.TryGetProperty("cost", out _)); // no price, no cost
        Assert.Equal(("gpt", 12, 6), Fields(lines.Single(l => l.TryGetProperty("model", out JsonElement m) && m.GetString() == "gpt"))); // passed through, watched
        JsonElement fellBack = lines.Single(l => l.TryGetProperty("model", out JsonElement m) && m.GetString() == "slow");
        Assert.Equal("ai:slowpoke", fellBack.GetProperty("upstream_cluster").GetString());
        Assert.Equal(200, fellBack.GetProperty("upstream_status").GetInt32());
        Assert.False(lines.Single(l => l.GetProperty("route").GetString() == "hello").TryGetProperty("model", out _));

        static (string?, long, long) Fields(JsonElement line) =>
            (line.GetProperty("model").GetString(), line.GetProperty("input_tokens").GetInt64(), line.GetProperty("output_tokens").GetInt64());
    }

    [Theory]
    [InlineData("h1", false)]
    [InlineData("h1", true)]
    [InlineData("h2", false)]
    [InlineData("h2", true)]
    public async Task A_client_that_goes_away_stops_the_answer_it_would_pay_for(string protocol, bool stream)
    {
        // The provider holds the request ("slow": no answer; "slow after start": the first text, then nothing) and has
        // 10 minutes by its timeout. The client leaves (HTTP/1.1: closes its connection; HTTP/2: RST_STREAM, the
        // connection kept): the gateway must close the provider's request then, not at the timeout, and not try the
        // model's fallback for a client that is gone.
        string request = $$"""{ "model": "patient", "messages": [ { "role": "user", "content": "{{(stream ? "slow after start" : "slow")}}" } ], "stream": {{(stream ? "true" : "false")}} }""";
        string origin = protocol == "h2" ? $"https://127.0.0.1:{_server.HttpsPort}" : $"http://127.0.0.1:{_server.HttpPort}";
        Peer.Result result = await NodePeer.RunAsync("abandon_chat.js", origin, "/llm/v1/chat/completions", $"http://127.0.0.1:{_provider.Port}", protocol, request);
        Assert.True(result.ExitCode == 0, result.All);
        using JsonDocument document = JsonDocument.Parse(result.Stdout);
        JsonElement before = document.RootElement.GetProperty("before");
        Assert.Equal(before.GetProperty("hung").GetInt32() + 1, document.RootElement.GetProperty("held").GetProperty("hung").GetInt32());
        Assert.Equal(before.GetProperty("abandoned").GetInt32() + 1, document.RootElement.GetProperty("after").GetProperty("abandoned").GetInt32());
        if (stream)
        {
            Assert.Contains("Thinking it over", document.RootElement.GetProperty("received").GetString());
        }

        JsonElement line = (await _server.AccessLogLinesAsync(1)).Select(l => JsonDocument.Parse(l).RootElement).Single();
        Assert.Equal("patient", line.GetProperty("model").GetString());
        Assert.Equal(499, line.GetProperty("status").GetInt32()); // nginx's "client closed request"

        string[] lines = await MetricLines();
        Assert.Contains("appliance_ai_requests_total{model=\"patient\"} 1", lines);
        Assert.Contains("appliance_ai_provider_failures_total{model=\"patient\"} 0", lines); // the client's leaving, not the provider's failing
        Assert.DoesNotContain(lines, l => l.StartsWith("appliance_ai_requests_total{model=\"claude\"}", StringComparison.Ordinal) && !l.EndsWith(" 0", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_client_that_half_closes_after_pipelining_still_gets_every_answer()
    {
        // HTTP/1.1 only: an end of stream with a further request already sent is not a departure.
        const string body = """{ "model": "slow", "messages": [ { "role": "user", "content": "slow" } ] }""";
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync($"POST /llm/v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n{body}"
            + "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        client.ShutdownSend();
        List<HttpResponse> responses = await client.ReadResponsesAsync(2);
        Assert.Equal([504, 200], responses.Select(r => r.Status)); // the provider's 1 s timeout, not an abort; then the next request
    }

    [Fact]
    public async Task A_client_that_half_closes_with_nothing_more_to_send_is_taken_as_gone()
    {
        // As nginx does (proxy_ignore_client_abort off): the end of stream under a pending answer is the client leaving.
        const string body = """{ "model": "patient", "messages": [ { "role": "user", "content": "slow" } ] }""";
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync($"POST /llm/v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n{body}");
        Peer.Result held = await Peer.CurlAsync($"http://127.0.0.1:{_provider.Port}/__hung?atLeast=1");
        Assert.Contains("\"hung\":1", held.Stdout);
        client.ShutdownSend();
        Assert.Equal("", await client.ReadToEndAsync()); // closed with no answer (the provider has 10 minutes)
        Peer.Result abandoned = await Peer.CurlAsync($"http://127.0.0.1:{_provider.Port}/__abandoned?atLeast=1");
        Assert.Contains("\"abandoned\":1", abandoned.Stdout);
        JsonElement line = JsonDocument.Parse((await _server.AccessLogLinesAsync(1)).Single()).RootElement;
        Assert.Equal(499, line.GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task Metrics_count_requests_provider_failures_and_tokens_per_model()
    {
        await Sdk("""{ "model": "claude", "messages": [ { "role": "user", "content": "hello" } ] }""");
        await Sdk("""{ "model": "backed", "messages": [ { "role": "user", "content": "hello" } ], "stream": true }""");

        string[] lines = await MetricLines();
        Assert.Contains("appliance_ai_requests_total{model=\"claude\"} 1", lines);
        Assert.Contains("appliance_ai_requests_total{model=\"backed\"} 1", lines);
        Assert.Contains("appliance_ai_provider_failures_total{model=\"backed\"} 1", lines);
        Assert.Contains("appliance_ai_requests_total{model=\"slow\"} 1", lines);
        Assert.Contains("appliance_ai_provider_failures_total{model=\"slow\"} 0", lines);
        Assert.Contains("appliance_ai_tokens_total{model=\"claude\",type=\"input\"} 12", lines);
        Assert.Contains("appliance_ai_tokens_total{model=\"slow\",type=\"output\"} 6", lines);
        Assert.Contains("appliance_ai_cost_total{model=\"claude\"} 0.000126", lines);
        Assert.Contains("appliance_ai_cost_total{model=\"slow\"} 0", lines);

        Peer.Result routes = await Peer.CurlAsync("--unix-socket", AdminSocket, "http://admin/v1/routes");
        Assert.Contains("\"handler\": \"ai\"", routes.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_consumers_tokens_are_added_to_its_usage()
    {
        JsonElement consumer = await AdminJson("POST", "/v1/consumers", """{ "tenant": "acme", "name": "app" }""");
        string id = consumer.GetProperty("id").GetString()!;
        string secret = (await AdminJson("POST", $"/v1/consumers/{id}/keys", null)).GetProperty("secret").GetString()!;

        Assert.Equal(401, (await Sdk("""{ "model": "claude", "messages": [ { "role": "user", "content": "hello" } ] }""", "/keyed")).GetProperty("error").GetProperty("status").GetInt32());
        Assert.Equal("You said: hello", Message((await Sdk("""{ "model": "claude", "messages": [ { "role": "user", "content": "hello" } ] }""", "/keyed", secret)).GetProperty("completion")));
        Assert.Equal("You said: hello", Message((await Sdk("""{ "model": "gem", "messages": [ { "role": "user", "content": "hello" } ], "stream": true }""", "/keyed", secret)).GetProperty("final")));
        Assert.False((await ProviderReceived()).GetProperty("headers").TryGetProperty("authorization", out _));

        JsonElement[] rows = [.. (await AdminJson("GET", $"/v1/consumers/{id}/usage", null)).GetProperty("items").EnumerateArray()];
        Assert.Equal(2, rows.Sum(r => r.GetProperty("requests").GetInt64()));
        Assert.Equal(24, rows.Sum(r => r.GetProperty("inputTokens").GetInt64()));
        Assert.Equal(12, rows.Sum(r => r.GetProperty("outputTokens").GetInt64()));
    }

    [Fact]
    public async Task A_token_budget_refuses_the_consumer_once_spent()
    {
        JsonElement consumer = await AdminJson("POST", "/v1/consumers", """{ "tenant": "acme", "name": "budgeted" }""");
        string id = consumer.GetProperty("id").GetString()!;
        string secret = (await AdminJson("POST", $"/v1/consumers/{id}/keys", null)).GetProperty("secret").GetString()!;
        const string hello = """{ "model": "claude", "messages": [ { "role": "user", "content": "hello" } ] }""";

        // 18 tokens an answer against 30 a day: the second answer crosses the budget, the third request is refused.
        Assert.True((await Sdk(hello, "/budget", secret)).TryGetProperty("completion", out _));
        Assert.True((await Sdk(hello, "/budget", secret)).TryGetProperty("completion", out _));
        JsonElement error = (await Sdk(hello, "/budget", secret)).GetProperty("error");
        Assert.Equal(429, error.GetProperty("status").GetInt32());

        Peer.Result refused = await Peer.CurlAsync("-i", "-H", $"Authorization: Bearer {secret}", "-H", "Content-Type: application/json",
            "--data-binary", hello, $"{BaseUrl("/budget")}/chat/completions");
        Assert.StartsWith("HTTP/1.1 429", refused.Stdout, StringComparison.Ordinal);
        Assert.Contains("Retry-After: ", refused.Stdout, StringComparison.Ordinal);
        Assert.Contains("budget of 30 tokens", refused.Stdout, StringComparison.Ordinal);
    }

    private async Task<JsonElement> AdminJson(string method, string path, string? body)
    {
        var args = new List<string> { "-sS", "--unix-socket", AdminSocket, "-X", method, "-H", "Content-Type: application/json" };
        if (body is not null)
        {
            args.AddRange(["--data-binary", body]);
        }

        args.Add("http://admin" + path);
        Peer.Result r = await Peer.RunAsync("curl", args);
        using JsonDocument document = JsonDocument.Parse(r.Stdout);
        return document.RootElement.Clone();
    }

    [Fact]
    public async Task A_fallback_that_cannot_take_the_request_is_passed_over()
    {
        // logprobs: the openai kind passes it on; the anthropic kind cannot take it.
        JsonElement completion = (await Sdk("""{ "model": "gpt-down", "messages": [ { "role": "user", "content": "hello" } ], "logprobs": true }""")).GetProperty("completion");
        Assert.Equal("gpt-4o-mini", completion.GetProperty("model").GetString());

        // With no other fallback the client gets the provider failure (which it may retry), not a 400.
        JsonElement error = (await Sdk("""{ "model": "gpt-down-claude", "messages": [ { "role": "user", "content": "hello" } ], "logprobs": true }""")).GetProperty("error");
        Assert.Equal(502, error.GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task A_stream_that_fails_before_its_first_event_is_an_error_status_or_a_fallback()
    {
        // Anthropic answers 200 and then an overloaded_error event: the client gets a status, not an empty stream.
        JsonElement error = (await Sdk("""{ "model": "claude", "messages": [ { "role": "user", "content": "overload in stream" } ], "stream": true }""")).GetProperty("error");
        Assert.Equal(502, error.GetProperty("status").GetInt32());
        Assert.Equal("overloaded_error", error.GetProperty("type").GetString());
        Assert.Equal("502 Overloaded", error.GetProperty("message").GetString()); // the SDK puts the status first

        JsonElement final = (await Sdk("""{ "model": "claude-backed", "messages": [ { "role": "user", "content": "overload in stream" } ], "stream": true }""")).GetProperty("final");
        Assert.Equal("You said: overload in stream", Message(final));
        Assert.Equal("gemini-2.5-flash", final.GetProperty("model").GetString());

        // Passed through: the provider's headers came, then nothing: a 502 with one Content-Type, JSON.
        Peer.Result cut = await Peer.CurlAsync("-i", "-H", "Content-Type: application/json", "--data-binary",
            """{ "model": "gpt", "messages": [ { "role": "user", "content": "break early" } ], "stream": true }""", $"{BaseUrl()}/chat/completions");
        Assert.StartsWith("HTTP/1.1 502", cut.Stdout, StringComparison.Ordinal);
        Assert.Single(cut.Stdout.Split("\r\n"), l => l.StartsWith("Content-Type:", StringComparison.OrdinalIgnoreCase));
        Assert.Contains("Content-Type: application/json", cut.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gemini_call_ids_lose_their_signature_on_the_way_to_other_providers()
    {
        JsonElement first = (await Sdk($$"""{ "model": "gem", "messages": [ { "role": "user", "content": "weather" } ], {{ToolsJson}} }""")).GetProperty("completion");
        JsonElement message = first.GetProperty("choices")[0].GetProperty("message");
        string id = message.GetProperty("tool_calls")[0].GetProperty("id").GetString()!;
        Assert.Contains('.', id);
        string history = $$"""
            [ { "role": "user", "content": "weather" }, {{JsonSerializer.Serialize(message)}},
              { "role": "tool", "tool_call_id": "{{id}}", "content": "sunny" }, { "role": "user", "content": "thanks" } ]
            """;

        Assert.Equal("You said: thanks", Message((await Sdk($$"""{ "model": "claude", "messages": {{history}}, {{ToolsJson}} }""")).GetProperty("completion")));
        JsonElement anthropic = (await ProviderReceived()).GetProperty("body").GetProperty("messages");
        Assert.Equal(id[..29], anthropic[1].GetProperty("content").EnumerateArray().Single(b => b.GetProperty("type").GetString() == "tool_use").GetProperty("id").GetString());
        Assert.Equal(id[..29], anthropic[2].GetProperty("content")[0].GetProperty("tool_use_id").GetString());

        Assert.Equal("You said: thanks", Message((await Sdk($$"""{ "model": "gpt", "messages": {{history}}, {{ToolsJson}} }""")).GetProperty("completion")));
        JsonElement openai = (await ProviderReceived()).GetProperty("body").GetProperty("messages");
        Assert.Equal(id[..29], openai[1].GetProperty("tool_calls")[0].GetProperty("id").GetString());
        Assert.Equal(id[..29], openai[2].GetProperty("tool_call_id").GetString());
    }

    [Theory]
    [InlineData("claude", "high", 16384)]
    [InlineData("claude", "none", 0)]
    [InlineData("gem", "low", 1024)]
    [InlineData("gem", "minimal", 0)]
    public async Task Reasoning_effort_becomes_a_thinking_budget(string model, string effort, int budget)
    {
        JsonElement completion = (await Sdk($$"""{ "model": "{{model}}", "messages": [ { "role": "user", "content": "hello" } ], "reasoning_effort": "{{effort}}", "max_tokens": 500 }""")).GetProperty("completion");
        Assert.Equal("You said: hello", Message(completion));

        JsonElement body = (await ProviderReceived()).GetProperty("body");
        if (model == "claude")
        {
            Assert.Equal(500 + budget, body.GetProperty("max_tokens").GetInt32());
            Assert.Equal(budget > 0, body.TryGetProperty("thinking", out JsonElement thinking));
            if (budget > 0)
            {
                Assert.Equal(budget, thinking.GetProperty("budget_tokens").GetInt32());
                Assert.Equal("enabled", thinking.GetProperty("type").GetString());
            }
        }
        else
        {
            JsonElement config = body.GetProperty("generationConfig");
            Assert.Equal(500, config.GetProperty("maxOutputTokens").GetInt32());
            Assert.Equal(budget, config.GetProperty("thinkingConfig").GetProperty("thinkingBudget").GetInt32());
            Assert.Equal(budget > 0, config.GetProperty("thinkingConfig").GetProperty("includeThoughts").GetBoolean());
        }
    }

    [Fact]
    public async Task A_provider_slower_than_its_timeout_is_a_504()
    {
        JsonElement error = (await Sdk("""{ "model": "slow", "messages": [ { "role": "user", "content": "slow" } ] }""")).GetProperty("error");

        Assert.Equal(504, error.GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task Malformed_oversized_and_misdirected_requests_get_openai_errors()
    {
        Peer.Result notJson = await Peer.CurlAsync("-w", "\n%{http_code}", "-H", "Content-Type: application/json", "--data-binary", "{\"model\": ", $"{BaseUrl()}/chat/completions");
        Assert.EndsWith("\n400", notJson.Stdout, StringComparison.Ordinal);
        Assert.Contains("\"invalid_request_error\"", notJson.Stdout, StringComparison.Ordinal);

        string big = "{\"model\": \"claude\", \"messages\": [{\"role\": \"user\", \"content\": \"" + new string('a', 9000) + "\"}]}";
        Peer.Result tooBig = await Peer.RunAsync("curl", ["-sS", "-w", "\n%{http_code}", "-H", "Content-Type: application/json", "--data-binary", "@-", $"{BaseUrl()}/chat/completions"], stdin: big);
        Assert.EndsWith("\n413", tooBig.Stdout, StringComparison.Ordinal);

        Peer.Result get = await Peer.CurlAsync("-i", $"{BaseUrl()}/chat/completions");
        Assert.StartsWith("HTTP/1.1 405", get.Stdout, StringComparison.Ordinal);
        Assert.Contains("Allow: POST", get.Stdout, StringComparison.Ordinal);

        Peer.Result other = await Peer.CurlAsync("-w", "\n%{http_code}", "--data-binary", "{}", $"{BaseUrl()}/embeddings");
        Assert.EndsWith("\n404", other.Stdout, StringComparison.Ordinal);
        Assert.Contains("unknown_url", other.Stdout, StringComparison.Ordinal);
    }
}

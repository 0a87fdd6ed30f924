using Appliance.Server;
using Appliance.Tests.Support;

namespace Appliance.Tests.Server;

/// <summary>The HTTP/1.1 engine driven over raw sockets: byte-exact requests, pipelining, smuggling defences.</summary>
public sealed class Http1ConnectionTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(
        TestServer.DefaultConfig(httpsLimits: """{ "maxRequestBodySize": 1000 }"""));

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Pipelined_requests_in_one_write_get_responses_in_order()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync(
            "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" +
            "GET /users/42 HTTP/1.1\r\nHost: localhost\r\n\r\n" +
            "GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n");
        List<HttpResponse> responses = await client.ReadResponsesAsync(3);
        Assert.Equal([200, 200, 404], responses.Select(r => r.Status));
        Assert.Equal("Hello, World!", responses[0].Body);
        Assert.Equal("user", responses[1].Body);
        Assert.Equal("application/problem+json", responses[2].Header("content-type"));
    }

    [Fact]
    public async Task Pipelined_requests_over_tls_get_responses_in_order()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("https"), tls: true);
        await client.SendAsync(string.Concat(Enumerable.Repeat("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 3)));
        List<HttpResponse> responses = await client.ReadResponsesAsync(3);
        Assert.Equal(3, responses.Count);
        Assert.All(responses, r => Assert.Equal("Hello, World!", r.Body));
    }

    [Theory]
    [InlineData("http", false)]
    [InlineData("https", true)]
    public async Task An_idle_keep_alive_connection_holds_no_request_state_and_takes_it_again_for_the_next_request(string listener, bool tls)
    {
        await using RawClient a = await RawClient.ConnectAsync(_server.EndPoint(listener), tls);
        await using RawClient b = await RawClient.ConnectAsync(_server.EndPoint(listener), tls);
        string[] paths = ["/users/42", "/", "/nope"];
        int[] statuses = [200, 200, 404];
        for (int i = 0; i < 6; i++)
        {
            // The two connections take turns, so a context one gave back serves the other's next request.
            RawClient client = i % 2 == 0 ? a : b;
            await client.SendAsync($"GET {paths[i % 3]} HTTP/1.1\r\nHost: localhost\r\nX-Turn: {i}\r\n\r\n");
            HttpResponse r = (await client.ReadResponsesAsync(1)).Single();
            Assert.Equal(statuses[i % 3], r.Status);

            // The context goes back before the response is sent: a client holding it finds none held.
            HttpConnection[] open = [.. _server.Host.Registry.Live.OfType<HttpConnection>()];
            Assert.Equal(2, open.Length);
            Assert.All(open, c => Assert.False(c.HoldsRequestState));
        }

        // Pipelined requests keep the one context until the last is answered, then give it back.
        await a.SendAsync("GET / HTTP/1.1\r\nHost: localhost\r\n\r\nGET /users/42 HTTP/1.1\r\nHost: localhost\r\n\r\n");
        List<HttpResponse> both = await a.ReadResponsesAsync(2);
        Assert.Equal(["Hello, World!", "user"], both.Select(r => r.Body));
        Assert.All(_server.Host.Registry.Live.OfType<HttpConnection>(), c => Assert.False(c.HoldsRequestState));
    }

    [Fact]
    public async Task Keep_alive_serves_many_requests_on_one_connection()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        for (int i = 0; i < 5; i++)
        {
            await client.SendAsync("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
            HttpResponse r = (await client.ReadResponsesAsync(1)).Single();
            Assert.Equal(200, r.Status);
            Assert.NotNull(r.Header("date"));
            Assert.Null(r.Header("connection"));
        }
    }

    [Fact]
    public async Task Connection_close_is_honoured()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        string all = await client.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", all);
        Assert.Contains("Connection: close\r\n", all);
        Assert.EndsWith("Hello, World!", all);
    }

    [Fact]
    public async Task Http10_without_keep_alive_is_closed_after_the_response()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("GET / HTTP/1.0\r\n\r\n");
        string all = await client.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", all);
        Assert.EndsWith("Hello, World!", all);
    }

    [Fact]
    public async Task Http10_keep_alive_is_acknowledged()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        HttpResponse r = (await client.ReadResponsesAsync(1)).Single();
        Assert.Equal("keep-alive", r.Header("connection"));
        await client.SendAsync("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        Assert.Equal(200, (await client.ReadResponsesAsync(1)).Single().Status);
    }

    [Fact]
    public async Task Head_gets_headers_with_content_length_and_no_body()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\nGET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        string all = await client.ReadToEndAsync();
        int second = all.IndexOf("HTTP/1.1 200", 1, StringComparison.Ordinal);
        Assert.True(second > 0, all);
        string head = all[..second];
        Assert.Contains("Content-Length: 13\r\n", head);
        Assert.EndsWith("\r\n\r\n", head);
        Assert.EndsWith("Hello, World!", all);
    }

    [Fact]
    public async Task Content_length_body_is_read_and_connection_kept()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        List<HttpResponse> responses = await client.ReadResponsesAsync(2);
        Assert.Equal(["uploaded", "Hello, World!"], responses.Select(r => r.Body));
    }

    [Fact]
    public async Task Chunked_body_with_extensions_and_trailers_is_read_and_connection_kept()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" +
            "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n" +
            "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        List<HttpResponse> responses = await client.ReadResponsesAsync(2);
        Assert.Equal(["uploaded", "Hello, World!"], responses.Select(r => r.Body));
    }

    [Fact]
    public async Task Body_over_the_limit_gets_413_and_close()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1001\r\n\r\n");
        string all = await client.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 413 ", all);
    }

    [Fact]
    public async Task Chunked_body_over_the_limit_gets_413_and_close()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n" + new string('a', 1001) + "\r\n0\r\n\r\n");
        string all = await client.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 413 ", all);
    }

    [Fact]
    public async Task Expect_100_continue_gets_interim_response_before_the_body()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
        HttpResponse interim = (await client.ReadResponsesAsync(1)).Single();
        Assert.Equal(100, interim.Status);
        await client.SendAsync("hello");
        HttpResponse final = (await client.ReadResponsesAsync(1)).Single();
        Assert.Equal(200, final.Status);
        Assert.Equal("uploaded", final.Body);
    }

    [Fact]
    public async Task Unknown_expectation_gets_417()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: teapot\r\n\r\nhello");
        Assert.StartsWith("HTTP/1.1 417 ", await client.ReadToEndAsync());
    }

    [Fact]
    public async Task Method_not_allowed_lists_allowed_methods()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("DELETE /users/1 HTTP/1.1\r\nHost: localhost\r\n\r\n");
        HttpResponse r = (await client.ReadResponsesAsync(1)).Single();
        Assert.Equal(405, r.Status);
        Assert.Equal("GET", r.Header("allow"));
    }

    [Fact]
    public async Task Dot_segments_and_percent_encoding_are_normalised_before_matching()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("GET /%75sers/../users/./7 HTTP/1.1\r\nHost: localhost\r\n\r\n");
        Assert.Equal("user", (await client.ReadResponsesAsync(1)).Single().Body);
    }

    [Fact]
    public async Task Host_specific_route_wins_over_host_less_one()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("GET / HTTP/1.1\r\nHost: ALPHA.test:8080\r\n\r\nGET / HTTP/1.1\r\nHost: beta.test\r\n\r\n");
        List<HttpResponse> r = await client.ReadResponsesAsync(2);
        Assert.Equal(["alpha", "Hello, World!"], r.Select(x => x.Body));
    }

    [Fact]
    public async Task Redirect_route_fills_its_location_template()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("GET /old/a/b?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n");
        HttpResponse r = (await client.ReadResponsesAsync(1)).Single();
        Assert.Equal(301, r.Status);
        Assert.Equal("/new/a/b?x=1", r.Header("location"));
    }

    public static TheoryData<string, int> HostileRequests => new()
    {
        // request smuggling: framing conflicts (RFC 9112 §6.1, §6.3)
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\nxyz", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400 },
        { "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },
        // bare CR / LF and obs-fold
        { "GET / HTTP/1.1\nHost: a\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400 },
        { "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", 400 },
        // invalid characters
        { "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nX: a\u007fb\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nX(y): a\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\n: a\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nX\t: a\r\n\r\n", 400 },
        { "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
        { "GET /\u0001 HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
        { "G\u0001T / HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
        { "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
        { "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400 },
        { "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
        { "GET /%00 HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
        { "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
        { "GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
        // versions
        { "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505 },
        { "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505 },
        { "GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400 },
        { "GET / http/1.1\r\nHost: a\r\n\r\n", 400 },
        { "GET / HTTP/1.1.1\r\nHost: a\r\n\r\n", 400 },
        // Host (RFC 9112 §3.2)
        { "GET / HTTP/1.1\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a:port\r\n\r\n", 400 },
        // chunk framing
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nab\r\n0\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n 2\r\nab\r\n0\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nab\r\n0\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b\rc\r\nab\r\n0\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;a\nb\r\nab\r\n0\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\n", 400 },
        // limits
        { "GET /" + new string('a', 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414 },
        { "GET / HTTP/1.1\r\nHost: a\r\n" + string.Concat(Enumerable.Range(0, 101).Select(i => $"X-{i}: v\r\n")) + "\r\n", 431 },
        { "GET / HTTP/1.1\r\nHost: a\r\nX: " + new string('v', 33 * 1024) + "\r\n\r\n", 431 },
        // methods
        { "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501 },
    };

    [Theory]
    [MemberData(nameof(HostileRequests))]
    public async Task Hostile_request_gets_its_status_and_the_connection_is_closed(string request, int status)
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync(request);
        string response = await client.ReadToEndAsync();
        Assert.StartsWith($"HTTP/1.1 {status} ", response);
        Assert.Contains("Connection: close\r\n", response);
        Assert.DoesNotContain("Hello, World!", response);
    }

    [Fact]
    public async Task Request_after_a_rejected_one_on_the_same_connection_is_never_processed()
    {
        await using RawClient client = await RawClient.ConnectAsync(_server.EndPoint("http"));
        await client.SendAsync("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        string response = await client.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 400 ", response);
        Assert.DoesNotContain("HTTP/1.1 200", response);
    }
}

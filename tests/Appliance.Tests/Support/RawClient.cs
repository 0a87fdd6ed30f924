using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;

namespace Appliance.Tests.Support;

/// <summary>A raw TCP (optionally TLS) client for byte-exact requests: pipelining and smuggling cases.</summary>
public sealed class RawClient : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly Stream _stream;

    private RawClient(TcpClient tcp, Stream stream)
    {
        _tcp = tcp;
        _stream = stream;
    }

    public static async Task<RawClient> ConnectAsync(IPEndPoint endPoint, bool tls = false, string serverName = "localhost")
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(endPoint);
        Stream stream = tcp.GetStream();
        if (tls)
        {
            var ssl = new SslStream(stream, false, (_, _, _, _) => true);
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = serverName,
                ApplicationProtocols = [SslApplicationProtocol.Http11],
            });
            stream = ssl;
        }

        stream.ReadTimeout = 15000;
        return new RawClient(tcp, stream);
    }

    public async Task SendAsync(string text) => await SendAsync(Encoding.Latin1.GetBytes(text));

    /// <summary>Closes the sending side only (TCP half-close, FIN): the client says it sends nothing more, and still reads.</summary>
    public void ShutdownSend() => _tcp.Client.Shutdown(SocketShutdown.Send);

    public async Task SendAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    /// <summary>Reads until the server closes the connection (bounded by a timeout).</summary>
    public async Task<string> ReadToEndAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        var sb = new StringBuilder();
        byte[] buffer = new byte[16384];
        try
        {
            while (true)
            {
                int n = await _stream.ReadAsync(buffer, cts.Token);
                if (n == 0)
                {
                    break;
                }

                sb.Append(Encoding.Latin1.GetString(buffer, 0, n));
            }
        }
        catch (IOException)
        {
            // reset by peer counts as closed
        }

        return sb.ToString();
    }

    /// <summary>Reads until <paramref name="responses"/> complete responses (with Content-Length bodies) have arrived.</summary>
    public async Task<List<HttpResponse>> ReadResponsesAsync(int responses, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        var result = new List<HttpResponse>();
        var data = new List<byte>();
        byte[] buffer = new byte[16384];
        while (result.Count < responses)
        {
            while (HttpResponse.TryParse(data, out HttpResponse? r, out int used))
            {
                result.Add(r!);
                data.RemoveRange(0, used);
                if (result.Count == responses)
                {
                    return result;
                }
            }

            int n = await _stream.ReadAsync(buffer, cts.Token);
            if (n == 0)
            {
                break;
            }

            data.AddRange(buffer.AsSpan(0, n).ToArray());
        }

        return result;
    }

    /// <summary>Reads byte by byte up to and including <paramref name="marker"/> (a response head before tunnelled bytes).</summary>
    public async Task<string> ReadUntilAsync(string marker, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        var sb = new StringBuilder();
        byte[] one = new byte[1];
        while (!sb.ToString().EndsWith(marker, StringComparison.Ordinal))
        {
            if (await _stream.ReadAsync(one, cts.Token) == 0)
            {
                break;
            }

            sb.Append((char)one[0]);
        }

        return sb.ToString();
    }

    /// <summary>True when the server has closed its side (a read returns 0 or fails) within the timeout.</summary>
    public async Task<bool> IsClosedByServerAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        byte[] buffer = new byte[4096];
        try
        {
            while (true)
            {
                int n = await _stream.ReadAsync(buffer, cts.Token);
                if (n == 0)
                {
                    return true;
                }
            }
        }
        catch (IOException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _tcp.Dispose();
    }
}

public sealed record HttpResponse(int Status, Dictionary<string, string> Headers, string Body)
{
    public string? Header(string name) => Headers.TryGetValue(name.ToLowerInvariant(), out string? v) ? v : null;

    /// <summary>Parses one response with a Content-Length (or none: empty body) or chunked body from the start of data.</summary>
    public static bool TryParse(List<byte> data, out HttpResponse? response, out int used)
    {
        response = null;
        used = 0;
        string text = Encoding.Latin1.GetString(data.ToArray());
        int end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (end < 0)
        {
            return false;
        }

        string[] lines = text[..end].Split("\r\n");
        int status = int.Parse(lines[0].Split(' ')[1]);
        var headers = new Dictionary<string, string>();
        foreach (string line in lines.Skip(1))
        {
            int colon = line.IndexOf(':');
            headers[line[..colon].Trim().ToLowerInvariant()] = line[(colon + 1)..].Trim();
        }

        int bodyStart = end + 4;
        if (status is >= 100 and < 200)
        {
            response = new HttpResponse(status, headers, "");
            used = bodyStart;
            return true;
        }

        if (headers.TryGetValue("transfer-encoding", out string? te) && te.Contains("chunked"))
        {
            var body = new StringBuilder();
            int pos = bodyStart;
            while (true)
            {
                int lineEnd = text.IndexOf("\r\n", pos, StringComparison.Ordinal);
                if (lineEnd < 0) return false;
                int size = Convert.ToInt32(text[pos..lineEnd].Split(';')[0], 16);
                pos = lineEnd + 2;
                if (size == 0)
                {
                    int trailerEnd = text.IndexOf("\r\n", pos, StringComparison.Ordinal);
                    if (trailerEnd < 0) return false;
                    used = trailerEnd + 2;
                    response = new HttpResponse(status, headers, body.ToString());
                    return true;
                }

                if (text.Length < pos + size + 2) return false;
                body.Append(text, pos, size);
                pos += size + 2;
            }
        }

        int length = headers.TryGetValue("content-length", out string? cl) ? int.Parse(cl) : 0;
        if (text.Length < bodyStart + length)
        {
            return false;
        }

        response = new HttpResponse(status, headers, text.Substring(bodyStart, length));
        used = bodyStart + length;
        return true;
    }
}

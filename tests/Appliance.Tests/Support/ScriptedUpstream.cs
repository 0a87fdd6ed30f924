using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Appliance.Tests.Support;

/// <summary>
/// A keep-alive HTTP/1.1 upstream on a free loopback port whose answer to each request head (no bodies) is
/// produced by the test: exact bytes, exact timing.
/// </summary>
public sealed class ScriptedUpstream : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<string, Task<string>> _answer;

    public ScriptedUpstream(Func<string, Task<string>> answer)
    {
        _answer = answer;
        _listener.Start();
        _ = AcceptAsync();
    }

    public string Address => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    public int Requests;

    public int Connections;

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket s;
            try
            {
                s = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            Interlocked.Increment(ref Connections);
            _ = ServeAsync(s);
        }
    }

    private async Task ServeAsync(Socket s)
    {
        using (s)
        {
            var head = new StringBuilder();
            byte[] one = new byte[1];
            try
            {
                while (await s.ReceiveAsync(one, SocketFlags.None, _stop.Token) == 1)
                {
                    head.Append((char)one[0]);
                    if (head.Length >= 4 && head.ToString(head.Length - 4, 4) == "\r\n\r\n")
                    {
                        Interlocked.Increment(ref Requests);
                        string response = await _answer(head.ToString());
                        await s.SendAsync(Encoding.Latin1.GetBytes(response), SocketFlags.None, _stop.Token);
                        head.Clear();
                    }
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
            }
        }
    }

    public static string Ok(string body) => $"HTTP/1.1 200 OK\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}";

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        return ValueTask.CompletedTask;
    }
}

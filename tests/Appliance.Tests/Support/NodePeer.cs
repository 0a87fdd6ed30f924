using System.Diagnostics;
using System.Reflection;

namespace Appliance.Tests.Support;

/// <summary>
/// The Node.js peers in Peers/node (ws, @grpc/grpc-js), run from the source folder where test.sh's `npm ci` put
/// their node_modules. A server prints "PORT n" once listening and exits when its stdin closes.
/// </summary>
public sealed class NodePeer : IAsyncDisposable
{
    private readonly Process _process;

    private NodePeer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public static string Directory { get; } = typeof(NodePeer).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "NodePeersDirectory").Value!;

    public static string Script(string name) => Path.Combine(Directory, name);

    /// <summary>Starts a server script and waits for its "PORT n" line.</summary>
    public static async Task<NodePeer> StartAsync(string script)
    {
        var psi = new ProcessStartInfo("node")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Script(script));
        Process process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start node");
        _ = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            string? line = await process.StandardOutput.ReadLineAsync(cts.Token);
            if (line is null)
            {
                throw new InvalidOperationException($"{script} exited before listening (is `npm ci` done in {Directory}?)");
            }

            if (line.StartsWith("PORT ", StringComparison.Ordinal))
            {
                _ = process.StandardOutput.ReadToEndAsync();
                return new NodePeer(process, int.Parse(line[5..]));
            }
        }
    }

    /// <summary>Runs a client script to its end.</summary>
    public static Task<Peer.Result> RunAsync(string script, params string[] args) =>
        Peer.RunAsync("node", [Script(script), .. args], timeout: TimeSpan.FromSeconds(60));

    public async ValueTask DisposeAsync()
    {
        try
        {
            _process.StandardInput.Close(); // the server's cue to exit
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }
}

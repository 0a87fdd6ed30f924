using System.Net.Sockets;

namespace Appliance.Hosting;

/// <summary>
/// sd_listen_fds(3): listening sockets passed by systemd (appliance.socket), adopted instead of bound, so a
/// restart or an upgrade never refuses a connection: the kernel keeps queueing on the socket while the process is
/// away. Each is matched to a listener by name (FileDescriptorName= in the socket unit; "admin" for the admin
/// socket). Sockets no listener claims are closed, with a warning.
/// </summary>
public sealed class SocketActivation
{
    private const int FirstDescriptor = 3; // SD_LISTEN_FDS_START
    private readonly Dictionary<string, Socket> _sockets;

    private SocketActivation(Dictionary<string, Socket> sockets) => _sockets = sockets;

    /// <summary>What systemd passed, read once; the variables are removed so child processes do not see them.</summary>
    public static SocketActivation FromEnvironment()
    {
        string? pid = Environment.GetEnvironmentVariable("LISTEN_PID");
        string? fds = Environment.GetEnvironmentVariable("LISTEN_FDS");
        string? names = Environment.GetEnvironmentVariable("LISTEN_FDNAMES");
        foreach (string v in (string[])["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"])
        {
            Environment.SetEnvironmentVariable(v, null);
        }

        return Parse(pid, fds, names, Environment.ProcessId, fd => new Socket(new SafeSocketHandle(fd, ownsHandle: true)));
    }

    /// <summary>
    /// The rules of sd_listen_fds: only when LISTEN_PID is this process; LISTEN_FDS descriptors from 3; names from
    /// LISTEN_FDNAMES (colon-separated), "unknown" where missing. A malformed set is ignored as a whole.
    /// </summary>
    public static SocketActivation Parse(string? pid, string? fds, string? names, int processId, Func<nint, Socket> open)
    {
        var sockets = new Dictionary<string, Socket>(StringComparer.Ordinal);
        if (!int.TryParse(pid, out int listenPid) || listenPid != processId || !int.TryParse(fds, out int count) || count <= 0 || count > 1024)
        {
            return new SocketActivation(sockets);
        }

        string[] fdNames = names?.Split(':') ?? [];
        for (int i = 0; i < count; i++)
        {
            string name = i < fdNames.Length && fdNames[i].Length > 0 ? fdNames[i] : "unknown";
            Socket socket = open(FirstDescriptor + i);
            if (!sockets.TryAdd(name, socket))
            {
                socket.Dispose(); // two with one name: the first wins
            }
        }

        return new SocketActivation(sockets);
    }

    public int Count => _sockets.Count;

    /// <summary>Takes the passed socket for this listener, if systemd passed one.</summary>
    public Socket? Take(string name) => _sockets.Remove(name, out Socket? socket) ? socket : null;

    /// <summary>Closes what nobody took, and says which names those were.</summary>
    public IReadOnlyList<string> CloseUnclaimed()
    {
        List<string> names = [.. _sockets.Keys];
        foreach (Socket s in _sockets.Values)
        {
            s.Dispose();
        }

        _sockets.Clear();
        return names;
    }
}

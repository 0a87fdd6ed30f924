using System.Buffers.Binary;
using System.Net.Sockets;

namespace Appliance.Transport;

/// <summary>Who is at the other end of a Unix socket, from SO_PEERCRED (the kernel's word, not the client's).</summary>
public readonly record struct PeerCredentials(int Pid, uint Uid, uint Gid)
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    public static bool TryGet(Socket socket, out PeerCredentials credentials)
    {
        credentials = default;
        Span<byte> ucred = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        try
        {
            int n = socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred);
            if (n < 12)
            {
                return false;
            }
        }
        catch (SocketException)
        {
            return false;
        }

        credentials = new PeerCredentials(
            BinaryPrimitives.ReadInt32LittleEndian(ucred),
            BinaryPrimitives.ReadUInt32LittleEndian(ucred[4..]),
            BinaryPrimitives.ReadUInt32LittleEndian(ucred[8..]));
        return true;
    }

    /// <summary>The peer process's supplementary groups (from /proc/PID/status), plus its primary group.</summary>
    public IReadOnlyList<uint> Groups()
    {
        var groups = new List<uint> { Gid };
        try
        {
            foreach (string line in File.ReadLines($"/proc/{Pid}/status"))
            {
                if (line.StartsWith("Groups:", StringComparison.Ordinal))
                {
                    foreach (string g in line[7..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
                    {
                        if (uint.TryParse(g, out uint gid))
                        {
                            groups.Add(gid);
                        }
                    }

                    break;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The process is gone or /proc is hidden: only the primary group is known.
        }

        return groups;
    }
}

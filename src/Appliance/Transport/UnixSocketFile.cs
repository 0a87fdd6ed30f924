using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Appliance.Transport;

/// <summary>
/// The file of a listening Unix socket: a stale one from a crashed run is replaced, a live one (another
/// instance answering) or a path that is not a socket or belongs to someone else is refused with a clear
/// error; after bind the file gets mode 0660 and the configured group.
/// </summary>
public static partial class UnixSocketFile
{
    public static void PrepareForBind(string path)
    {
        string? dir = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        if (Lstat(path, out uint mode, out uint uid) != 0)
        {
            return; // nothing there
        }

        const uint SIfmt = 0xF000, SIfsock = 0xC000;
        if ((mode & SIfmt) != SIfsock)
        {
            throw new IOException($"admin socket path '{path}' exists and is not a socket; refusing to replace it");
        }

        if (uid != GetEuid() && GetEuid() != 0)
        {
            throw new IOException($"admin socket path '{path}' belongs to uid {uid}; refusing to replace it");
        }

        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            throw new IOException($"admin socket '{path}' is in use by a running process");
        }
        catch (SocketException)
        {
            File.Delete(path); // nobody listens: a leftover from a crash
        }
    }

    /// <summary>Mode 0660 and the admin group (when it exists) on the bound socket file.</summary>
    public static string? SetPermissions(string path, string? groupName)
    {
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        if (groupName is null)
        {
            return null;
        }

        uint? gid = LookupGroup(groupName);
        if (gid is null)
        {
            return $"group '{groupName}' does not exist; only root and the service user can use the admin socket";
        }

        return Chown(path, uint.MaxValue, gid.Value) == 0 ? null : $"cannot give the admin socket to group '{groupName}' (errno {Marshal.GetLastPInvokeError()})";
    }

    /// <summary>Group id from /etc/group (NSS groups are not consulted).</summary>
    public static uint? LookupGroup(string name)
    {
        try
        {
            foreach (string line in File.ReadLines("/etc/group"))
            {
                string[] f = line.Split(':');
                if (f.Length >= 3 && f[0] == name && uint.TryParse(f[2], out uint gid))
                {
                    return gid;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        return null;
    }

    public static uint GetEuid() => geteuid();

    /// <summary>lstat(2) for type and owner. Layout of struct stat on linux-x64 glibc (our only RID): st_mode at 24, st_uid at 28.</summary>
    private static int Lstat(string path, out uint mode, out uint uid)
    {
        Span<byte> buffer = stackalloc byte[256];
        int rc = LstatNative(path, ref MemoryMarshal.GetReference(buffer));
        mode = rc == 0 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(buffer[24..]) : 0;
        uid = rc == 0 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(buffer[28..]) : 0;
        return rc;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial uint geteuid();

    [LibraryImport("libc", EntryPoint = "chown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Chown(string path, uint owner, uint group);

    [LibraryImport("libc", EntryPoint = "lstat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int LstatNative(string path, ref byte statBuffer);
}

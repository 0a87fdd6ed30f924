using System.Runtime.InteropServices;

namespace Appliance.Transport;

/// <summary>The socket calls <see cref="SocketStream"/> makes itself, and errno as a SocketError.</summary>
internal static unsafe partial class Syscalls
{
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int MSG_NOSIGNAL = 0x4000;
    private const int F_SETFL = 4;
    private const int O_NONBLOCK = 0x800;

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    public static partial nint Recv(int fd, byte* buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    public static partial nint Send(int fd, byte* buffer, nint length, int flags);

    /// <summary>accept4(2)'s flags: the accepted descriptor non-blocking and closed on exec, with no fcntl(2) after.</summary>
    public const int SOCK_NONBLOCK = 0x800;
    public const int SOCK_CLOEXEC = 0x80000;

    [LibraryImport("libc", EntryPoint = "accept4", SetLastError = true)]
    public static partial int Accept4(int fd, byte* address, int* addressLength, int flags);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int cmd, int arg);

    /// <summary>
    /// Sets O_NONBLOCK with one F_SETFL, without reading the flags first: of the flags F_SETFL can change (O_APPEND,
    /// O_ASYNC, O_DIRECT, O_NOATIME, O_NONBLOCK), a socket .NET created or accepted has none, so there is nothing to
    /// keep. One syscall per connection fewer than F_GETFL then F_SETFL.
    /// </summary>
    public static void SetNonBlocking(int fd)
    {
        if (Fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
        {
            throw new System.Net.Sockets.SocketException((int)ToSocketError(Marshal.GetLastPInvokeError()));
        }
    }

    /// <summary>Linux errno values a connected stream socket reports, as .NET names them.</summary>
    public static System.Net.Sockets.SocketError ToSocketError(int errno) => errno switch
    {
        11 => System.Net.Sockets.SocketError.WouldBlock,          // EAGAIN
        104 => System.Net.Sockets.SocketError.ConnectionReset,    // ECONNRESET
        32 => System.Net.Sockets.SocketError.Shutdown,            // EPIPE
        103 => System.Net.Sockets.SocketError.ConnectionAborted,  // ECONNABORTED
        110 => System.Net.Sockets.SocketError.TimedOut,           // ETIMEDOUT
        111 => System.Net.Sockets.SocketError.ConnectionRefused,  // ECONNREFUSED
        107 => System.Net.Sockets.SocketError.NotConnected,       // ENOTCONN
        113 => System.Net.Sockets.SocketError.HostUnreachable,    // EHOSTUNREACH
        101 => System.Net.Sockets.SocketError.NetworkUnreachable, // ENETUNREACH
        100 => System.Net.Sockets.SocketError.NetworkDown,        // ENETDOWN
        9 => System.Net.Sockets.SocketError.OperationAborted,     // EBADF: closed under us
        4 => System.Net.Sockets.SocketError.Interrupted,          // EINTR
        22 => System.Net.Sockets.SocketError.InvalidArgument,     // EINVAL: accept(2) on a socket that no longer listens
        88 => System.Net.Sockets.SocketError.NotSocket,           // ENOTSOCK
        23 or 24 => System.Net.Sockets.SocketError.TooManyOpenSockets, // ENFILE, EMFILE
        71 => System.Net.Sockets.SocketError.ProtocolOption,      // EPROTO: accept(2)'s "protocol error", a connection gone
        1 => System.Net.Sockets.SocketError.AccessDenied,         // EPERM: accept(2) refused by a firewall rule
        112 => System.Net.Sockets.SocketError.HostDown,           // EHOSTDOWN: accept(2)'s network errors, for a
        95 => System.Net.Sockets.SocketError.OperationNotSupported, // EOPNOTSUPP  connection already gone (its man
        92 => System.Net.Sockets.SocketError.ProtocolOption,      // ENOPROTOOPT page: treat them as EAGAIN)
        64 => System.Net.Sockets.SocketError.NetworkDown,         // ENONET
        12 or 105 => System.Net.Sockets.SocketError.NoBufferSpaceAvailable, // ENOMEM, ENOBUFS
        _ => System.Net.Sockets.SocketError.SocketError,
    };
}

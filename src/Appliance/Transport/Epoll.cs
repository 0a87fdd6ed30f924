using System.Runtime.InteropServices;

namespace Appliance.Transport;

/// <summary>The epoll(7) calls the event loops make, the layout of struct epoll_event, and the eventfd that wakes a loop.</summary>
internal static unsafe partial class Epoll
{
    public const uint In = 0x001;
    public const uint Out = 0x004;
    public const uint Err = 0x008;
    public const uint Hup = 0x010;
    public const uint RdHup = 0x2000;
    public const uint EdgeTriggered = 1u << 31;

    public const int CtlAdd = 1;
    public const int CtlDel = 2;
    public const int CloseOnExec = 0x80000; // EPOLL_CLOEXEC
    public const int Interrupted = 4;       // EINTR

    /// <summary>struct epoll_event is packed on x86-64 (12 bytes); elsewhere its 64-bit data field is aligned (16).</summary>
    public static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    public static readonly int DataOffset = EventSize == 12 ? 4 : 8;

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int Create(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int Control(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int Wait(int epfd, byte* events, int maxEvents, int timeout);

    public const int EventFdNonBlocking = 0x800; // EFD_NONBLOCK
    public const int EventFdCloseOnExec = 0x80000; // EFD_CLOEXEC

    /// <summary>An eventfd(2): what a loop is woken through from other threads.</summary>
    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initial, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nint count);

    /// <summary>Takes <paramref name="fd"/> out of the set (needed where another process holds the same open file).</summary>
    public static int Remove(int epfd, int fd) => Control(epfd, CtlDel, fd, null);

    public static int Add(int epfd, int fd, uint events, ulong data)
    {
        byte* ev = stackalloc byte[16];
        *(uint*)ev = events;
        System.Runtime.CompilerServices.Unsafe.WriteUnaligned(ev + DataOffset, data);
        return Control(epfd, CtlAdd, fd, ev);
    }
}

using System.Runtime.InteropServices;

namespace Appliance.Transport;

/// <summary>
/// An io_uring(7) used as a batch of recv(2) and send(2) calls: an event loop queues the reads its events make ready,
/// and the writes its handlers make, and hands each batch to the kernel with one io_uring_enter, instead of one
/// system call each.
/// </summary>
/// <remarks>
/// <para>Why: on a box where a system call is dear (page-table isolation, a paravirtualised guest: a null syscall
/// cost 1.1 µs on the benchmark box) the entry and exit of one recv and one send per request are a tenth of its
/// CPU. perf/RESULTS.md has the measurements.</para>
/// <para>Every operation carries MSG_DONTWAIT: the kernel tries it inline during the io_uring_enter and posts its
/// completion before the call returns, EAGAIN included, and never keeps it to retry later. So no buffer is the
/// kernel's after <see cref="Flush"/> returns, and a socket the ring has not submitted yet is never closed under
/// it (<see cref="SocketStream"/> submits before it closes). The ring is only ever touched by its loop's thread.</para>
/// <para>A kernel without io_uring, or a sandbox that refuses it (io_uring_disabled, a seccomp filter), leaves
/// <see cref="TryCreate"/> null, and the loop makes each call itself as before.</para>
/// </remarks>
internal sealed unsafe partial class SocketRing : IDisposable
{
    public const int Entries = 256;

    private const int SysSetup = 425; // io_uring_setup: the same number on every architecture (generic table)
    private const int SysEnter = 426;
    private const byte OpSend = 26;   // IORING_OP_SEND (Linux 5.6)
    private const byte OpRecv = 27;   // IORING_OP_RECV (Linux 5.6)
    private const uint SetupSubmitAll = 1u << 7;      // IORING_SETUP_SUBMIT_ALL (5.18): an error does not stop the batch
    private const uint SetupCoopTaskrun = 1u << 8;    // IORING_SETUP_COOP_TASKRUN (5.19): no interrupt for task work
    private const uint SetupSingleIssuer = 1u << 12;  // IORING_SETUP_SINGLE_ISSUER (6.0): one thread submits
    private const uint FeatSingleMmap = 1u;           // IORING_FEAT_SINGLE_MMAP: one mapping for both rings
    private const long OffSqRing = 0, OffCqRing = 0x8000000, OffSqes = 0x10000000;
    private const int MsgDontWait = 0x40;
    private const int SqeSize = 64, CqeSize = 16;
    private const int EAGAIN = 11, EINTR = 4, EBUSY = 16;

    private readonly int _fd;
    private readonly byte* _sqRing, _cqRing, _sqes;
    private readonly nuint _sqRingSize, _cqRingSize, _sqesSize;
    private readonly uint* _sqTail, _sqArray, _cqHead, _cqTail;
    private readonly uint _sqMask, _cqMask;
    private readonly byte* _cqes;
    private uint _tail;       // our copy of the SQ tail (published at each queue)
    private int _queued;      // queued and not yet submitted
    private int _inFlight;    // submitted, completion not yet read

    // What each entry's completion goes to: the user_data of a send is its index here.
    private readonly SocketStream?[] _owners = new SocketStream?[Entries];
    private readonly bool[] _receives = new bool[Entries];
    private readonly int[] _free = new int[Entries];
    private int _freeCount;
    private readonly (int Index, int Result)[] _reaped = new (int, int)[Entries * 2];

    private SocketRing(int fd, byte* sqRing, nuint sqRingSize, byte* cqRing, nuint cqRingSize, byte* sqes, nuint sqesSize, byte* p)
    {
        _fd = fd;
        _sqRing = sqRing;
        _sqRingSize = sqRingSize;
        _cqRing = cqRing;
        _cqRingSize = cqRingSize;
        _sqes = sqes;
        _sqesSize = sqesSize;
        // struct io_uring_params: 40 bytes of fields, then io_sqring_offsets (head, tail, ring_mask, ring_entries,
        // flags, dropped, array, ...) at 40 and io_cqring_offsets (head, tail, ring_mask, ring_entries, overflow, cqes,
        // ...) at 80.
        uint* sq = (uint*)(p + 40);
        uint* cq = (uint*)(p + 80);
        _sqTail = (uint*)(sqRing + sq[1]);
        _sqMask = *(uint*)(sqRing + sq[2]);
        _sqArray = (uint*)(sqRing + sq[6]);
        _cqHead = (uint*)(cqRing + cq[0]);
        _cqTail = (uint*)(cqRing + cq[1]);
        _cqMask = *(uint*)(cqRing + cq[2]);
        _cqes = cqRing + cq[5];
        _tail = Volatile.Read(ref *_sqTail);
        for (int i = 0; i < Entries; i++)
        {
            _free[i] = Entries - 1 - i;
        }

        _freeCount = Entries;
    }

    /// <summary>Calls queued and not yet handed to the kernel.</summary>
    public int Queued => _queued;

    /// <summary>Calls whose results <see cref="Flush"/> has not given yet: queued, or submitted early by <see cref="Submit"/>.</summary>
    public int Unfinished => _queued + _inFlight;

    /// <summary>
    /// A ring of <see cref="Entries"/> entries, or null where io_uring is missing or refused (the reason in
    /// <paramref name="why"/>). Call it on the thread that will use the ring: it may be single-issuer.
    /// </summary>
    public static SocketRing? TryCreate(out string? why)
    {
        byte* p = stackalloc byte[120];
        int fd = -1;
        // The newest flags first, each dropped in turn where the kernel refuses it (EINVAL): 6.0+, 5.19, 5.18. Not
        // older: IORING_OP_SEND and RECV are 5.6+, and a kernel that does not end a MSG_DONTWAIT call with EAGAIN at
        // once would complete it after the flush, which the loop would spin on; SUBMIT_ALL (5.18) marks a kernel
        // past both.
        foreach (uint flags in (ReadOnlySpan<uint>)[SetupSubmitAll | SetupCoopTaskrun | SetupSingleIssuer, SetupSubmitAll | SetupCoopTaskrun, SetupSubmitAll])
        {
            new Span<byte>(p, 120).Clear();
            *(uint*)(p + 8) = flags;
            fd = (int)Syscall(SysSetup, Entries, (nint)p, 0, 0, 0, 0);
            if (fd >= 0)
            {
                break;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno != 22)
            {
                why = errno switch
                {
                    38 => "the kernel has no io_uring (ENOSYS)",
                    1 => "io_uring is refused here (EPERM: io_uring_disabled or a seccomp filter)",
                    _ => $"io_uring_setup failed: errno {errno}",
                };
                return null;
            }
        }

        if (fd < 0)
        {
            why = "the kernel's io_uring is older than 5.18 (IORING_SETUP_SUBMIT_ALL refused)";
            return null;
        }

        uint sqEntries = *(uint*)p, cqEntries = *(uint*)(p + 4), features = *(uint*)(p + 20);
        uint* sq = (uint*)(p + 40);
        uint* cq = (uint*)(p + 80);
        nuint sqSize = sq[6] + (sqEntries * 4);
        nuint cqSize = cq[5] + (cqEntries * CqeSize);
        bool single = (features & FeatSingleMmap) != 0;
        if (single)
        {
            sqSize = cqSize = Math.Max(sqSize, cqSize);
        }

        byte* sqRing = Map(fd, sqSize, OffSqRing);
        byte* cqRing = single ? sqRing : Map(fd, cqSize, OffCqRing);
        byte* sqes = Map(fd, sqEntries * SqeSize, OffSqes);
        if (sqRing == null || cqRing == null || sqes == null || sqEntries < Entries)
        {
            int errno = Marshal.GetLastPInvokeError();
            Unmap(sqRing, sqSize);
            if (!single)
            {
                Unmap(cqRing, cqSize);
            }

            Unmap(sqes, sqEntries * SqeSize);
            Close(fd);
            why = $"mapping the io_uring failed: errno {errno}";
            return null;
        }

        why = null;
        return new SocketRing(fd, sqRing, sqSize, cqRing, single ? 0 : cqSize, sqes, sqEntries * SqeSize, p);
    }

    /// <summary>
    /// Queues send(<paramref name="fd"/>, <paramref name="buffer"/>, <paramref name="length"/>, flags | MSG_DONTWAIT),
    /// whose result <see cref="Flush"/> hands to <paramref name="owner"/>'s <see cref="SocketStream.OnQueuedSend"/>.
    /// False when the ring is full (the caller sends at once instead). The buffer must stay put until then.
    /// </summary>
    public bool TryQueueSend(SocketStream owner, int fd, byte* buffer, int length, int flags) =>
        TryQueue(OpSend, owner, fd, buffer, length, flags);

    /// <summary>
    /// Queues recv(<paramref name="fd"/>, <paramref name="buffer"/>, <paramref name="length"/>, MSG_DONTWAIT), whose
    /// result goes to <see cref="SocketStream.OnQueuedReceive"/>. False when the ring is full.
    /// </summary>
    public bool TryQueueReceive(SocketStream owner, int fd, byte* buffer, int length) =>
        TryQueue(OpRecv, owner, fd, buffer, length, 0);

    private bool TryQueue(byte opcode, SocketStream owner, int fd, byte* buffer, int length, int flags)
    {
        if (_freeCount == 0)
        {
            return false;
        }

        int index = _free[--_freeCount];
        _owners[index] = owner;
        _receives[index] = opcode == OpRecv;
        byte* sqe = _sqes + (index * SqeSize);
        new Span<byte>(sqe, SqeSize).Clear();
        sqe[0] = opcode;
        *(int*)(sqe + 4) = fd;
        *(ulong*)(sqe + 16) = (ulong)buffer;
        *(uint*)(sqe + 24) = (uint)length;
        *(int*)(sqe + 28) = flags | MsgDontWait;
        *(ulong*)(sqe + 32) = (ulong)index;
        _sqArray[_tail & _sqMask] = (uint)index;
        _tail++;
        Volatile.Write(ref *_sqTail, _tail); // the entry before the tail that publishes it
        _queued++;
        return true;
    }

    /// <summary>
    /// Hands what is queued to the kernel (one io_uring_enter) without reading the results: for a socket about to be
    /// closed, whose bytes must leave first. <see cref="Flush"/> reads the results later.
    /// </summary>
    public void Submit()
    {
        while (_queued > 0)
        {
            nint n = Syscall(SysEnter, _fd, _queued, 0, 0, 0, 0);
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno is EINTR or EAGAIN or EBUSY)
                {
                    continue;
                }

                // A queued send names memory and a descriptor that nothing can take back now: the loop cannot go on.
                Console.Error.WriteLine($"appliance: io_uring_enter failed: errno {errno}");
                Environment.FailFast("io_uring_enter failed");
            }

            _queued -= (int)n;
            _inFlight += (int)n;
        }
    }

    /// <summary>
    /// Submits what is queued, then gives each completed call's result to its stream (whose continuation runs here,
    /// and may queue more: the caller flushes until nothing is queued). Returns the number of results given.
    /// </summary>
    public int Flush()
    {
        Submit();
        // Read every completion first and free its entry, then run the streams: a continuation that queues or
        // submits again (or disposes a stream) then finds a consistent ring.
        uint head = *_cqHead;
        uint tail = Volatile.Read(ref *_cqTail);
        int count = 0;
        while (head != tail && count < _reaped.Length)
        {
            byte* cqe = _cqes + ((head & _cqMask) * CqeSize);
            ulong index = *(ulong*)cqe;
            if (index < Entries && _owners[index] is not null)
            {
                _reaped[count++] = ((int)index, *(int*)(cqe + 8));
            }

            head++;
        }

        Volatile.Write(ref *_cqHead, head);
        _inFlight -= count;

        for (int i = 0; i < count; i++)
        {
            (int index, int result) = _reaped[i];
            SocketStream owner = _owners[index]!;
            bool receive = _receives[index];
            _owners[index] = null;
            _free[_freeCount++] = index;
            try
            {
                if (receive)
                {
                    owner.OnQueuedReceive(result);
                }
                else
                {
                    owner.OnQueuedSend(result);
                }
            }
            catch (Exception ex)
            {
                Console.Error.WriteLine($"appliance: a socket call's continuation failed: {ex}"); // ours keep their exceptions
            }
        }

        return count;
    }

    /// <summary>Submitted calls whose results are not read yet (each completes inline: 0 after a flush).</summary>
    internal int InFlight => _inFlight;

    public void Dispose()
    {
        Unmap(_sqRing, _sqRingSize);
        Unmap(_cqRing, _cqRingSize);
        Unmap(_sqes, _sqesSize);
        Close(_fd);
    }

    private static byte* Map(int fd, nuint size, long offset)
    {
        const int ProtRead = 1, ProtWrite = 2, MapShared = 1, MapPopulate = 0x8000;
        void* p = Mmap(null, size, ProtRead | ProtWrite, MapShared | MapPopulate, fd, offset);
        return p == (void*)-1 ? null : (byte*)p;
    }

    private static void Unmap(byte* p, nuint size)
    {
        if (p != null && size != 0)
        {
            Munmap(p, size);
        }
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial nint Syscall(nint number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial void* Mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Munmap(void* addr, nuint length);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}

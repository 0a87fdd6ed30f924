using System.Buffers;

namespace Appliance.Tls;

/// <summary>
/// Where <see cref="TlsRecordStream"/> takes the buffers it seals records into, and gives them back once sent: the
/// shared pool, unless the host sets one that keeps them on the thread. The appliance's event loops do (an io_uring
/// round seals the records of every connection it woke before its sends give any buffer back, and the shared pool's
/// per-thread slot holds one array a size: the rest took its per-core locks, about 600 instructions a request).
/// A buffer may go back to either pool: both take the other's.
/// </summary>
public static class RecordBuffers
{
    public static ArrayPool<byte> Pool { get; set; } = ArrayPool<byte>.Shared;
}

using System.Buffers;

namespace Appliance.Tls;

/// <summary>
/// The handshake's last records (the preface): what SslStream wrote after its last read of the handshake, kept by a
/// <see cref="RecordBoundedStream"/> that holds writes: a TLS 1.3 server's NewSessionTicket, or a TLS 1.2 server's
/// final flight. They leave in front of this stream's first records, in the same send (one TCP segment and one
/// system call fewer a connection: the ticket goes with the first response), or alone through
/// <see cref="FlushPreface"/>, which the connection calls once the round that finished the handshake has written
/// what it had to write (a TLS 1.2 client waits for the server's Finished; a response that takes an upstream's time
/// does not hold the ticket back).
/// <para>A write sealed while the preface is on its way alone waits for it (the records must follow it) and owns
/// <see cref="_writing"/> after it; the preface alone is sent only while no write is in flight, and every path that
/// seals (a write, close_notify, our fatal alert) takes a preface still here first, under the lock.</para>
/// </summary>
public sealed partial class TlsRecordStream : IThreadPoolWorkItem
{
    private byte[]? _preface;                        // pooled, under _lock
    private int _prefaceLength;
    private TaskCompletionSource? _prefaceSending;   // the preface sent alone, under way (under _lock)
    private bool _prefaceAwaited;                    // a write sealed meanwhile waits for it (under _lock)
    private volatile bool _prefacePending;           // _preface or _prefaceSending is set: every write reads this first

    /// <summary>Whether handshake records still wait to be sent (<see cref="FlushPreface"/> sends them).</summary>
    public bool HoldsPreface => _prefacePending;

    /// <summary>Before the stream is handed on: the kept records, a pooled buffer this stream returns.</summary>
    private void AdoptPreface(byte[] records, int length)
    {
        _preface = records;
        _prefaceLength = length;
        _prefacePending = true;
    }

    /// <summary>
    /// Under the lock, once records are sealed for sending: a preface still here goes in front of them (the buffer
    /// grows into a new one); or, while it is on its way alone, the task to wait for before sending. Null: send now.
    /// </summary>
    private Task? PrefaceFirstLocked(ref byte[] records, ref int length)
    {
        if (!_prefacePending)
        {
            return null;
        }

        if (_preface is { } preface)
        {
            byte[] both = ArrayPool<byte>.Shared.Rent(_prefaceLength + length);
            preface.AsSpan(0, _prefaceLength).CopyTo(both);
            records.AsSpan(0, length).CopyTo(both.AsSpan(_prefaceLength));
            ArrayPool<byte>.Shared.Return(records);
            ArrayPool<byte>.Shared.Return(preface);
            records = both;
            length += _prefaceLength;
            _preface = null;
            _prefaceLength = 0;
            _prefacePending = false;
            return null;
        }

        if (_prefaceSending is { } sending && length > 0)
        {
            _prefaceAwaited = true; // this write's records go once the preface is out, and _writing stays theirs
            return sending.Task;
        }

        return null;
    }

    void IThreadPoolWorkItem.Execute() => FlushPreface();

    /// <summary>
    /// Sends the preface alone if no write took it yet and none is in flight (a write in flight took it, or is our
    /// alert: the connection is failing). Never throws.
    /// </summary>
    public void FlushPreface()
    {
        if (!_prefacePending)
        {
            return;
        }

        byte[] preface;
        int length;
        _lock.Enter();
        try
        {
            if (_preface is null || _writing || _closed)
            {
                return;
            }

            preface = _preface;
            length = _prefaceLength;
            _preface = null;
            _prefaceLength = 0;
            _prefaceSending = new TaskCompletionSource(); // continuations inline: the write waiting goes on the completing thread
            _writing = true;
        }
        finally
        {
            _lock.Exit();
        }

        _ = SendPrefaceAsync(preface, length);
    }

    private async Task SendPrefaceAsync(byte[] preface, int length)
    {
        try
        {
            await _transport.WriteAsync(preface.AsMemory(0, length)).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The connection is going: the next read or write says so.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(preface);
            TaskCompletionSource sending;
            bool release;
            _lock.Enter();
            try
            {
                sending = _prefaceSending!;
                _prefaceSending = null;
                _prefacePending = false;
                release = !_prefaceAwaited;
                _prefaceAwaited = false;
            }
            finally
            {
                _lock.Exit();
            }

            if (release)
            {
                WriteDone(); // no write waits: the send in flight ends here (our alert, if one waits, goes now)
            }

            sending.SetResult(); // a write sealed meanwhile is sent now
        }
    }

    /// <summary>Sends sealed records once the preface that went alone is out (<paramref name="after"/>).</summary>
    private async ValueTask SendAfterAsync(Task after, byte[] records, int length, CancellationToken cancellationToken)
    {
        await after.ConfigureAwait(false);
        await SendAsync(records, length, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>At dispose (under the lock): a preface never sent is let go.</summary>
    private void ReleasePrefaceLocked()
    {
        if (_preface is { } preface)
        {
            _preface = null;
            _prefaceLength = 0;
            ArrayPool<byte>.Shared.Return(preface);
        }
    }
}

namespace Appliance.Protocol.Http2;

/// <summary>
/// One flow-control window (RFC 9113 §5.2, §6.9): a credit of octets that DATA payloads spend and WINDOW_UPDATE
/// frames restore. Arithmetic is checked: a window may never exceed 2^31-1 (§6.9.1), and may go negative only through
/// a change of SETTINGS_INITIAL_WINDOW_SIZE (§6.9.2). A connection keeps one per direction for itself and per stream.
/// </summary>
public struct Http2FlowWindow
{
    /// <summary>2^31-1, the largest window (§6.9.1).</summary>
    public const int MaxSize = int.MaxValue;

    private int _available;

    public Http2FlowWindow(int initialSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(initialSize);
        _available = initialSize;
    }

    /// <summary>Octets that may still be sent or received; negative after a shrinking SETTINGS_INITIAL_WINDOW_SIZE.</summary>
    public readonly int Available => _available;

    /// <summary>
    /// Spends <paramref name="n"/> octets. False, changing nothing, when fewer are available: for received DATA that
    /// is a FLOW_CONTROL_ERROR (§6.9.1), for data to send it means wait for a WINDOW_UPDATE. Zero always succeeds,
    /// even on a negative window: an empty DATA frame (END_STREAM alone) costs nothing.
    /// </summary>
    public bool TryConsume(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (n != 0 && n > _available)
        {
            return false;
        }

        _available -= n;
        return true;
    }

    /// <summary>
    /// Adds a WINDOW_UPDATE increment (or returns credit). False, changing nothing, when the window would exceed
    /// 2^31-1: a FLOW_CONTROL_ERROR, a stream error for a stream window and a connection error for the connection's
    /// (§6.9.1).
    /// </summary>
    public bool TryIncrease(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        long next = (long)_available + n;
        if (next > MaxSize)
        {
            return false;
        }

        _available = (int)next;
        return true;
    }

    /// <summary>
    /// Moves a stream window by the difference between a new and the old SETTINGS_INITIAL_WINDOW_SIZE (§6.9.2); the
    /// result may be negative. False, changing nothing, when it would exceed 2^31-1: a FLOW_CONTROL_ERROR connection
    /// error (§6.9.2).
    /// </summary>
    public bool TryAdjust(int delta)
    {
        long next = (long)_available + delta;
        if (next > MaxSize || next < int.MinValue)
        {
            return false;
        }

        _available = (int)next;
        return true;
    }
}

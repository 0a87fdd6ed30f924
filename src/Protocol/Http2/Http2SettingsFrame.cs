using System.Buffers;

namespace Appliance.Protocol.Http2;

/// <summary>
/// A validated SETTINGS frame (RFC 9113 §6.5). Enumerate it with <c>foreach</c> to get the pairs in the order sent,
/// which is the order they must be applied in (§6.5.3); unknown identifiers are included and must be skipped.
/// </summary>
public readonly struct Http2SettingsFrame
{
    private readonly ReadOnlySequence<byte> _payload;

    public Http2SettingsFrame(bool isAck, ReadOnlySequence<byte> payload)
    {
        IsAck = isAck;
        _payload = payload;
    }

    /// <summary>An acknowledgement of the server's own SETTINGS; it has no pairs.</summary>
    public bool IsAck { get; }

    public int Count => (int)(_payload.Length / Http2Setting.Size);

    public Enumerator GetEnumerator() => new(_payload);

    /// <summary>Reads pairs straight from the payload, without copying them anywhere.</summary>
    public ref struct Enumerator
    {
        private SequenceReader<byte> _reader;

        internal Enumerator(ReadOnlySequence<byte> payload)
        {
            _reader = new SequenceReader<byte>(payload);
            Current = default;
        }

        public Http2Setting Current { get; private set; }

        public bool MoveNext()
        {
            if (!_reader.TryReadBigEndian(out short id) || !_reader.TryReadBigEndian(out int value))
            {
                return false;
            }

            Current = new Http2Setting((Http2SettingId)(ushort)id, (uint)value);
            return true;
        }
    }
}

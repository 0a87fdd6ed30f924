namespace Appliance.Protocol.Hpack;

/// <summary>
/// Receives the fields of a header block from <see cref="HpackDecoder"/>. Implement it on a struct: the decoder is
/// generic over the handler, so the call is devirtualised and inlined.
/// </summary>
public interface IHpackHeaderHandler
{
    /// <summary>One field line, in block order. The spans point into the decoder's buffers or the dynamic table and
    /// are valid only during the call. Names are passed as received: checking that they are lowercase and valid is
    /// the caller's job (RFC 9113 §8.2.1).</summary>
    void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value);

    /// <summary>
    /// A field represented by an index alone (RFC 7541 §6.1), otherwise as <see cref="OnHeader"/>. <paramref name="entry"/>
    /// names the table entry for the decoder's whole life: -i for static entry i, +n for the n-th entry ever inserted
    /// into the dynamic table. An entry never changes, so a handler may remember what it found about one (that its
    /// characters are valid, say) instead of checking it again each time it is referenced.
    /// </summary>
    void OnIndexedHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, long entry);
}

namespace Appliance.Protocol.Hpack;

/// <summary>The outcome of decoding (part of) a header block with <see cref="HpackDecoder"/>.</summary>
public enum HpackStatus : byte
{
    Ok,

    /// <summary>The block is not valid HPACK, so the compression context can no longer be trusted: a connection error
    /// of type COMPRESSION_ERROR (RFC 9113 §4.3). The decoder refuses all later input.</summary>
    CompressionError,

    /// <summary>The decoded header list exceeds the limit (RFC 9113 §6.5.2 sizes): a stream error or a 431 for the
    /// caller to choose. The decoder stays in sync with the peer as long as the rest of the block is fed to it.</summary>
    HeaderListTooLarge,
}

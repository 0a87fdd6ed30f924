namespace Appliance.Protocol.Http1;

/// <summary>What one <see cref="ChunkedDecoder.Read"/> call found.</summary>
public enum ChunkedStatus : byte
{
    /// <summary>The buffered bytes end inside framing or before the next data: read more.</summary>
    NeedMoreData,

    /// <summary>Body bytes are available at the reader's position.</summary>
    Data,

    /// <summary>The last chunk, the trailer section and the final CRLF were consumed.</summary>
    Done,

    /// <summary>The framing is invalid; see the rejection.</summary>
    Error,
}

namespace Appliance.Protocol.Http2;

/// <summary>What <see cref="Http2Preface.Check"/> found at the start of a connection's input.</summary>
public enum PrefaceMatch : byte
{
    /// <summary>The input holds fewer than 24 bytes and all of them agree with the client preface.</summary>
    NeedMore = 0,

    /// <summary>The input starts with the whole 24-byte client preface.</summary>
    Match,

    /// <summary>Some byte differs: this is not HTTP/2 with prior knowledge (for example an HTTP/1.1 request).</summary>
    NoMatch,
}

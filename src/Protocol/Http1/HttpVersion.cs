namespace Appliance.Protocol.Http1;

/// <summary>The protocol versions the engine speaks. HTTP/1.x requests only ever carry 1.0 or 1.1 (others are 505).</summary>
public enum HttpVersion : byte
{
    Http10,
    Http11,
    Http2,
}

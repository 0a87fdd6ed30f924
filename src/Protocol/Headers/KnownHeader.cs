namespace Appliance.Protocol.Headers;

/// <summary>
/// Header fields the engine looks at or that are common enough to deserve a slot, so hot paths compare a byte
/// instead of a name. <see cref="None"/> marks a field whose name is not in this list.
/// </summary>
/// <remarks>Values stay below 64 so a <c>ulong</c> can hold a presence mask (see <see cref="HeaderCollection"/>).</remarks>
public enum KnownHeader : byte
{
    None = 0,
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    Expect,
    TE,
    Trailer,
    Upgrade,
    ProxyConnection,
    ProxyAuthorization,
    ContentType,
    Accept,
    AcceptEncoding,
    UserAgent,
    Authorization,
    Cookie,
    Date,
    Server,
    Location,
    CacheControl,
    Forwarded,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    XRequestId,
    Traceparent,
    Via,
    Referer,
    Origin,
    AcceptLanguage,
    IfNoneMatch,
    IfModifiedSince,
    Range,
}

namespace Appliance.Proxy;

/// <summary>What a cluster's destinations speak.</summary>
public enum UpstreamProtocol
{
    /// <summary>HTTP/1.1 keep-alive connections, one request at a time each.</summary>
    Http11,

    /// <summary>Multiplexed HTTP/2: h2 by ALPN over TLS, prior knowledge (h2c) without.</summary>
    Http2,
}

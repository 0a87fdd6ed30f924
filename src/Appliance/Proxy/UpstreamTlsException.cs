namespace Appliance.Proxy;

/// <summary>The TLS handshake with an upstream failed (untrusted certificate, wrong name, protocol); answered 502.</summary>
public sealed class UpstreamTlsException(string message, Exception? inner = null) : IOException(message, inner);

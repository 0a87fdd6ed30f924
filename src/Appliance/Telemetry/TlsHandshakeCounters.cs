namespace Appliance.Telemetry;

/// <summary>
/// TLS handshakes by outcome, exported as <c>tls_handshakes_total{result="full|resumed|failed"}</c>. "resumed" means
/// OpenSSL accepted the client's session (ID, ticket or TLS 1.3 PSK); "unknown" appears only if the runtime stops
/// telling us (see <see cref="Tls.SessionResumption.Unavailable"/>).
/// </summary>
public static class TlsHandshakeCounters
{
    private static long s_full;
    private static long s_resumed;
    private static long s_failed;
    private static long s_unknown;

    public static void Completed(bool? resumed)
    {
        if (resumed is not { } r)
        {
            Interlocked.Increment(ref s_unknown);
        }
        else
        {
            Interlocked.Increment(ref r ? ref s_resumed : ref s_full);
        }
    }

    public static void Failed() => Interlocked.Increment(ref s_failed);

    private static long s_evpRecords;
    private static long s_openSslRecords;
    private static long s_sslStreamRecords;

    /// <summary>
    /// Who runs a connection's records after its handshake (server.tlsRecordLayer): the appliance with OpenSSL's
    /// ciphers (evp), OpenSSL's record layer, or SslStream as the fallback.
    /// </summary>
    public static void RecordLayer(Stream stream)
    {
        if (stream is not Tls.TlsRecordStream records)
        {
            Interlocked.Increment(ref s_sslStreamRecords);
        }
        else
        {
            Interlocked.Increment(ref records.IsProtected ? ref s_evpRecords : ref s_openSslRecords);
        }
    }

    public static IEnumerable<KeyValuePair<string, long>> RecordLayers()
    {
        yield return new("evp", Interlocked.Read(ref s_evpRecords));
        yield return new("openssl", Interlocked.Read(ref s_openSslRecords));
        yield return new("sslstream", Interlocked.Read(ref s_sslStreamRecords));
    }

    public static IEnumerable<KeyValuePair<string, long>> Snapshot()
    {
        yield return new("full", Interlocked.Read(ref s_full));
        yield return new("resumed", Interlocked.Read(ref s_resumed));
        yield return new("failed", Interlocked.Read(ref s_failed));
        long unknown = Interlocked.Read(ref s_unknown);
        if (unknown > 0)
        {
            yield return new("unknown", unknown);
        }
    }
}

using System.Net.Security;
using Appliance.Tls;
using BenchmarkDotNet.Attributes;

namespace Appliance.Benchmarks;

/// <summary>
/// The TLS 1.3 record layer of server.tlsRecordLayer "evp" (RecordProtection): sealing one record, and a record
/// sealed by the peer's keys then opened by ours (opening alone = the round trip minus the seal). A small response
/// (130 bytes: a short HTTP/1.1 head and body) and a full 16 KiB record, for each suite. The cipher work is OpenSSL's;
/// what is measured is that plus the calls around it, which is where OpenSSL 3.0's parameter lookups cost. Nothing
/// may allocate.
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class TlsRecordBenchmarks
{
    private RecordProtection _server = null!;
    private RecordProtection _peer = null!;
    private byte[] _content = [];
    private byte[] _record = [];

    [Params(TlsCipherSuite.TLS_AES_128_GCM_SHA256, TlsCipherSuite.TLS_AES_256_GCM_SHA384, TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256)]
    public TlsCipherSuite Suite { get; set; }

    [Params(130, 16384)]
    public int Length { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        // The record layer binds to the OpenSSL .NET's crypto shim has mapped; any crypto call maps it.
        System.Security.Cryptography.SHA256.HashData([]);
        int hash = RecordProtection.SecretLength(Suite);
        byte[] clientSecret = [.. Enumerable.Range(1, hash).Select(i => (byte)i)];
        byte[] serverSecret = [.. Enumerable.Range(101, hash).Select(i => (byte)i)];
        _server = RecordProtection.ForSecrets(clientSecret, serverSecret, Suite);
        _peer = RecordProtection.ForSecrets(serverSecret, clientSecret, Suite);
        _content = [.. Enumerable.Range(0, Length).Select(i => (byte)(i * 7))];
        _record = new byte[Length + RecordProtection.Overhead];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _server.Dispose();
        _peer.Dispose();
    }

    [Benchmark]
    public int Seal() => _server.Seal(RecordProtection.ApplicationData, _content, _record);

    [Benchmark]
    public int SealByPeerThenOpen()
    {
        int length = _peer.Seal(RecordProtection.ApplicationData, _content, _record);
        return _server.Open(_record.AsSpan(0, length), out _);
    }
}

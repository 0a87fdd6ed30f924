using Appliance.State;

namespace Appliance.Policies;

/// <summary>
/// The gateway's in-memory copy of the credentials in the state database (<see cref="StateStore.LoadCredentials"/>):
/// API keys by the SHA-256 of their secret, and approved subscriptions. Requests are checked against it without
/// touching SQLite; it is rebuilt after every write to the store, before that write returns, so a revoked key or
/// a rejected subscription stops working by the time the admin call that made it answers.
/// </summary>
public sealed class ConsumerDirectory : IDisposable
{
    private readonly StateStore _store;
    private readonly Lock _refresh = new();
    private volatile Snapshot _current;

    public ConsumerDirectory(StateStore store)
    {
        _store = store;
        _current = Load();
        store.Changed += Refresh;
    }

    /// <summary>Keys held now (not revoked; expired ones are refused per request).</summary>
    public int KeyCount => _current.Keys.Count;

    /// <summary>The key whose secret hashes to <paramref name="hash"/>, if it is held.</summary>
    public bool TryFind(ReadOnlySpan<byte> hash, out KeyCredential? key) => _current.Lookup.TryGetValue(hash, out key);

    /// <summary>Whether the consumer holds an approved subscription to the API (a route id).</summary>
    public bool IsSubscribed(string consumerId, string apiId) => _current.Subscriptions.Contains((consumerId, apiId));

    /// <summary>Reads the store again; writes that land meanwhile are picked up by the refresh they trigger.</summary>
    public void Refresh()
    {
        lock (_refresh)
        {
            _current = Load();
        }
    }

    public void Dispose() => _store.Changed -= Refresh;

    private Snapshot Load()
    {
        CredentialSet set = _store.LoadCredentials();
        var keys = new Dictionary<byte[], KeyCredential>(set.Keys.Count, ByteKeyComparer.Instance);
        foreach (KeyCredential key in set.Keys)
        {
            keys[key.Hash] = key;
        }

        return new Snapshot(keys, [.. set.Subscriptions]);
    }

    private sealed class Snapshot(Dictionary<byte[], KeyCredential> keys, HashSet<(string, string)> subscriptions)
    {
        public Dictionary<byte[], KeyCredential> Keys { get; } = keys;

        public Dictionary<byte[], KeyCredential>.AlternateLookup<ReadOnlySpan<byte>> Lookup { get; } = keys.GetAlternateLookup<ReadOnlySpan<byte>>();

        public HashSet<(string, string)> Subscriptions { get; } = subscriptions;
    }
}

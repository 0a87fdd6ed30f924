using Appliance.State;

namespace Appliance.Policies;

/// <summary>
/// The gateway's in-memory copy of the credentials in the state database (<see cref="StateStore.LoadCredentials"/>):
/// API keys by the SHA-256 of their secret, and approved subscriptions. Requests are checked against it without
/// touching SQLite; it is rebuilt after every write to keys, consumers, subscriptions or tenants, before that write
/// returns, so a revoked key or a removed subscription stops working by the time the admin call that made it
/// answers. If a rebuild fails (the database unreadable), the copy fails closed: every key is refused until a
/// rebuild succeeds, tried again at most once a second by the requests that need it.
/// </summary>
public sealed class ConsumerDirectory : IDisposable
{
    private static readonly Credentials s_none = new(new Dictionary<byte[], KeyCredential>(ByteKeyComparer.Instance), []);

    private readonly StateStore _store;
    private readonly TimeProvider _time;
    private readonly Lock _refresh = new();
    private volatile Credentials _current = s_none;
    private long _retryAt = long.MaxValue; // a timestamp while the copy has failed closed

    public ConsumerDirectory(StateStore store, TimeProvider? time = null)
    {
        _store = store;
        _time = time ?? TimeProvider.System;
        store.Changed += OnChanged; // before the first load, so no write falls between the two
        try
        {
            Refresh();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Failed closed (Problem says why); the first request a second from now tries again.
        }
    }

    /// <summary>Keys held now (not revoked; expired ones are refused per request).</summary>
    public int KeyCount => _current.Keys.Count;

    /// <summary>The last rebuild failed and every key is refused (its error), or null.</summary>
    public string? Problem { get; private set; }

    /// <summary>
    /// The credentials as they stand, one consistent copy for a whole request. While the copy has failed closed, a
    /// caller past the retry time rebuilds it first (one at a time; the others get the empty copy meanwhile).
    /// </summary>
    public Credentials Current
    {
        get
        {
            long retryAt = Volatile.Read(ref _retryAt);
            if (retryAt != long.MaxValue && retryAt <= _time.GetTimestamp() && _refresh.TryEnter()) // the clock only while closed
            {
                try
                {
                    if (Volatile.Read(ref _retryAt) <= _time.GetTimestamp())
                    {
                        RefreshLocked();
                    }
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // Still closed; Problem says why, and the next try is a second away.
                }
                finally
                {
                    _refresh.Exit();
                }
            }

            return _current;
        }
    }

    /// <summary>Reads the store again; writes that land meanwhile are picked up by the refresh they trigger.</summary>
    public void Refresh()
    {
        lock (_refresh)
        {
            RefreshLocked();
        }
    }

    public void Dispose() => _store.Changed -= OnChanged;

    private void OnChanged(StateChange change)
    {
        if (change != StateChange.Usage)
        {
            Refresh();
        }
    }

    private void RefreshLocked()
    {
        try
        {
            CredentialSet set = _store.LoadCredentials();
            var keys = new Dictionary<byte[], KeyCredential>(set.Keys.Count, ByteKeyComparer.Instance);
            foreach (KeyCredential key in set.Keys)
            {
                keys[key.Hash] = key;
            }

            _current = new Credentials(keys, [.. set.Subscriptions]);
            Problem = null;
            Volatile.Write(ref _retryAt, long.MaxValue);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Fail closed: a key revoked by the write that triggered this must not keep working on the old copy.
            _current = s_none;
            Problem = e.Message;
            Volatile.Write(ref _retryAt, _time.GetTimestamp() + _time.TimestampFrequency);
            throw;
        }
    }

    /// <summary>One consistent copy: keys by hash and approved (consumer, API) pairs.</summary>
    public sealed class Credentials(Dictionary<byte[], KeyCredential> keys, HashSet<(string, string)> subscriptions)
    {
        private readonly Dictionary<byte[], KeyCredential>.AlternateLookup<ReadOnlySpan<byte>> _lookup = keys.GetAlternateLookup<ReadOnlySpan<byte>>();

        public IReadOnlyDictionary<byte[], KeyCredential> Keys => keys;

        /// <summary>The key whose secret hashes to <paramref name="hash"/>, if it is held.</summary>
        public bool TryFind(ReadOnlySpan<byte> hash, out KeyCredential? key) => _lookup.TryGetValue(hash, out key);

        /// <summary>Whether the consumer holds an approved subscription to the API (a route id).</summary>
        public bool IsSubscribed(string consumerId, string apiId) => subscriptions.Contains((consumerId, apiId));
    }
}

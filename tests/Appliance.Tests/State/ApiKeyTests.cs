using System.Text;
using Appliance.State;

namespace Appliance.Tests.State;

/// <summary>API keys: the secret is shown once and never stored; verification refuses revoked, expired and wrong secrets.</summary>
public sealed class ApiKeyTests : IDisposable
{
    private readonly StateTestDatabase _db = new();

    public ApiKeyTests()
    {
        Store.CreateTenant("acme", "Acme");
        Store.CreateConsumer("acme", "Mobile", "mobile");
    }

    private StateStore Store => _db.Store;

    public void Dispose() => _db.Dispose();

    private static int IndexOf(byte[] haystack, string needle) => haystack.AsSpan().IndexOf(Encoding.ASCII.GetBytes(needle));

    [Fact]
    public void Created_key_has_the_documented_shape()
    {
        CreatedApiKey created = Store.CreateApiKey("mobile");
        Assert.Matches("^apk_[0-9A-Za-z]{32}$", created.Secret);
        Assert.Equal(created.Secret[..12], created.Key.Prefix);
        Assert.Matches("^key_[0-9A-Za-z]{16}$", created.Key.Id);
        Assert.Equal(("mobile", "acme"), (created.Key.ConsumerId, created.Key.TenantId));
        Assert.Null(created.Key.RevokedAt);
        Assert.Null(created.Key.ExpiresAt);
        Assert.Equal(created.Key, Store.GetApiKey(created.Key.Id));
        Assert.NotEqual(created.Secret, Store.CreateApiKey("mobile").Secret);
    }

    [Fact]
    public void The_secret_is_never_written_to_disk()
    {
        var secrets = Enumerable.Range(0, 20).Select(_ => Store.CreateApiKey("mobile").Secret).ToList();

        // While open the keys sit in the WAL; after close, in the main file. Neither may hold a secret.
        byte[] open = _db.AllFileBytes();
        Assert.True(IndexOf(open, secrets[0][..12]) >= 0, "the prefix is stored, so the search does see the rows");
        foreach (string secret in secrets)
        {
            Assert.Equal(-1, IndexOf(open, secret));
            Assert.Equal(-1, IndexOf(open, secret[12..])); // nor the part after the prefix
        }

        _db.Store.Dispose();
        Assert.False(File.Exists(_db.Path + "-wal"));
        byte[] closed = File.ReadAllBytes(_db.Path);
        Assert.All(secrets, s => Assert.Equal(-1, IndexOf(closed, s[12..])));
    }

    [Fact]
    public void Listing_never_returns_a_secret_or_a_hash()
    {
        CreatedApiKey created = Store.CreateApiKey("mobile");
        ApiKey listed = Assert.Single(Store.ListApiKeys("mobile").Items);
        Assert.Equal(created.Key, listed);
        Assert.Equal(["Id", "ConsumerId", "TenantId", "Prefix", "CreatedAt", "ExpiresAt", "RevokedAt"],
            typeof(ApiKey).GetProperties().Select(p => p.Name));
    }

    [Fact]
    public void Verify_accepts_the_secret_and_survives_a_restart()
    {
        CreatedApiKey created = Store.CreateApiKey("mobile");
        Assert.Equal(created.Key, Store.VerifyApiKey(created.Secret));
        Assert.Equal(created.Key, _db.Reopen().VerifyApiKey(created.Secret));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("apk_")]
    [InlineData("apk_short")]
    [InlineData("APK_0123456789abcdefghijABCDEFGHIJ01")]
    [InlineData("apk_0123456789abcdefghijABCDEFGHIJ0!")]
    [InlineData("apk_0123456789abcdefghijABCDEFGHIJ012")]
    [InlineData("apk_' OR 1=1 --aaaaaaaaaaaaaaaaaaaaaa")]
    public void Verify_refuses_malformed_secrets(string? secret) => Assert.Null(Store.VerifyApiKey(secret));

    [Fact]
    public void Verify_refuses_a_wrong_secret_even_with_the_right_prefix()
    {
        CreatedApiKey created = Store.CreateApiKey("mobile");
        char last = created.Secret[^1] == 'a' ? 'b' : 'a';
        Assert.Null(Store.VerifyApiKey(created.Secret[..^1] + last));
        Assert.Null(Store.VerifyApiKey("apk_" + new string('Z', 32)));
    }

    [Fact]
    public void Verify_refuses_a_revoked_key_and_revoking_again_keeps_the_time()
    {
        CreatedApiKey created = Store.CreateApiKey("mobile");
        CreatedApiKey other = Store.CreateApiKey("mobile");
        ApiKey revoked = Store.RevokeApiKey(created.Key.Id);
        Assert.Equal(_db.Time.GetUtcNow(), revoked.RevokedAt);
        Assert.Null(Store.VerifyApiKey(created.Secret));
        Assert.NotNull(Store.VerifyApiKey(other.Secret));

        _db.Time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(revoked.RevokedAt, Store.RevokeApiKey(created.Key.Id).RevokedAt);
        Assert.Equal(revoked, Assert.Single(Store.ListApiKeys("mobile").Items, k => k.Id == created.Key.Id));
        Assert.Equal(StateErrorKind.NotFound, Assert.Throws<StateException>(() => Store.RevokeApiKey("key_missing")).Kind);
    }

    [Fact]
    public void Verify_refuses_an_expired_key()
    {
        DateTimeOffset expiry = _db.Time.GetUtcNow() + TimeSpan.FromDays(30);
        CreatedApiKey created = Store.CreateApiKey("mobile", expiry);
        Assert.Equal(expiry, created.Key.ExpiresAt);
        _db.Time.Advance(TimeSpan.FromDays(30) - TimeSpan.FromMilliseconds(1));
        Assert.NotNull(Store.VerifyApiKey(created.Secret));
        _db.Time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Null(Store.VerifyApiKey(created.Secret));
    }

    [Fact]
    public void Expiry_must_be_in_the_future_and_the_consumer_must_exist()
    {
        StateException e = Assert.Throws<StateException>(() => Store.CreateApiKey("mobile", _db.Time.GetUtcNow()));
        Assert.Equal((StateErrorKind.Invalid, "expiresAt"), (e.Kind, e.Field));
        e = Assert.Throws<StateException>(() => Store.CreateApiKey("ghost"));
        Assert.Equal((StateErrorKind.NotFound, "consumerId"), (e.Kind, e.Field));
        e = Assert.Throws<StateException>(() => Store.ListApiKeys("ghost"));
        Assert.Equal((StateErrorKind.NotFound, "consumerId"), (e.Kind, e.Field));
        Assert.Empty(Store.ListApiKeys("mobile").Items);
    }

    [Fact]
    public void Keys_sharing_a_prefix_are_told_apart_by_hash()
    {
        // A prefix has only 8 random characters, so two keys may share one: give both rows the same prefix and
        // check each secret still finds its own key, whichever row the lookup meets first.
        CreatedApiKey a = Store.CreateApiKey("mobile");
        CreatedApiKey b = Store.CreateApiKey("mobile");
        void SetAllPrefixes(string prefix)
        {
            using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_db.Path};Pooling=False");
            connection.Open();
            using Microsoft.Data.Sqlite.SqliteCommand command = connection.CreateCommand();
            command.CommandText = "UPDATE api_keys SET prefix = $p";
            command.Parameters.AddWithValue("$p", prefix);
            Assert.Equal(2, command.ExecuteNonQuery());
        }

        SetAllPrefixes(a.Key.Prefix);
        Assert.Equal(a.Key.Id, Store.VerifyApiKey(a.Secret)!.Id);
        Assert.Null(Store.VerifyApiKey(a.Key.Prefix + b.Secret[12..]));
        SetAllPrefixes(b.Key.Prefix);
        Assert.Equal(b.Key.Id, Store.VerifyApiKey(b.Secret)!.Id);
        Assert.Null(Store.VerifyApiKey(a.Secret));
    }

    [Fact]
    public void Keys_page_in_creation_order()
    {
        var ids = new List<string>();
        for (int i = 0; i < 12; i++)
        {
            ids.Add(Store.CreateApiKey("mobile").Key.Id);
            _db.Time.Advance(TimeSpan.FromMilliseconds(1));
        }

        Page<ApiKey> first = Store.ListApiKeys("mobile", limit: 5);
        Page<ApiKey> second = Store.ListApiKeys("mobile", limit: 5, after: first.Next);
        Page<ApiKey> third = Store.ListApiKeys("mobile", limit: 5, after: second.Next);
        Assert.Equal(ids, first.Items.Concat(second.Items).Concat(third.Items).Select(k => k.Id));
        Assert.Null(third.Next);
    }
}

using Appliance.State;

namespace Appliance.Tests.State;

/// <summary>Consumer CRUD within a tenant, generated ids, paging, and deletion taking keys, subscriptions and usage along.</summary>
public sealed class ConsumerTests : IDisposable
{
    private readonly StateTestDatabase _db = new();

    public ConsumerTests()
    {
        Store.CreateTenant("acme", "Acme");
        Store.CreateTenant("other", "Other");
    }

    private StateStore Store => _db.Store;

    public void Dispose() => _db.Dispose();

    [Fact]
    public void Create_get_update_delete()
    {
        Consumer created = Store.CreateConsumer("acme", "Mobile app", "mobile");
        Assert.Equal(new Consumer("mobile", "acme", "Mobile app", _db.Time.GetUtcNow(), _db.Time.GetUtcNow()), created);
        Assert.Equal(created, Store.GetConsumer("mobile"));

        _db.Time.Advance(TimeSpan.FromSeconds(1));
        Consumer renamed = Store.UpdateConsumer("mobile", "Mobile (iOS)");
        Assert.Equal(created with { Name = "Mobile (iOS)", UpdatedAt = created.CreatedAt + TimeSpan.FromSeconds(1) }, renamed);

        Store.DeleteConsumer("mobile");
        Assert.Null(Store.GetConsumer("mobile"));
        Assert.Throws<StateException>(() => Store.DeleteConsumer("mobile"));
    }

    [Fact]
    public void Without_an_id_one_is_generated_in_creation_order()
    {
        Consumer first = Store.CreateConsumer("acme", "First");
        _db.Time.Advance(TimeSpan.FromMilliseconds(1));
        Consumer second = Store.CreateConsumer("acme", "Second");
        Assert.Matches("^con_[0-9A-Za-z]{16}$", first.Id);
        Assert.True(string.CompareOrdinal(first.Id, second.Id) < 0);
        Assert.Equal([first.Id, second.Id], Store.ListConsumers("acme").Items.Select(c => c.Id));
    }

    [Fact]
    public void The_tenant_must_exist()
    {
        StateException e = Assert.Throws<StateException>(() => Store.CreateConsumer("ghost", "x"));
        Assert.Equal((StateErrorKind.NotFound, "tenantId"), (e.Kind, e.Field));
        e = Assert.Throws<StateException>(() => Store.ListConsumers("ghost"));
        Assert.Equal((StateErrorKind.NotFound, "tenantId"), (e.Kind, e.Field));
    }

    [Fact]
    public void Ids_are_unique_across_tenants()
    {
        Store.CreateConsumer("acme", "A", "shared");
        StateException e = Assert.Throws<StateException>(() => Store.CreateConsumer("other", "B", "shared"));
        Assert.Equal((StateErrorKind.Conflict, "id"), (e.Kind, e.Field));
        Assert.Equal("acme", Store.GetConsumer("shared")!.TenantId);
    }

    [Fact]
    public void Input_is_validated_with_field_paths()
    {
        Assert.Equal("name", Assert.Throws<StateException>(() => Store.CreateConsumer("acme", new string('n', 1 << 20))).Field);
        Assert.Equal("id", Assert.Throws<StateException>(() => Store.CreateConsumer("acme", "x", "a b")).Field);
        Assert.Equal("tenantId", Assert.Throws<StateException>(() => Store.CreateConsumer("a;b", "x")).Field);
        Assert.Equal("name", Assert.Throws<StateException>(() => Store.UpdateConsumer("missing", "\r\n")).Field);
        Assert.Equal(StateErrorKind.NotFound, Assert.Throws<StateException>(() => Store.UpdateConsumer("missing", "ok")).Kind);
        Store.CreateConsumer("acme", "'; DELETE FROM consumers; --", "c1");
        Assert.Equal("'; DELETE FROM consumers; --", Store.GetConsumer("c1")!.Name);
    }

    [Fact]
    public void Lists_are_per_tenant_and_paged()
    {
        for (int i = 0; i < 7; i++)
        {
            Store.CreateConsumer("acme", $"A{i}", $"a{i}");
            Store.CreateConsumer("other", $"O{i}", $"o{i}");
        }

        Page<Consumer> first = Store.ListConsumers("acme", limit: 4);
        Assert.Equal(["a0", "a1", "a2", "a3"], first.Items.Select(c => c.Id));
        Assert.Equal("a3", first.Next);
        Page<Consumer> second = Store.ListConsumers("acme", limit: 4, after: first.Next);
        Assert.Equal(["a4", "a5", "a6"], second.Items.Select(c => c.Id));
        Assert.Null(second.Next);
    }

    [Fact]
    public void Deleting_a_consumer_deletes_its_keys_subscriptions_and_usage()
    {
        Store.CreateConsumer("acme", "C", "c");
        CreatedApiKey key = Store.CreateApiKey("c");
        Subscription sub = Store.CreateSubscription("c", "orders");
        Store.AddUsage("c", "2025-11-29", 3);

        Store.DeleteConsumer("c");
        Assert.Null(Store.GetApiKey(key.Key.Id));
        Assert.Null(Store.VerifyApiKey(key.Secret));
        Assert.Null(Store.GetSubscription(sub.Id));
        Store.CreateConsumer("acme", "C again", "c"); // same id, fresh start
        Assert.Empty(Store.GetUsage("c"));
        Assert.Empty(Store.ListApiKeys("c").Items);
    }
}

using Appliance.State;

namespace Appliance.Tests.State;

/// <summary>Subscriptions: pending until approved or rejected, decided once, listed as an approval queue.</summary>
public sealed class SubscriptionTests : IDisposable
{
    private readonly StateTestDatabase _db = new();

    public SubscriptionTests()
    {
        Store.CreateTenant("acme", "Acme");
        Store.CreateConsumer("acme", "Mobile", "mobile");
        Store.CreateConsumer("acme", "Web", "web");
    }

    private StateStore Store => _db.Store;

    public void Dispose() => _db.Dispose();

    [Fact]
    public void Pending_then_approved()
    {
        Subscription created = Store.CreateSubscription("mobile", "orders");
        Assert.Equal(SubscriptionStatus.Pending, created.Status);
        Assert.Matches("^sub_[0-9A-Za-z]{16}$", created.Id);
        Assert.Equal(created, Store.GetSubscription(created.Id));
        Assert.False(Store.IsSubscribed("mobile", "orders"));

        _db.Time.Advance(TimeSpan.FromMinutes(3));
        Subscription approved = Store.ApproveSubscription(created.Id, "uid 1000 (alice)");
        Assert.Equal(created with { Status = SubscriptionStatus.Approved, DecidedAt = created.CreatedAt + TimeSpan.FromMinutes(3), DecidedBy = "uid 1000 (alice)" }, approved);
        Assert.Equal(approved, _db.Reopen().GetSubscription(created.Id));
        Assert.True(Store.IsSubscribed("mobile", "orders"));
        Assert.False(Store.IsSubscribed("web", "orders"));
    }

    [Fact]
    public void A_decision_is_final()
    {
        Subscription s = Store.CreateSubscription("mobile", "orders");
        Store.RejectSubscription(s.Id, "ops");
        Assert.False(Store.IsSubscribed("mobile", "orders"));
        StateException e = Assert.Throws<StateException>(() => Store.ApproveSubscription(s.Id, "someone else"));
        Assert.Equal((StateErrorKind.Conflict, "id"), (e.Kind, e.Field));
        Assert.Contains("rejected by ops", e.Message);
        Assert.Equal(SubscriptionStatus.Rejected, Store.GetSubscription(s.Id)!.Status);

        // Deleting it lets the consumer ask again.
        Assert.Equal(StateErrorKind.Conflict, Assert.Throws<StateException>(() => Store.CreateSubscription("mobile", "orders")).Kind);
        Store.DeleteSubscription(s.Id);
        Assert.Equal(SubscriptionStatus.Pending, Store.CreateSubscription("mobile", "orders").Status);
    }

    [Fact]
    public void Input_is_validated()
    {
        Assert.Equal((StateErrorKind.NotFound, "consumerId"), Fail(() => Store.CreateSubscription("ghost", "orders")));
        Assert.Equal((StateErrorKind.Invalid, "apiId"), Fail(() => Store.CreateSubscription("mobile", "orders; DROP TABLE x")));
        Assert.Equal((StateErrorKind.NotFound, "id"), Fail(() => Store.ApproveSubscription("sub_missing", "ops")));
        Subscription s = Store.CreateSubscription("mobile", "orders");
        Assert.Equal((StateErrorKind.Invalid, "decidedBy"), Fail(() => Store.ApproveSubscription(s.Id, "")));
        Assert.Equal((StateErrorKind.Invalid, "decidedBy"), Fail(() => Store.ApproveSubscription(s.Id, new string('x', 1 << 20))));
        Assert.Equal(SubscriptionStatus.Pending, Store.GetSubscription(s.Id)!.Status);
        Assert.Equal((StateErrorKind.NotFound, "id"), Fail(() => Store.DeleteSubscription("sub_missing")));
    }

    private static (StateErrorKind, string) Fail(Action action)
    {
        StateException e = Assert.Throws<StateException>(action);
        return (e.Kind, e.Field);
    }

    [Fact]
    public void Lists_filter_by_consumer_and_status_and_page_in_creation_order()
    {
        var created = new List<Subscription>();
        for (int i = 0; i < 6; i++)
        {
            created.Add(Store.CreateSubscription(i % 2 == 0 ? "mobile" : "web", $"api-{i}"));
            _db.Time.Advance(TimeSpan.FromMilliseconds(1));
        }

        Store.ApproveSubscription(created[0].Id, "ops");
        Store.RejectSubscription(created[3].Id, "ops");

        Assert.Equal(created.Select(s => s.Id), Store.ListSubscriptions().Items.Select(s => s.Id));
        Assert.Equal(["api-0", "api-2", "api-4"], Store.ListSubscriptions(consumerId: "mobile").Items.Select(s => s.ApiId));
        Assert.Equal(["api-1", "api-2", "api-4", "api-5"], Store.ListSubscriptions(status: SubscriptionStatus.Pending).Items.Select(s => s.ApiId));
        Assert.Equal(["api-2", "api-4"], Store.ListSubscriptions("mobile", SubscriptionStatus.Pending).Items.Select(s => s.ApiId));

        Page<Subscription> first = Store.ListSubscriptions(status: SubscriptionStatus.Pending, limit: 3);
        Page<Subscription> second = Store.ListSubscriptions(status: SubscriptionStatus.Pending, limit: 3, after: first.Next);
        Assert.Equal(["api-1", "api-2", "api-4"], first.Items.Select(s => s.ApiId));
        Assert.Equal(["api-5"], second.Items.Select(s => s.ApiId));
        Assert.Null(second.Next);
    }
}

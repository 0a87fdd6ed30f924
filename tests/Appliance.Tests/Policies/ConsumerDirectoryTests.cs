using System.Text;
using Appliance.Policies;
using Appliance.Protocol.Headers;
using Appliance.Protocol.Http1;
using Appliance.Server;
using Appliance.State;
using Appliance.Tests.State;

namespace Appliance.Tests.Policies;

/// <summary>
/// The in-memory credentials against a real state database with a hand-moved clock: every store write is seen before
/// it returns, expiry is per request, and the apiKey policy's answers for each case.
/// </summary>
public sealed class ConsumerDirectoryTests : IDisposable
{
    private readonly StateTestDatabase _db = new();
    private readonly ConsumerDirectory _directory;
    private readonly PolicyEnvironment _environment;

    public ConsumerDirectoryTests()
    {
        _db.Store.CreateTenant("acme", "Acme");
        _db.Store.CreateTenant("beta", "Beta");
        _directory = new ConsumerDirectory(_db.Store, _db.Time);
        _environment = new PolicyEnvironment { Consumers = _directory, Time = _db.Time };
    }

    public void Dispose()
    {
        _directory.Dispose();
        _db.Dispose();
    }

    private static RequestContext Request(string? apiKey)
    {
        var context = new RequestContext(new ConnectionInfo { Id = 1, ListenerName = "t", RemoteEndPoint = null, LocalEndPoint = null });
        context.SetMethod(HttpMethod.Get, "GET"u8);
        if (apiKey is not null)
        {
            context.RequestHeaders.Add(KnownHeader.None, "x-api-key"u8, Encoding.UTF8.GetBytes(apiKey));
        }

        return context;
    }

    private PolicyVerdict Check(ApiKeyPolicy policy, RequestContext request)
    {
        ValueTask<PolicyVerdict> check = policy.CheckAsync(request, _environment);
        Assert.True(check.IsCompletedSuccessfully); // checked in memory: never waits
        return check.Result;
    }

    private static ApiKeyPolicy Policy(bool subscription = false, string? tenant = "acme") =>
        new(new ApiKeySettings(ApiKeySettings.DefaultHeader, Bearer: true, HideCredentials: true, subscription), "orders", tenant);

    [Fact]
    public void A_new_key_works_at_once_and_names_its_consumer()
    {
        Consumer consumer = _db.Store.CreateConsumer("acme", "app");
        CreatedApiKey key = _db.Store.CreateApiKey(consumer.Id);
        RequestContext request = Request(key.Secret);
        Assert.True(Check(Policy(), request).Passed);
        Assert.Equal(consumer.Id, request.ConsumerId);
        Assert.False(request.RequestHeaders.TryGetValue("x-api-key"u8, out _)); // hidden from the handler
        Assert.Equal(1, _directory.KeyCount);
    }

    [Fact]
    public void Expiry_is_checked_per_request_to_the_second()
    {
        Consumer consumer = _db.Store.CreateConsumer("acme", "app");
        CreatedApiKey key = _db.Store.CreateApiKey(consumer.Id, _db.Time.GetUtcNow().AddMinutes(10));
        Assert.True(Check(Policy(), Request(key.Secret)).Passed);
        _db.Time.Advance(TimeSpan.FromMinutes(10) - TimeSpan.FromSeconds(1));
        Assert.True(Check(Policy(), Request(key.Secret)).Passed);
        _db.Time.Advance(TimeSpan.FromSeconds(1));
        PolicyVerdict expired = Check(Policy(), Request(key.Secret));
        Assert.Equal(401, expired.Status);
        Assert.Equal("Bearer realm=\"acme\", error=\"invalid_token\"", Encoding.ASCII.GetString(expired.Challenge!));
    }

    [Fact]
    public void Revoking_a_key_or_deleting_its_consumer_drops_it_before_the_call_returns()
    {
        Consumer consumer = _db.Store.CreateConsumer("acme", "app");
        CreatedApiKey first = _db.Store.CreateApiKey(consumer.Id);
        CreatedApiKey second = _db.Store.CreateApiKey(consumer.Id);
        _db.Store.RevokeApiKey(first.Key.Id);
        Assert.Equal(401, Check(Policy(), Request(first.Secret)).Status);
        Assert.True(Check(Policy(), Request(second.Secret)).Passed);
        _db.Store.DeleteConsumer(consumer.Id);
        Assert.Equal(401, Check(Policy(), Request(second.Secret)).Status);
        Assert.Equal(0, _directory.KeyCount);
    }

    [Fact]
    public void Tenants_subscriptions_and_missing_keys_get_their_own_answers()
    {
        Consumer beta = _db.Store.CreateConsumer("beta", "other");
        CreatedApiKey betaKey = _db.Store.CreateApiKey(beta.Id);
        Assert.Equal(401, Check(Policy(), Request(betaKey.Secret)).Status);              // another tenant's route
        Assert.True(Check(Policy(tenant: null), Request(betaKey.Secret)).Passed);         // a route of no tenant

        PolicyVerdict missing = Check(Policy(), Request(null));
        Assert.Equal(401, missing.Status);
        Assert.Equal("Bearer realm=\"acme\"", Encoding.ASCII.GetString(missing.Challenge!));

        Consumer acme = _db.Store.CreateConsumer("acme", "app");
        CreatedApiKey key = _db.Store.CreateApiKey(acme.Id);
        Assert.Equal(403, Check(Policy(subscription: true), Request(key.Secret)).Status);
        Subscription sub = _db.Store.CreateSubscription(acme.Id, "orders");
        Assert.Equal(403, Check(Policy(subscription: true), Request(key.Secret)).Status); // pending
        _db.Store.ApproveSubscription(sub.Id, "test");
        Assert.True(Check(Policy(subscription: true), Request(key.Secret)).Passed);
        Assert.True(_directory.Current.IsSubscribed(acme.Id, "orders"));
        Assert.False(_directory.Current.IsSubscribed(acme.Id, "invoices"));
    }

    [Fact]
    public void A_copy_that_cannot_be_read_fails_closed_without_failing_the_write_and_recovers()
    {
        Consumer consumer = _db.Store.CreateConsumer("acme", "app");
        CreatedApiKey key = _db.Store.CreateApiKey(consumer.Id);
        var failures = new List<Exception>();
        _db.Store.HandlerFailed = failures.Add;
        _db.Sql("ALTER TABLE api_keys RENAME TO api_keys_away"); // from another connection, as a damaged file might
        Tenant tenant = _db.Store.CreateTenant("gamma", "Gamma"); // the write commits and returns; its refresh fails
        Assert.Equal("gamma", tenant.Id);
        Assert.Single(failures);
        Assert.Contains("api_keys", _directory.Problem);
        Assert.Equal(401, Check(Policy(), Request(key.Secret)).Status); // closed, not the old copy

        _db.Sql("ALTER TABLE api_keys_away RENAME TO api_keys");
        Assert.Equal(401, Check(Policy(), Request(key.Secret)).Status); // the next try is a second away
        _db.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(Check(Policy(), Request(key.Secret)).Passed);
        Assert.Null(_directory.Problem);
    }

    [Fact]
    public void Usage_writes_do_not_rebuild_the_copy()
    {
        Consumer consumer = _db.Store.CreateConsumer("acme", "app");
        ConsumerDirectory.Credentials before = _directory.Current;
        _db.Store.AddUsage(consumer.Id, "2025-11", 5);
        Assert.Same(before, _directory.Current);
        _db.Store.CreateApiKey(consumer.Id);
        Assert.NotSame(before, _directory.Current);
    }

    [Fact]
    public async Task Without_a_state_database_every_key_is_refused()
    {
        Consumer consumer = _db.Store.CreateConsumer("acme", "app");
        CreatedApiKey key = _db.Store.CreateApiKey(consumer.Id);
        Assert.Equal(401, (await Policy().CheckAsync(Request(key.Secret), PolicyEnvironment.Empty)).Status);
    }

    [Fact]
    public void Keys_made_while_requests_are_checked_are_all_seen()
    {
        Consumer consumer = _db.Store.CreateConsumer("acme", "app");
        using var stop = new CancellationTokenSource();
        CreatedApiKey first = _db.Store.CreateApiKey(consumer.Id);
        using var reading = new ManualResetEventSlim();
        long checks = 0;
        var reader = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                Assert.True(Check(Policy(), Request(first.Secret)).Passed);
                Interlocked.Increment(ref checks);
                reading.Set();
            }
        });
        reader.Start();
        reading.Wait();
        var made = new List<CreatedApiKey>();
        long before = Interlocked.Read(ref checks);
        for (int i = 0; i < 50; i++)
        {
            made.Add(_db.Store.CreateApiKey(consumer.Id));
        }

        Assert.True(SpinWait.SpinUntil(() => Interlocked.Read(ref checks) > before, TimeSpan.FromSeconds(10)), "the reader kept checking");
        stop.Cancel();
        reader.Join();
        Assert.All(made, k => Assert.True(Check(Policy(), Request(k.Secret)).Passed));
        Assert.Equal(51, _directory.KeyCount);
    }
}

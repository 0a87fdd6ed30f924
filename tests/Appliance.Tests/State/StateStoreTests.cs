using Appliance.State;
using Appliance.Tests.Support;
using Microsoft.Data.Sqlite;

namespace Appliance.Tests.State;

/// <summary>Opening, migrating and reopening the state database, and what it guarantees on disk.</summary>
public sealed class StateStoreTests : IDisposable
{
    private readonly StateTestDatabase _db = new();

    public void Dispose() => _db.Dispose();

    private static T Pragma<T>(string path, string pragma) => Scalar<T>(path, "PRAGMA " + pragma);

    /// <summary>Reads the file through a connection of its own, not the store's.</summary>
    private static T Scalar<T>(string path, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        return (T)command.ExecuteScalar()!;
    }

    private static List<string> Tables(string path)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name";
        using SqliteDataReader reader = command.ExecuteReader();
        var names = new List<string>();
        while (reader.Read())
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    [Fact]
    public void A_new_file_is_migrated_to_the_latest_schema()
    {
        Assert.Equal(StateStore.LatestSchemaVersion, _db.Store.SchemaVersion);
        Assert.Equal(StateStore.LatestSchemaVersion, (int)Pragma<long>(_db.Path, "user_version"));
        Assert.Equal(["api_keys", "consumers", "subscriptions", "tenant_domains", "tenants", "usage"], Tables(_db.Path));
        Assert.Equal("ok", _db.Store.CheckIntegrity());
    }

    [Fact]
    public void Journal_is_wal_and_the_file_is_private()
    {
        Assert.Equal("wal", Pragma<string>(_db.Path, "journal_mode"));
        _db.Store.CreateTenant("t", "T");
        Assert.True(File.Exists(_db.Path + "-wal"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_db.Path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_db.Path + "-wal"));
    }

    [Fact]
    public void Reopening_keeps_the_data_and_does_not_migrate_again()
    {
        _db.Store.CreateTenant("acme", "Acme", ["acme.example"]);
        _db.Store.CreateConsumer("acme", "Mobile", "mobile");
        StateStore reopened = _db.Reopen();
        Assert.Equal(StateStore.LatestSchemaVersion, reopened.SchemaVersion);
        Tenant tenant = reopened.GetTenant("acme")!;
        Assert.Equal("Acme", tenant.Name);
        Assert.Equal(["acme.example"], tenant.Domains);
        Assert.Equal("acme", reopened.GetConsumer("mobile")!.TenantId);
    }

    [Fact]
    public void Later_steps_apply_on_top_of_an_older_schema_and_keep_its_data()
    {
        string path = Path.Combine(_db.Directory, "steps.db");
        StateMigration one = new(1, "a", "CREATE TABLE a (x TEXT) STRICT; INSERT INTO a VALUES ('kept');");
        using (var v1 = new StateStore(path, null, [one]))
        {
            Assert.Equal(1, v1.SchemaVersion);
        }

        using (var v2 = new StateStore(path, null, [one, new(2, "b", "CREATE TABLE b (y TEXT) STRICT; INSERT INTO b SELECT x FROM a;")]))
        {
            Assert.Equal(2, v2.SchemaVersion);
        }

        Assert.Equal("kept", Scalar<string>(path, "SELECT y FROM b"));
        Assert.Equal(2L, Pragma<long>(path, "user_version"));
    }

    [Fact]
    public void A_failing_step_rolls_back_whole_and_leaves_the_version()
    {
        string path = Path.Combine(_db.Directory, "failing.db");
        StateMigration one = new(1, "a", "CREATE TABLE a (x TEXT) STRICT;");
        using (new StateStore(path, null, [one]))
        {
        }

        StateMigration broken = new(2, "half", "CREATE TABLE b (y TEXT) STRICT; INSERT INTO no_such_table VALUES (1);");
        IOException e = Assert.Throws<IOException>(() => new StateStore(path, null, [one, broken]));
        Assert.Contains("no_such_table", e.Message);
        Assert.Equal(1L, Pragma<long>(path, "user_version"));
        Assert.DoesNotContain("b", Tables(path)); // the step's first statement went with it
    }

    [Fact]
    public void A_database_from_a_later_release_is_refused()
    {
        _db.Store.Dispose();
        using (var connection = new SqliteConnection($"Data Source={_db.Path};Pooling=False"))
        {
            connection.Open();
            using SqliteCommand command = connection.CreateCommand();
            command.CommandText = $"PRAGMA user_version = {StateStore.LatestSchemaVersion + 1}";
            command.ExecuteNonQuery();
        }

        IOException e = Assert.Throws<IOException>(() => _db.Open());
        Assert.Contains("newer than this build knows", e.Message);
    }

    [Fact]
    public void A_file_that_is_not_a_database_is_refused_with_its_path()
    {
        string path = Path.Combine(_db.Directory, "garbage.db");
        File.WriteAllBytes(path, [.. Enumerable.Range(0, 8192).Select(i => (byte)(i * 7))]);
        IOException e = Assert.Throws<IOException>(() => new StateStore(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public async Task Openers_racing_on_a_new_file_apply_each_step_once()
    {
        string path = Path.Combine(_db.Directory, "race.db");
        StateStore[] stores = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => new StateStore(path))));
        try
        {
            Assert.All(stores, s => Assert.Equal(StateStore.LatestSchemaVersion, s.SchemaVersion));
            stores[0].CreateTenant("t", "T");
            Assert.Equal("T", stores[3].GetTenant("t")!.Name);
        }
        finally
        {
            Array.ForEach(stores, s => s.Dispose());
        }
    }

    [Fact]
    public void Creates_missing_folders()
    {
        string path = Path.Combine(_db.Directory, "a", "b", "state.db");
        using var store = new StateStore(path);
        Assert.True(File.Exists(path));
    }

    [Fact]
    public async Task Concurrent_callers_share_one_connection_safely()
    {
        _db.Store.CreateTenant("t", "T");
        _db.Store.CreateConsumer("t", "C", "c");
        const int Tasks = 8, Each = 40;
        await Task.WhenAll(Enumerable.Range(0, Tasks).Select(i => Task.Run(() =>
        {
            for (int n = 0; n < Each; n++)
            {
                _db.Store.AddUsage("c", "2025-11-29", 1, inputTokens: 2);
                _db.Store.CreateConsumer("t", $"C{i}-{n}");
                Assert.NotNull(_db.Store.GetTenant("t"));
            }
        })));

        UsageRecord usage = Assert.Single(_db.Store.GetUsage("c"));
        Assert.Equal(Tasks * Each, usage.Requests);
        Assert.Equal(2 * Tasks * Each, usage.InputTokens);
        Assert.Equal(1 + (Tasks * Each), CountConsumers(_db.Store, "t"));
    }

    private static int CountConsumers(StateStore store, string tenant)
    {
        int count = 0;
        string? after = null;
        do
        {
            Page<Consumer> page = store.ListConsumers(tenant, 1000, after);
            count += page.Items.Count;
            after = page.Next;
        }
        while (after is not null);
        return count;
    }

    [Fact]
    public void A_disposed_store_refuses_calls()
    {
        _db.Store.Dispose();
        Assert.Throws<ObjectDisposedException>(() => _db.Store.ListTenants());
        Assert.Throws<ObjectDisposedException>(() => _db.Store.VerifyApiKey("apk_" + new string('a', 32)));
    }

    [Fact]
    public async Task The_gateway_opens_state_db_in_its_state_directory_and_closes_it_at_stop()
    {
        TestServer server = await TestServer.StartAsync();
        StateStore store;
        try
        {
            store = server.Host.State;
            Assert.Equal(Path.Combine(server.Host.Snapshot.StateDirectory, "state.db"), store.Path);
            store.CreateTenant("live", "Live");
            Assert.Equal("wal", Pragma<string>(store.Path, "journal_mode"));
        }
        finally
        {
            await server.DisposeAsync();
        }

        Assert.Throws<ObjectDisposedException>(() => store.GetTenant("live"));
        Assert.False(File.Exists(store.Path + "-wal")); // closed cleanly: the WAL was checkpointed and removed
        using var reopened = new StateStore(store.Path);
        Assert.Equal("Live", reopened.GetTenant("live")!.Name);
    }
}

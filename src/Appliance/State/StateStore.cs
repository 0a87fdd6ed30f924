using Microsoft.Data.Sqlite;

namespace Appliance.State;

/// <summary>
/// The durable state that admin actions create at run time (tenants, consumers, API keys, subscriptions and
/// usage counters) in one SQLite file: <c>&lt;stateDirectory&gt;/state.db</c>, /var/lib/appliance/state.db when
/// installed. WAL journal with <c>synchronous=FULL</c>: a call that returned has its transaction on disk, and a
/// SIGKILL or power cut at any moment leaves the state before or after a transaction, never between.
/// <para>
/// Threading: one connection, every call under one lock. SQLite runs one writer at a time anyway, admin calls
/// are short and rare, and a single connection can never meet SQLITE_BUSY from itself. What runs per request
/// (key checks, usage counts) should cache and batch in memory above this store rather than call it each time.
/// One process owns the file; a second opener only waits on <c>busy_timeout</c>.
/// </para>
/// </summary>
public sealed partial class StateStore : IDisposable
{
    public const string FileName = "state.db";

    /// <summary>How long a statement waits for another connection's lock (a second process, sqlite3 in a shell).</summary>
    private const int BusyTimeoutMs = 5000;

    private readonly SqliteConnection _connection;
    private readonly TimeProvider _time;
    private readonly object _lock = new();
    private SqliteCommand? _verifyCommand;
    private bool _disposed;

    /// <summary>Opens (creating it and its folder if needed) and migrates the database at <paramref name="path"/>.</summary>
    /// <exception cref="IOException">The file cannot be opened, is not a database, or has a newer schema than this build knows.</exception>
    public StateStore(string path, TimeProvider? time = null)
        : this(path, time, StateSchema.Migrations)
    {
    }

    internal StateStore(string path, TimeProvider? time, IReadOnlyList<StateMigration> migrations)
    {
        Path = System.IO.Path.GetFullPath(path);
        _time = time ?? TimeProvider.System;
        CreateFile(Path);
        string connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false, // one long-lived connection; Dispose must really close the file
        }.ToString();
        try
        {
            _connection = new SqliteConnection(connectionString);
        }
        catch (TypeInitializationException e) when (e.GetBaseException() is DllNotFoundException)
        {
            // SQLite itself is libe_sqlite3.so, published beside the appliance binary; without it nothing can start.
            throw new IOException($"state database {Path}: cannot load SQLite's native library libe_sqlite3.so, which must be installed beside the appliance binary in {AppContext.BaseDirectory}", e);
        }

        try
        {
            _connection.Open();
            Execute(null, $"PRAGMA busy_timeout = {BusyTimeoutMs}");
            string mode = Convert.ToString(Scalar(null, "PRAGMA journal_mode = WAL"), System.Globalization.CultureInfo.InvariantCulture) ?? "";
            if (!mode.Equals("wal", StringComparison.OrdinalIgnoreCase))
            {
                throw new IOException($"state database {Path}: cannot switch to WAL journal mode (got '{mode}')");
            }

            Execute(null, "PRAGMA synchronous = FULL"); // fsync the WAL at every commit: durable, not just consistent
            Execute(null, "PRAGMA foreign_keys = ON");
            Execute(null, "PRAGMA trusted_schema = OFF");
            SchemaVersion = Migrate(migrations);
        }
        catch (SqliteException e)
        {
            _connection.Dispose();
            throw new IOException($"state database {Path}: {e.Message}", e);
        }
        catch
        {
            _connection.Dispose();
            throw;
        }
    }

    /// <summary>The database file (absolute).</summary>
    public string Path { get; }

    /// <summary>The last migration step applied (<c>PRAGMA user_version</c>).</summary>
    public int SchemaVersion { get; }

    /// <summary>The schema version this build writes.</summary>
    public static int LatestSchemaVersion => StateSchema.Latest;

    /// <summary>SQLite's own consistency check: "ok", or the problems it found.</summary>
    public string CheckIntegrity() => Read(tx => string.Join('\n', Query(tx, "PRAGMA integrity_check", r => r.GetString(0))));

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _verifyCommand?.Dispose();
            _connection.Dispose(); // the last connection to close checkpoints the WAL into the main file
        }
    }

    /// <summary>
    /// The file is made before SQLite opens it so it is private from the first byte (it holds key hashes);
    /// SQLite gives the -wal and -shm files the same mode.
    /// </summary>
    private static void CreateFile(string path)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        if (File.Exists(path))
        {
            return;
        }

        try
        {
            using var _ = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
        }
        catch (IOException) when (File.Exists(path))
        {
            // another opener made it first
        }
    }

    private int Migrate(IReadOnlyList<StateMigration> migrations)
    {
        for (int i = 0; i < migrations.Count; i++)
        {
            if (migrations[i].Version != i + 1)
            {
                throw new InvalidOperationException($"state schema step {i} has version {migrations[i].Version}; steps are numbered 1, 2, 3...");
            }
        }

        int latest = migrations.Count;
        int current = UserVersion(null);
        if (current > latest)
        {
            throw new IOException($"state database {Path} has schema version {current}, newer than this build knows ({latest}); it was written by a later release");
        }

        foreach (StateMigration step in migrations)
        {
            // BEGIN IMMEDIATE, then read the version again: two processes opening a new file at once apply each step once.
            using SqliteTransaction tx = _connection.BeginTransaction(deferred: false);
            current = UserVersion(tx);
            if (current >= step.Version)
            {
                continue;
            }

            Execute(tx, step.Sql);
            Execute(tx, $"PRAGMA user_version = {step.Version}"); // in the same transaction as the step
            tx.Commit();
            current = step.Version;
        }

        return current;
    }

    private int UserVersion(SqliteTransaction? tx) => Convert.ToInt32(Scalar(tx, "PRAGMA user_version"), System.Globalization.CultureInfo.InvariantCulture);

    // ---------------- plumbing ----------------

    /// <summary>
    /// Raised after every committed write with what it changed, on the writer's thread and outside the store's lock,
    /// before the write returns: what keeps an in-memory copy (the gateway's credentials) current by the time an
    /// admin call answers. A handler that throws is logged through <see cref="HandlerFailed"/> and never fails the
    /// write, which has committed.
    /// </summary>
    public event Action<StateChange>? Changed;

    /// <summary>Told when a <see cref="Changed"/> handler threw (the host logs it).</summary>
    public Action<Exception>? HandlerFailed { get; set; }

    /// <summary>Runs <paramref name="body"/> in one write transaction (BEGIN IMMEDIATE); an exception rolls everything back.</summary>
    private T Write<T>(StateChange change, Func<SqliteTransaction, T> body)
    {
        T result;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            try
            {
                using SqliteTransaction tx = _connection.BeginTransaction(deferred: false);
                result = body(tx);
                tx.Commit();
            }
            catch (SqliteException e) when (e.SqliteErrorCode == 19 /* SQLITE_CONSTRAINT */)
            {
                // The explicit checks in each operation come first; this only catches what they could not name.
                throw StateException.Conflict("", e.Message);
            }
        }

        if (Changed is { } handlers)
        {
            foreach (Action<StateChange> handler in handlers.GetInvocationList().Cast<Action<StateChange>>())
            {
                try
                {
                    handler(change);
                }
                catch (Exception e)
                {
                    HandlerFailed?.Invoke(e);
                }
            }
        }

        return result;
    }

    /// <summary>Runs <paramref name="body"/> in a read transaction, so multi-statement reads see one snapshot.</summary>
    private T Read<T>(Func<SqliteTransaction, T> body)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            using SqliteTransaction tx = _connection.BeginTransaction(deferred: true);
            T result = body(tx);
            tx.Commit();
            return result;
        }
    }

    private SqliteCommand Command(SqliteTransaction? tx, string sql, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        SqliteCommand command = _connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql;
        foreach ((string name, object? value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }

    private int Execute(SqliteTransaction? tx, string sql, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        using SqliteCommand command = Command(tx, sql, parameters);
        return command.ExecuteNonQuery();
    }

    private object? Scalar(SqliteTransaction? tx, string sql, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        using SqliteCommand command = Command(tx, sql, parameters);
        object? value = command.ExecuteScalar();
        return value is DBNull ? null : value;
    }

    private bool Exists(SqliteTransaction tx, string sql, params ReadOnlySpan<(string Name, object? Value)> parameters) =>
        Scalar(tx, sql, parameters) is not null;

    private List<T> Query<T>(SqliteTransaction? tx, string sql, Func<SqliteDataReader, T> map, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        using SqliteCommand command = Command(tx, sql, parameters);
        using SqliteDataReader reader = command.ExecuteReader();
        var rows = new List<T>();
        while (reader.Read())
        {
            rows.Add(map(reader));
        }

        return rows;
    }

    /// <summary>Keyset paging: the query asked for limit + 1 rows; the extra one only says another page exists.</summary>
    private static Page<T> ToPage<T>(List<T> rows, int limit, Func<T, string> id)
    {
        if (rows.Count <= limit)
        {
            return new Page<T>(rows, null);
        }

        rows.RemoveAt(rows.Count - 1);
        return new Page<T>(rows, id(rows[^1]));
    }

    /// <summary>Now, to the millisecond the database keeps, so a returned record equals the stored one.</summary>
    private DateTimeOffset Now() => DateTimeOffset.FromUnixTimeMilliseconds(_time.GetUtcNow().ToUnixTimeMilliseconds());

    private static long Ms(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    private static DateTimeOffset Time(SqliteDataReader reader, int ordinal) => DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(ordinal));

    private static DateTimeOffset? OptionalTime(SqliteDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(ordinal));
}

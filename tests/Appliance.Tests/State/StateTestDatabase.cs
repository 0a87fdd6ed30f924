using Appliance.State;

namespace Appliance.Tests.State;

/// <summary>A state database in its own temp folder (deleted at the end) with a clock the test moves by hand.</summary>
public sealed class StateTestDatabase : IDisposable
{
    public StateTestDatabase()
    {
        Directory = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "appliance-state-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
        Store = Open();
    }

    public string Directory { get; }

    public string Path => System.IO.Path.Combine(Directory, StateStore.FileName);

    public ManualTime Time { get; } = new(new DateTimeOffset(2025, 11, 29, 12, 0, 0, TimeSpan.Zero));

    public StateStore Store { get; private set; }

    public StateStore Open() => new(Path, Time);

    /// <summary>Closes the store and opens the same file again, as a restart would.</summary>
    public StateStore Reopen()
    {
        Store.Dispose();
        Store = Open();
        return Store;
    }

    /// <summary>Runs a statement on a connection of its own, as another process (or a damaged file) might.</summary>
    public void Sql(string statement)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path};Pooling=False");
        connection.Open();
        using Microsoft.Data.Sqlite.SqliteCommand command = connection.CreateCommand();
        command.CommandText = statement;
        command.ExecuteNonQuery();
    }

    /// <summary>Every byte SQLite keeps for this database: the main file and, while open, its WAL.</summary>
    public byte[] AllFileBytes() =>
        [.. System.IO.Directory.EnumerateFiles(Directory, StateStore.FileName + "*").SelectMany(File.ReadAllBytes)];

    public void Dispose()
    {
        Store.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}

/// <summary>A clock that moves only when told to, so expiry is tested without sleeping.</summary>
public sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    /// <summary>Timestamps move with the clock too (in 100 ns ticks), for code that measures intervals.</summary>
    public override long GetTimestamp() => _now.UtcTicks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public void Advance(TimeSpan by) => _now += by;
}

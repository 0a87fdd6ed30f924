using System.Globalization;
using Appliance.Admin;

namespace Appliance.Config;

/// <summary>
/// The last N applied configs as numbered files (000042.json) in the state folder, for listing and rollback.
/// Each is written atomically; the highest number is the running revision after a restart.
/// </summary>
public sealed class ConfigRevisionStore
{
    public const int Keep = 50;

    private readonly string _directory;
    private readonly object _lock = new();

    public ConfigRevisionStore(string directory)
    {
        _directory = directory;
        Directory.CreateDirectory(directory);
    }

    /// <summary>Stores a config as the next revision; returns its number.</summary>
    public int Record(ApplianceConfig config, string source)
    {
        lock (_lock)
        {
            int next = Numbers().DefaultIfEmpty(0).Max() + 1;
            AtomicFile.Write(Path.Combine(_directory, $"{next:D6}.json"), ConfigLoader.Serialize(config));
            AtomicFile.Write(Path.Combine(_directory, $"{next:D6}.source"), source);
            foreach (int old in Numbers().OrderDescending().Skip(Keep))
            {
                File.Delete(Path.Combine(_directory, $"{old:D6}.json"));
                File.Delete(Path.Combine(_directory, $"{old:D6}.source"));
            }

            return next;
        }
    }

    public IReadOnlyList<ConfigRevision> List()
    {
        lock (_lock)
        {
            return [.. Numbers().Order().Select(n =>
            {
                string json = Path.Combine(_directory, $"{n:D6}.json");
                string sourceFile = Path.Combine(_directory, $"{n:D6}.source");
                string source = File.Exists(sourceFile) ? File.ReadAllText(sourceFile) : "";
                return new ConfigRevision(n, File.GetLastWriteTimeUtc(json), source, json);
            })];
        }
    }

    public ApplianceConfig? Load(int revision)
    {
        string path = Path.Combine(_directory, $"{revision:D6}.json");
        return File.Exists(path) ? ConfigLoader.LoadFile(path) : null;
    }

    private IEnumerable<int> Numbers() =>
        Directory.EnumerateFiles(_directory, "*.json")
            .Select(f => int.TryParse(Path.GetFileNameWithoutExtension(f), NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : 0)
            .Where(n => n > 0);
}

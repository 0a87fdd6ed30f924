namespace Appliance.Server;

/// <summary>Path parameters captured by a route template, as ranges of the normalised path (no strings on the hot path).</summary>
public sealed class RouteValues
{
    public const int MaxValues = 16;

    private readonly (int Start, int Length)[] _ranges = new (int, int)[MaxValues];
    private string[] _names = [];

    public int Count { get; private set; }

    public void Clear()
    {
        Count = 0;
        _names = [];
    }

    public void Set(string[] names, int index, int start, int length)
    {
        _names = names;
        _ranges[index] = (start, length);
        if (index >= Count)
        {
            Count = index + 1;
        }
    }

    public string Name(int index) => _names[index];

    public (int Start, int Length) Range(int index) => _ranges[index];

    public int IndexOf(string name)
    {
        for (int i = 0; i < Count; i++)
        {
            if (string.Equals(_names[i], name, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }
}

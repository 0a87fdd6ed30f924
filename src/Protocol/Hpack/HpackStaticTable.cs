using System.Text;

namespace Appliance.Protocol.Hpack;

/// <summary>
/// The 61 predefined entries of RFC 7541 Appendix A, indexed from 1 (index 0 is not used, §2.3.3), with
/// allocation-free name and name+value lookups for the encoder.
/// </summary>
public static class HpackStaticTable
{
    public const int Count = 61;

    // Indexes the engine refers to directly.
    public const int Authority = 1;
    public const int MethodGet = 2;
    public const int MethodPost = 3;
    public const int PathSlash = 4;
    public const int SchemeHttp = 6;
    public const int SchemeHttps = 7;
    public const int Status200 = 8;
    public const int Status204 = 9;
    public const int Status206 = 10;
    public const int Status304 = 11;
    public const int Status400 = 12;
    public const int Status404 = 13;
    public const int Status500 = 14;
    public const int ContentLength = 28;

    private static readonly (string Name, string Value)[] s_entries =
    [
        (":authority", ""),
        (":method", "GET"),
        (":method", "POST"),
        (":path", "/"),
        (":path", "/index.html"),
        (":scheme", "http"),
        (":scheme", "https"),
        (":status", "200"),
        (":status", "204"),
        (":status", "206"),
        (":status", "304"),
        (":status", "400"),
        (":status", "404"),
        (":status", "500"),
        ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"),
        ("accept-language", ""),
        ("accept-ranges", ""),
        ("accept", ""),
        ("access-control-allow-origin", ""),
        ("age", ""),
        ("allow", ""),
        ("authorization", ""),
        ("cache-control", ""),
        ("content-disposition", ""),
        ("content-encoding", ""),
        ("content-language", ""),
        ("content-length", ""),
        ("content-location", ""),
        ("content-range", ""),
        ("content-type", ""),
        ("cookie", ""),
        ("date", ""),
        ("etag", ""),
        ("expect", ""),
        ("expires", ""),
        ("from", ""),
        ("host", ""),
        ("if-match", ""),
        ("if-modified-since", ""),
        ("if-none-match", ""),
        ("if-range", ""),
        ("if-unmodified-since", ""),
        ("last-modified", ""),
        ("link", ""),
        ("location", ""),
        ("max-forwards", ""),
        ("proxy-authenticate", ""),
        ("proxy-authorization", ""),
        ("range", ""),
        ("referer", ""),
        ("refresh", ""),
        ("retry-after", ""),
        ("server", ""),
        ("set-cookie", ""),
        ("strict-transport-security", ""),
        ("transfer-encoding", ""),
        ("user-agent", ""),
        ("vary", ""),
        ("via", ""),
        ("www-authenticate", ""),
    ];

    // Slot 0 is unused so that an HPACK index addresses the arrays directly.
    private static readonly byte[][] s_names = Build(static e => e.Name);
    private static readonly byte[][] s_values = Build(static e => e.Value);

    // s_byLength[n] lists the indexes whose name is n bytes long, lowest first, one per distinct name: a name lookup
    // compares against at most a handful of candidates.
    private static readonly byte[][] s_byLength = BuildLengthBuckets();

    public static ReadOnlySpan<byte> Name(int index) => s_names[CheckIndex(index)];

    public static ReadOnlySpan<byte> Value(int index) => s_values[CheckIndex(index)];

    /// <summary>The lowest index whose name is <paramref name="name"/> (exact bytes: HTTP/2 names are lowercase),
    /// or 0.</summary>
    public static int FindName(ReadOnlySpan<byte> name)
    {
        if ((uint)name.Length >= (uint)s_byLength.Length)
        {
            return 0;
        }

        foreach (byte index in s_byLength[name.Length])
        {
            byte[] candidate = s_names[index];
            if (candidate[0] == name[0] && name.SequenceEqual(candidate))
            {
                return index;
            }
        }

        return 0;
    }

    /// <summary>
    /// The index of the entry <paramref name="name"/>: <paramref name="value"/> (<paramref name="fullMatch"/> true), else
    /// the lowest index with that name, else 0.
    /// </summary>
    public static int Find(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, out bool fullMatch)
    {
        fullMatch = false;
        int first = FindName(name);
        if (first == 0)
        {
            return 0;
        }

        // Entries with the same name are adjacent in Appendix A.
        byte[] entryName = s_names[first];
        for (int i = first; i <= Count && ReferenceEquals(s_names[i], entryName); i++)
        {
            if (value.SequenceEqual(s_values[i]))
            {
                fullMatch = true;
                return i;
            }
        }

        return first;
    }

    private static int CheckIndex(int index)
    {
        if ((uint)(index - 1) >= Count)
        {
            throw new ArgumentOutOfRangeException(nameof(index));
        }

        return index;
    }

    private static byte[][] Build(Func<(string Name, string Value), string> select)
    {
        var result = new byte[Count + 1][];
        result[0] = [];
        var byText = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        for (int i = 0; i < Count; i++)
        {
            string text = select(s_entries[i]);

            // One array per distinct text, so entries sharing a name share the array (Find relies on it).
            if (!byText.TryGetValue(text, out byte[]? bytes))
            {
                bytes = Encoding.ASCII.GetBytes(text);
                byText.Add(text, bytes);
            }

            result[i + 1] = bytes;
        }

        return result;
    }

    private static byte[][] BuildLengthBuckets()
    {
        int longest = 0;
        foreach ((string name, _) in s_entries)
        {
            longest = Math.Max(longest, name.Length);
        }

        var buckets = new List<byte>[longest + 1];
        for (int i = 0; i < buckets.Length; i++)
        {
            buckets[i] = [];
        }

        for (int index = 1; index <= Count; index++)
        {
            if (index == 1 || !ReferenceEquals(s_names[index], s_names[index - 1]))
            {
                buckets[s_names[index].Length].Add((byte)index);
            }
        }

        var result = new byte[longest + 1][];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = [.. buckets[i]];
        }

        return result;
    }
}

using System.Globalization;

namespace Appliance.Config;

/// <summary>Sizes in the config: a number of bytes, or with a binary suffix ("64KiB", "64MiB", "1GiB"; "K", "M", "G" too).</summary>
public static class ByteSize
{
    public static bool TryParse(string? text, out long value)
    {
        value = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        ReadOnlySpan<char> s = text.AsSpan().Trim();
        long scale = 1;
        if (s.EndsWith("iB", StringComparison.Ordinal))
        {
            s = s[..^2];
        }
        else if (s.EndsWith('B'))
        {
            s = s[..^1];
        }

        if (!s.IsEmpty)
        {
            switch (s[^1])
            {
                case 'K' or 'k': scale = 1L << 10; s = s[..^1]; break;
                case 'M': scale = 1L << 20; s = s[..^1]; break;
                case 'G': scale = 1L << 30; s = s[..^1]; break;
            }
        }

        if (!long.TryParse(s.TrimEnd(), NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n > long.MaxValue / scale)
        {
            return false;
        }

        value = n * scale;
        return true;
    }

    /// <summary>The shortest exact form: "64MiB", "1536KiB", "1000".</summary>
    public static string Format(long value) =>
        value != 0 && value % (1L << 30) == 0 ? $"{value >> 30}GiB"
        : value != 0 && value % (1L << 20) == 0 ? $"{value >> 20}MiB"
        : value != 0 && value % (1L << 10) == 0 ? $"{value >> 10}KiB"
        : value.ToString(CultureInfo.InvariantCulture);
}

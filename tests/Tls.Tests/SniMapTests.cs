namespace Appliance.Tls.Tests;

public sealed class SniMapTests
{
    private static SniMap<string> Build(string? defaultValue, params string[] names) =>
        SniMap<string>.Build(names.Select(n => KeyValuePair.Create(n, "value of " + n)), defaultValue);

    private static string? Resolve(SniMap<string> map, string? name) =>
        map.TryResolve(name, out string? value) ? value : null;

    [Fact]
    public void Resolves_exact_name()
    {
        SniMap<string> map = Build(null, "a.example.com", "b.example.com");

        Assert.Equal("value of a.example.com", Resolve(map, "a.example.com"));
        Assert.Equal("value of b.example.com", Resolve(map, "b.example.com"));
        Assert.Null(Resolve(map, "c.example.com"));
    }

    [Theory]
    [InlineData("A.Example.COM")]
    [InlineData("a.example.com")]
    [InlineData("A.EXAMPLE.COM")]
    public void Exact_match_ignores_case(string query)
    {
        SniMap<string> map = Build(null, "a.EXAMPLE.com");

        Assert.Equal("value of a.EXAMPLE.com", Resolve(map, query));
    }

    [Fact]
    public void Trailing_dot_is_ignored_in_names_and_queries()
    {
        SniMap<string> map = Build(null, "a.example.com.", "*.wild.example.com.");

        Assert.Equal("value of a.example.com.", Resolve(map, "a.example.com"));
        Assert.Equal("value of a.example.com.", Resolve(map, "a.example.com."));
        Assert.Equal("value of *.wild.example.com.", Resolve(map, "x.wild.example.com."));
        Assert.Equal(["a.example.com"], map.ExactNames);
        Assert.Equal(["*.wild.example.com"], map.WildcardNames);
    }

    [Theory]
    [InlineData("a.example.com")]
    [InlineData("WWW.example.com")]
    [InlineData("x-1.example.com")]
    public void Wildcard_matches_one_label(string query)
    {
        SniMap<string> map = Build(null, "*.example.com");

        Assert.Equal("value of *.example.com", Resolve(map, query));
    }

    [Fact]
    public void Wildcard_does_not_match_the_apex()
    {
        SniMap<string> map = Build(null, "*.example.com");

        Assert.Null(Resolve(map, "example.com"));
        Assert.Null(Resolve(map, "com"));
    }

    [Fact]
    public void Wildcard_does_not_match_two_labels_deep()
    {
        SniMap<string> map = Build(null, "*.example.com");

        Assert.Null(Resolve(map, "a.b.example.com"));
    }

    [Fact]
    public void Wildcard_does_not_match_an_empty_first_label()
    {
        SniMap<string> map = Build(null, "*.example.com");

        Assert.Null(Resolve(map, ".example.com"));
    }

    [Fact]
    public void Exact_name_wins_over_wildcard()
    {
        SniMap<string> map = Build(null, "*.example.com", "api.example.com");

        Assert.Equal("value of api.example.com", Resolve(map, "api.example.com"));
        Assert.Equal("value of *.example.com", Resolve(map, "web.example.com"));
    }

    [Fact]
    public void Unknown_name_gets_the_default()
    {
        SniMap<string> map = Build("fallback", "a.example.com", "*.example.com");

        Assert.True(map.TryResolve("other.test", out string? value));
        Assert.Equal("fallback", value);
        Assert.Equal("fallback", Resolve(map, "a.b.example.com"));
        Assert.Equal("fallback", Resolve(map, "example.com"));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData(".")]
    public void Missing_server_name_gets_the_default(string? query)
    {
        SniMap<string> map = Build("fallback", "a.example.com");

        Assert.Equal("fallback", Resolve(map, query));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("unknown.example.com")]
    public void Without_a_default_unmatched_names_are_not_resolved(string? query)
    {
        SniMap<string> map = Build(null, "a.example.com");

        Assert.False(map.TryResolve(query, out string? value));
        Assert.Null(value);
    }

    [Fact]
    public void International_names_match_in_unicode_and_punycode()
    {
        // SslStream hands the server name over decoded to Unicode, clients send A-labels.
        SniMap<string> map = Build(null, "bücher.example", "*.xn--caf-dma.example");

        Assert.Equal("value of bücher.example", Resolve(map, "xn--bcher-kva.example"));
        Assert.Equal("value of bücher.example", Resolve(map, "bücher.example"));
        Assert.Equal("value of bücher.example", Resolve(map, "BÜCHER.example"));
        Assert.Equal("value of *.xn--caf-dma.example", Resolve(map, "menu.café.example"));
        Assert.Equal(["xn--bcher-kva.example"], map.ExactNames);
    }

    [Theory]
    [InlineData("*")]
    [InlineData("*.")]
    [InlineData("*.com")]
    [InlineData("a.*.com")]
    [InlineData("f*o.example.com")]
    [InlineData("*.*.example.com")]
    [InlineData("**.example.com")]
    [InlineData("*example.com")]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("exa mple.com")]
    [InlineData("a..example.com")]
    [InlineData(".example.com")]
    [InlineData("-a.example.com")]
    [InlineData("a-.example.com")]
    [InlineData("a/b.example.com")]
    [InlineData("a.example.com..")]
    public void Rejects_invalid_patterns_naming_the_entry(string pattern)
    {
        var error = Assert.Throws<ArgumentException>(() => Build(null, "ok.example.com", pattern));

        Assert.Contains($"entry #2 '{pattern}'", error.Message);
    }

    [Fact]
    public void Rejects_labels_and_names_that_are_too_long()
    {
        Assert.Throws<ArgumentException>(() => Build(null, new string('a', 64) + ".example.com"));
        Assert.Throws<ArgumentException>(() => Build(null, string.Join('.', Enumerable.Repeat(new string('a', 60), 5))));
        Assert.Equal(1, Build(null, new string('a', 63) + ".example.com").Count);
    }

    [Fact]
    public void Rejects_duplicate_exact_names_naming_both_entries()
    {
        var error = Assert.Throws<ArgumentException>(() => Build(null, "A.example.com", "b.example.com", "a.example.com."));

        Assert.Contains("'a.example.com' is given twice", error.Message);
        Assert.Contains("entry #1 'A.example.com' (value of A.example.com)", error.Message);
        Assert.Contains("entry #3 'a.example.com.' (value of a.example.com.)", error.Message);
    }

    [Fact]
    public void Rejects_duplicate_wildcards_naming_both_entries()
    {
        var error = Assert.Throws<ArgumentException>(() => Build(null, "*.Example.com", "*.example.com"));

        Assert.Contains("'*.example.com' is given twice", error.Message);
        Assert.Contains("entry #1 '*.Example.com'", error.Message);
        Assert.Contains("entry #2 '*.example.com'", error.Message);
    }

    [Fact]
    public void Same_suffix_may_be_both_an_exact_name_and_a_wildcard()
    {
        SniMap<string> map = Build(null, "example.com", "*.example.com");

        Assert.Equal("value of example.com", Resolve(map, "example.com"));
        Assert.Equal("value of *.example.com", Resolve(map, "www.example.com"));
        Assert.Equal(2, map.Count);
    }

    [Fact]
    public void Builds_and_resolves_ten_thousand_entries()
    {
        var entries = new List<KeyValuePair<string, string>>();
        for (int i = 0; i < 5_000; i++)
        {
            entries.Add(KeyValuePair.Create($"host{i}.tenant{i % 97}.example.com", $"exact {i}"));
            entries.Add(KeyValuePair.Create($"*.zone{i}.example.net", $"wildcard {i}"));
        }

        SniMap<string> map = SniMap<string>.Build(entries, "default");

        Assert.Equal(10_000, map.Count);
        for (int i = 0; i < 5_000; i++)
        {
            Assert.Equal($"exact {i}", Resolve(map, $"HOST{i}.tenant{i % 97}.example.com"));
            Assert.Equal($"wildcard {i}", Resolve(map, $"www.zone{i}.example.net"));
            Assert.Equal("default", Resolve(map, $"zone{i}.example.net"));
        }
    }

    [Fact]
    public void Exact_wildcard_and_default_lookups_do_not_allocate()
    {
        SniMap<string> map = Build("fallback", "a.example.com", "*.wild.example.com");
        string[] queries = ["a.example.com", "A.EXAMPLE.COM.", "x.wild.example.com", "X.Wild.Example.Com", "unknown.test", ""];
        foreach (string query in queries)
        {
            Resolve(map, query);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        int found = 0;
        for (int i = 0; i < 1_000; i++)
        {
            foreach (string query in queries)
            {
                found += map.TryResolve(query, out _) ? 1 : 0;
            }
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(6_000, found);
        Assert.Equal(0, allocated);
    }

    [Theory]
    [InlineData("Example.COM.", "example.com")]
    [InlineData("*.Example.com", "*.example.com")]
    [InlineData("*.bücher.example", "*.xn--bcher-kva.example")]
    [InlineData("under_score.example.com", "under_score.example.com")]
    [InlineData("localhost", "localhost")]
    public void Normalizes_patterns(string pattern, string expected)
    {
        Assert.True(ServerNamePattern.TryNormalize(pattern, out string? normalized, out string? reason), reason);
        Assert.Equal(expected, normalized);
    }
}

using System.Text;
using Appliance.Routing;
using Appliance.Server;

namespace Appliance.Tests.Routing;

public sealed class PathTemplateTests
{
    private static PathTemplate Parse(string t) => PathTemplate.TryParse(t, out string? e) ?? throw new InvalidOperationException(e);

    [Theory]
    [InlineData("/", "/", true)]
    [InlineData("/", "/a", false)]
    [InlineData("/health", "/health", true)]
    [InlineData("/health", "/health/", false)]
    [InlineData("/health", "/Health", false)]
    [InlineData("/users/{id}", "/users/42", true)]
    [InlineData("/users/{id}", "/users/", false)]
    [InlineData("/users/{id}", "/users/42/x", false)]
    [InlineData("/static/{**rest}", "/static", true)]
    [InlineData("/static/{**rest}", "/static/", true)]
    [InlineData("/static/{**rest}", "/static/a/b/c", true)]
    [InlineData("/static/{**rest}", "/staticx", false)]
    public void Template_matches(string template, string path, bool expected) =>
        Assert.Equal(expected, Parse(template).TryMatch(Encoding.UTF8.GetBytes(path), null));

    [Theory]
    [InlineData("/api", "/api", true)]
    [InlineData("/api", "/api/", true)]
    [InlineData("/api", "/api/x/y", true)]
    [InlineData("/api", "/apix", false)]
    [InlineData("/api/", "/api", true)]
    [InlineData("/", "/anything", true)]
    public void Prefix_matches_on_segment_boundaries(string prefix, string path, bool expected) =>
        Assert.Equal(expected, PathTemplate.TryParsePrefix(prefix, out _)!.TryMatch(Encoding.UTF8.GetBytes(path), null));

    [Fact]
    public void Parameters_are_captured_as_ranges()
    {
        PathTemplate t = Parse("/users/{id}/files/{**rest}");
        var values = new RouteValues();
        byte[] path = Encoding.UTF8.GetBytes("/users/42/files/a/b.txt");
        Assert.True(t.TryMatch(path, values));
        (int s, int l) = values.Range(values.IndexOf("id"));
        Assert.Equal("42", Encoding.UTF8.GetString(path, s, l));
        (s, l) = values.Range(values.IndexOf("rest"));
        Assert.Equal("a/b.txt", Encoding.UTF8.GetString(path, s, l));
    }

    [Theory]
    [InlineData("nope")]
    [InlineData("/{a")]
    [InlineData("/{}")]
    [InlineData("/{a}/{a}")]
    [InlineData("/{**a}/b")]
    [InlineData("/x{a}")]
    [InlineData("/../a")]
    public void Invalid_templates_are_rejected_with_a_reason(string template)
    {
        Assert.Null(PathTemplate.TryParse(template, out string? error));
        Assert.False(string.IsNullOrEmpty(error));
    }
}

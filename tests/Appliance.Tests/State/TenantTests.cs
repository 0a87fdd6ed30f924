using Appliance.State;

namespace Appliance.Tests.State;

/// <summary>Tenant CRUD, paging, and what hostile input does (refused with a field, or stored verbatim).</summary>
public sealed class TenantTests : IDisposable
{
    private readonly StateTestDatabase _db = new();

    private StateStore Store => _db.Store;

    public void Dispose() => _db.Dispose();

    private static StateException Refused(StateErrorKind kind, string field, Action action)
    {
        StateException e = Assert.Throws<StateException>(action);
        Assert.Equal(kind, e.Kind);
        Assert.Equal(field, e.Field);
        return e;
    }

    [Fact]
    public void Create_get_update_delete()
    {
        Tenant created = Store.CreateTenant("acme", "Acme Corp", ["API.Acme.example", "*.apps.acme.example"]);
        Assert.Equal(["api.acme.example", "*.apps.acme.example"], created.Domains); // lower-cased, order kept
        Assert.Equal(_db.Time.GetUtcNow(), created.CreatedAt);

        Tenant got = Store.GetTenant("acme")!;
        Assert.Equal(created with { Domains = [] }, got with { Domains = [] });
        Assert.Equal(created.Domains, got.Domains);

        _db.Time.Advance(TimeSpan.FromMinutes(5));
        Tenant renamed = Store.UpdateTenant("acme", name: "Acme Inc");
        Assert.Equal("Acme Inc", renamed.Name);
        Assert.Equal(created.Domains, renamed.Domains); // null leaves domains as they are
        Assert.Equal(created.CreatedAt, renamed.CreatedAt);
        Assert.Equal(created.CreatedAt + TimeSpan.FromMinutes(5), renamed.UpdatedAt);

        Tenant moved = Store.UpdateTenant("acme", domains: ["new.acme.example"]);
        Assert.Equal("Acme Inc", moved.Name);
        Assert.Equal(["new.acme.example"], moved.Domains);
        Assert.Null(Store.FindTenantByDomain("api.acme.example"));

        Store.DeleteTenant("acme");
        Assert.Null(Store.GetTenant("acme"));
        Assert.Null(Store.FindTenantByDomain("new.acme.example"));
    }

    [Fact]
    public void Missing_tenants_are_not_found()
    {
        Assert.Null(Store.GetTenant("nope"));
        Refused(StateErrorKind.NotFound, "id", () => Store.UpdateTenant("nope", "x"));
        Refused(StateErrorKind.NotFound, "id", () => Store.DeleteTenant("nope"));
    }

    [Fact]
    public void Ids_and_domains_are_unique()
    {
        Store.CreateTenant("a", "A", ["shared.example"]);
        Refused(StateErrorKind.Conflict, "id", () => Store.CreateTenant("a", "again"));
        StateException e = Refused(StateErrorKind.Conflict, "domains[1]", () => Store.CreateTenant("b", "B", ["b.example", "SHARED.example"]));
        Assert.Contains("tenant 'a'", e.Message);
        Assert.Null(Store.GetTenant("b")); // the refused create left nothing behind
        Assert.Null(Store.FindTenantByDomain("b.example"));
        Refused(StateErrorKind.Invalid, "domains[1]", () => Store.CreateTenant("c", "C", ["c.example", "c.example"]));
        Store.UpdateTenant("a", domains: ["shared.example", "more.example"]); // keeping its own domain is fine
    }

    [Fact]
    public void Finds_the_tenant_of_a_host_exact_first_then_wildcard()
    {
        Store.CreateTenant("wild", "W", ["*.example.com"]);
        Store.CreateTenant("exact", "E", ["api.example.com"]);
        Assert.Equal("exact", Store.FindTenantByDomain("API.example.com"));
        Assert.Equal("wild", Store.FindTenantByDomain("other.example.com"));
        Assert.Null(Store.FindTenantByDomain("example.com"));
        Assert.Null(Store.FindTenantByDomain("a.b.example.com")); // a wildcard covers one label
    }

    [Fact]
    public void A_tenant_with_consumers_cannot_be_deleted()
    {
        Store.CreateTenant("t", "T");
        Store.CreateConsumer("t", "C", "c");
        StateException e = Refused(StateErrorKind.Conflict, "id", () => Store.DeleteTenant("t"));
        Assert.Contains("1 consumer", e.Message);
        Store.DeleteConsumer("c");
        Store.DeleteTenant("t");
    }

    [Theory]
    [InlineData("")]
    [InlineData("-leading-dash")]
    [InlineData(".hidden")]
    [InlineData("..")]
    [InlineData("has space")]
    [InlineData("slash/inside")]
    [InlineData("quote'); DROP TABLE tenants;--")]
    [InlineData("naïve")]
    [InlineData("nul\0byte")]
    public void Malformed_ids_are_refused(string id)
    {
        Refused(StateErrorKind.Invalid, "id", () => Store.CreateTenant(id, "x"));
        Refused(StateErrorKind.Invalid, "id", () => Store.GetTenant(id));
        Assert.Empty(Store.ListTenants().Items);
    }

    [Fact]
    public void Id_length_is_capped()
    {
        Store.CreateTenant(new string('a', 64), "max");
        Refused(StateErrorKind.Invalid, "id", () => Store.CreateTenant(new string('a', 65), "too long"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("line\nbreak")]
    [InlineData("bell\u0007")]
    [InlineData("c1\u0085control")]
    [InlineData("separator\u2028")]
    public void Malformed_names_are_refused(string name)
    {
        Refused(StateErrorKind.Invalid, "name", () => Store.CreateTenant("t", name));
        Assert.Null(Store.GetTenant("t"));
    }

    [Fact]
    public void Names_with_unpaired_surrogates_are_refused()
    {
        // Built in code: attribute arguments are stored as UTF-8, which would already have replaced them.
        foreach (string name in new[] { "lone " + '\uD800' + " high", "lone " + '\uDC00' + " low", "reversed " + '\uDC00' + '\uD800', "ends high " + '\uD83D' })
        {
            Assert.Contains("surrogate", Refused(StateErrorKind.Invalid, "name", () => Store.CreateTenant("t", name)).Message);
        }

        Store.CreateTenant("t", "paired " + '\uD83D' + '\uDE80'); // 🚀
        Assert.Equal("paired 🚀", Store.GetTenant("t")!.Name);
    }

    [Fact]
    public void A_one_megabyte_name_is_refused_and_200_characters_are_fine()
    {
        StateException e = Refused(StateErrorKind.Invalid, "name", () => Store.CreateTenant("t", new string('x', 1 << 20)));
        Assert.Contains("at most 200", e.Message);
        Store.CreateTenant("t", new string('x', 200));
        Refused(StateErrorKind.Invalid, "name", () => Store.UpdateTenant("t", new string('x', 1 << 20)));
        Assert.Equal(200, Store.GetTenant("t")!.Name.Length);
    }

    [Theory]
    [InlineData("Robert'); DROP TABLE tenants;--")]
    [InlineData("\" OR 1=1 --")]
    [InlineData("$id")]
    [InlineData("Müller & Söhne 株式会社 🚀👩‍👩‍👧")]
    [InlineData("\u202Eevil")]
    [InlineData("replacement \uFFFD is a real character")]
    public void Hostile_and_unicode_names_are_stored_verbatim(string name)
    {
        Store.CreateTenant("t", name);
        Store.CreateTenant("u", "other");
        StateStore reopened = _db.Reopen();
        Assert.Equal(name, reopened.GetTenant("t")!.Name);
        Assert.Equal(2, reopened.ListTenants().Items.Count);
        Assert.Equal("ok", reopened.CheckIntegrity());
    }

    [Theory]
    [InlineData("exa mple.com")]
    [InlineData("-bad.example")]
    [InlineData("bad-.example")]
    [InlineData("double..dot")]
    [InlineData("trailing.")]
    [InlineData("*")]
    [InlineData("*.")]
    [InlineData("a.*.example")]
    [InlineData("bücher.example")]
    [InlineData("x'; DROP TABLE tenant_domains;--")]
    public void Malformed_domains_are_refused_by_index(string domain)
    {
        Refused(StateErrorKind.Invalid, "domains[1]", () => Store.CreateTenant("t", "T", ["ok.example", domain]));
        Assert.Null(Store.GetTenant("t"));
    }

    [Fact]
    public void Domain_counts_and_lengths_are_capped()
    {
        Refused(StateErrorKind.Invalid, "domains", () => Store.CreateTenant("t", "T", [.. Enumerable.Range(0, 101).Select(i => $"d{i}.example")]));
        Refused(StateErrorKind.Invalid, "domains[0]", () => Store.CreateTenant("t", "T", [new string('a', 64) + ".example"]));
        Refused(StateErrorKind.Invalid, "domains[0]", () => Store.CreateTenant("t", "T", [string.Join('.', Enumerable.Repeat(new string('a', 63), 5))]));
        Store.CreateTenant("t", "T", [.. Enumerable.Range(0, 100).Select(i => $"d{i}.example")]);
        Assert.Equal(100, Store.GetTenant("t")!.Domains.Count);
    }

    [Fact]
    public void Pages_walk_every_tenant_once_in_id_order()
    {
        string[] ids = [.. Enumerable.Range(0, 25).Select(i => $"t{i:D2}")];
        foreach (string id in ids.Reverse())
        {
            Store.CreateTenant(id, id.ToUpperInvariant(), [$"{id}.example"]);
        }

        var seen = new List<string>();
        var sizes = new List<int>();
        string? after = null;
        do
        {
            Page<Tenant> page = Store.ListTenants(limit: 10, after: after);
            sizes.Add(page.Items.Count);
            seen.AddRange(page.Items.Select(t => t.Id));
            Assert.All(page.Items, t => Assert.Equal([$"{t.Id}.example"], t.Domains));
            after = page.Next;
        }
        while (after is not null);

        Assert.Equal([10, 10, 5], sizes);
        Assert.Equal(ids, seen);
        Assert.Null(Store.ListTenants(limit: 25).Next); // an exact fit has no next page
        Assert.Equal(["t11", "t12"], Store.ListTenants(2, after: "t105").Items.Select(t => t.Id)); // a cursor need not exist
        Assert.Empty(Store.ListTenants(after: "zzz").Items);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(1001)]
    public void Page_size_is_bounded(int limit) => Refused(StateErrorKind.Invalid, "limit", () => Store.ListTenants(limit));

    [Fact]
    public void A_malformed_cursor_is_refused() => Refused(StateErrorKind.Invalid, "after", () => Store.ListTenants(after: "' OR ''='"));

    [Fact]
    public void Errors_map_to_the_admin_api_error_shape()
    {
        StateException e = Refused(StateErrorKind.Invalid, "domains[0]", () => Store.CreateTenant("t", "T", ["bad domain"]));
        Assert.Equal("domains[0]", e.ToError().Path);
        Assert.Equal(e.Detail, e.ToError().Message);
        Assert.StartsWith("domains[0]: ", e.Message);
    }
}

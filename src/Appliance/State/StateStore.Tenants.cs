using Microsoft.Data.Sqlite;

namespace Appliance.State;

/// <summary>Tenants and the domains they own.</summary>
public sealed partial class StateStore
{
    public Tenant CreateTenant(string id, string name, IReadOnlyList<string>? domains = null)
    {
        StateValidation.Id(id, "id");
        StateValidation.Text(name, "name");
        string[] hosts = StateValidation.Domains(domains);
        return Write(StateChange.Tenants, tx =>
        {
            if (Exists(tx, "SELECT 1 FROM tenants WHERE id = $id", ("$id", id)))
            {
                throw StateException.Conflict("id", $"tenant '{id}' already exists");
            }

            DateTimeOffset now = Now();
            Execute(tx, "INSERT INTO tenants (id, name, created_at, updated_at) VALUES ($id, $name, $now, $now)",
                ("$id", id), ("$name", name), ("$now", Ms(now)));
            SetDomains(tx, id, hosts);
            return new Tenant(id, name, hosts, now, now);
        });
    }

    public Tenant? GetTenant(string id)
    {
        StateValidation.Id(id, "id");
        return Read(tx => LoadTenant(tx, id));
    }

    /// <summary>Tenants in id order, <paramref name="limit"/> at a time, starting after the id <paramref name="after"/>.</summary>
    public Page<Tenant> ListTenants(int limit = 100, string? after = null)
    {
        StateValidation.Limit(limit);
        StateValidation.After(after);
        return Read(tx =>
        {
            List<Tenant> rows = Query(tx, """
                SELECT id, name, created_at, updated_at FROM tenants
                WHERE $after IS NULL OR id > $after ORDER BY id LIMIT $n
                """, r => new Tenant(r.GetString(0), r.GetString(1), [], Time(r, 2), Time(r, 3)),
                ("$after", after), ("$n", limit + 1));
            for (int i = 0; i < rows.Count; i++)
            {
                rows[i] = rows[i] with { Domains = LoadDomains(tx, rows[i].Id) };
            }

            return ToPage(rows, limit, t => t.Id);
        });
    }

    /// <summary>Changes what is given (null leaves a field as it is); <paramref name="domains"/> replaces the whole list.</summary>
    public Tenant UpdateTenant(string id, string? name = null, IReadOnlyList<string>? domains = null)
    {
        StateValidation.Id(id, "id");
        if (name is not null)
        {
            StateValidation.Text(name, "name");
        }

        string[]? hosts = domains is null ? null : StateValidation.Domains(domains);
        return Write(StateChange.Tenants, tx =>
        {
            if (!Exists(tx, "SELECT 1 FROM tenants WHERE id = $id", ("$id", id)))
            {
                throw StateException.NotFound("id", $"no tenant '{id}'");
            }

            Execute(tx, "UPDATE tenants SET name = coalesce($name, name), updated_at = $now WHERE id = $id",
                ("$id", id), ("$name", name), ("$now", Ms(Now())));
            if (hosts is not null)
            {
                SetDomains(tx, id, hosts);
            }

            return LoadTenant(tx, id)!;
        });
    }

    /// <summary>Deletes a tenant that has no consumers left (their keys must not disappear as a side effect).</summary>
    public void DeleteTenant(string id)
    {
        StateValidation.Id(id, "id");
        Write(StateChange.Tenants, tx =>
        {
            if (!Exists(tx, "SELECT 1 FROM tenants WHERE id = $id", ("$id", id)))
            {
                throw StateException.NotFound("id", $"no tenant '{id}'");
            }

            long consumers = (long)Scalar(tx, "SELECT count(*) FROM consumers WHERE tenant_id = $id", ("$id", id))!;
            if (consumers > 0)
            {
                throw StateException.Conflict("id", $"tenant '{id}' still has {consumers} consumer(s); delete them first");
            }

            return Execute(tx, "DELETE FROM tenants WHERE id = $id", ("$id", id));
        });
    }

    /// <summary>The tenant that owns a host name: its exact entry, else the <c>*.</c> entry for its parent.</summary>
    public string? FindTenantByDomain(string host)
    {
        string exact = host.ToLowerInvariant();
        int dot = exact.IndexOf('.', StringComparison.Ordinal);
        string? wildcard = dot > 0 ? "*" + exact[dot..] : null;
        return Read(tx => Scalar(tx, "SELECT tenant_id FROM tenant_domains WHERE domain = $exact OR domain = $wildcard ORDER BY domain = $exact DESC LIMIT 1",
            ("$exact", exact), ("$wildcard", wildcard)) as string);
    }

    private Tenant? LoadTenant(SqliteTransaction tx, string id)
    {
        Tenant? tenant = Query(tx, "SELECT id, name, created_at, updated_at FROM tenants WHERE id = $id",
            r => new Tenant(r.GetString(0), r.GetString(1), [], Time(r, 2), Time(r, 3)), ("$id", id)).FirstOrDefault();
        return tenant is null ? null : tenant with { Domains = LoadDomains(tx, id) };
    }

    private string[] LoadDomains(SqliteTransaction tx, string tenantId) =>
        [.. Query(tx, "SELECT domain FROM tenant_domains WHERE tenant_id = $id ORDER BY position", r => r.GetString(0), ("$id", tenantId))];

    private void SetDomains(SqliteTransaction tx, string tenantId, string[] domains)
    {
        for (int i = 0; i < domains.Length; i++)
        {
            if (Scalar(tx, "SELECT tenant_id FROM tenant_domains WHERE domain = $d", ("$d", domains[i])) is string owner && owner != tenantId)
            {
                throw StateException.Conflict($"domains[{i}]", $"'{domains[i]}' already belongs to tenant '{owner}'");
            }
        }

        Execute(tx, "DELETE FROM tenant_domains WHERE tenant_id = $id", ("$id", tenantId));
        for (int i = 0; i < domains.Length; i++)
        {
            Execute(tx, "INSERT INTO tenant_domains (domain, tenant_id, position) VALUES ($d, $id, $i)",
                ("$d", domains[i]), ("$id", tenantId), ("$i", i));
        }
    }
}

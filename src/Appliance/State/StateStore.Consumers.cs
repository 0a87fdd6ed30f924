using Microsoft.Data.Sqlite;

namespace Appliance.State;

/// <summary>Consumers: ids are unique across tenants, since keys, subscriptions and usage name only the consumer.</summary>
public sealed partial class StateStore
{
    private const string ConsumerColumns = "id, tenant_id, name, created_at, updated_at";

    /// <summary>Creates a consumer of <paramref name="tenantId"/>; without an <paramref name="id"/> one is made (<c>con_…</c>).</summary>
    public Consumer CreateConsumer(string tenantId, string name, string? id = null)
    {
        StateValidation.Id(tenantId, "tenantId");
        StateValidation.Text(name, "name");
        if (id is not null)
        {
            StateValidation.Id(id, "id");
        }

        return Write(StateChange.Consumers, tx =>
        {
            RequireTenant(tx, tenantId);
            DateTimeOffset now = Now();
            string consumerId = id ?? StateIds.New("con_", now);
            if (Exists(tx, "SELECT 1 FROM consumers WHERE id = $id", ("$id", consumerId)))
            {
                throw StateException.Conflict("id", $"consumer '{consumerId}' already exists");
            }

            Execute(tx, "INSERT INTO consumers (id, tenant_id, name, created_at, updated_at) VALUES ($id, $tenant, $name, $now, $now)",
                ("$id", consumerId), ("$tenant", tenantId), ("$name", name), ("$now", Ms(now)));
            return new Consumer(consumerId, tenantId, name, now, now);
        });
    }

    public Consumer? GetConsumer(string id)
    {
        StateValidation.Id(id, "id");
        return Read(tx => LoadConsumer(tx, id));
    }

    /// <summary>A tenant's consumers in id order, <paramref name="limit"/> at a time, starting after the id <paramref name="after"/>.</summary>
    public Page<Consumer> ListConsumers(string tenantId, int limit = 100, string? after = null)
    {
        StateValidation.Id(tenantId, "tenantId");
        StateValidation.Limit(limit);
        StateValidation.After(after);
        return Read(tx =>
        {
            RequireTenant(tx, tenantId);
            List<Consumer> rows = Query(tx, $"""
                SELECT {ConsumerColumns} FROM consumers
                WHERE tenant_id = $tenant AND ($after IS NULL OR id > $after) ORDER BY id LIMIT $n
                """, MapConsumer, ("$tenant", tenantId), ("$after", after), ("$n", limit + 1));
            return ToPage(rows, limit, c => c.Id);
        });
    }

    public Consumer UpdateConsumer(string id, string name)
    {
        StateValidation.Id(id, "id");
        StateValidation.Text(name, "name");
        return Write(StateChange.Consumers, tx =>
        {
            if (Execute(tx, "UPDATE consumers SET name = $name, updated_at = $now WHERE id = $id", ("$id", id), ("$name", name), ("$now", Ms(Now()))) == 0)
            {
                throw StateException.NotFound("id", $"no consumer '{id}'");
            }

            return LoadConsumer(tx, id)!;
        });
    }

    /// <summary>Deletes a consumer with its API keys, subscriptions and usage counters.</summary>
    public void DeleteConsumer(string id)
    {
        StateValidation.Id(id, "id");
        Write(StateChange.Consumers, tx =>
        {
            if (Execute(tx, "DELETE FROM consumers WHERE id = $id", ("$id", id)) == 0)
            {
                throw StateException.NotFound("id", $"no consumer '{id}'");
            }

            return 0;
        });
    }

    private Consumer? LoadConsumer(SqliteTransaction tx, string id) =>
        Query(tx, $"SELECT {ConsumerColumns} FROM consumers WHERE id = $id", MapConsumer, ("$id", id)).FirstOrDefault();

    private static Consumer MapConsumer(SqliteDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), Time(r, 3), Time(r, 4));

    private void RequireTenant(SqliteTransaction tx, string tenantId)
    {
        if (!Exists(tx, "SELECT 1 FROM tenants WHERE id = $id", ("$id", tenantId)))
        {
            throw StateException.NotFound("tenantId", $"no tenant '{tenantId}'");
        }
    }

    private void RequireConsumer(SqliteTransaction tx, string consumerId)
    {
        if (!Exists(tx, "SELECT 1 FROM consumers WHERE id = $id", ("$id", consumerId)))
        {
            throw StateException.NotFound("consumerId", $"no consumer '{consumerId}'");
        }
    }
}

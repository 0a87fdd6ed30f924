namespace Appliance.State;

/// <summary>One schema step: applied once, in its own transaction together with <c>PRAGMA user_version = Version</c>.</summary>
internal sealed record StateMigration(int Version, string Description, string Sql);

/// <summary>
/// The schema as an ordered list of steps; the database's <c>PRAGMA user_version</c> is the last step applied.
/// Steps are never edited once released, only appended: a database written by any earlier release migrates
/// forward, one written by a later release is refused rather than guessed at. A step that must rebuild a table
/// follows SQLite's "other kinds of table schema changes" procedure (new table, copy, drop, rename) inside its
/// transaction, since <c>PRAGMA foreign_keys</c> cannot change within one.
/// </summary>
internal static class StateSchema
{
    public static readonly IReadOnlyList<StateMigration> Migrations =
    [
        new(1, "tenants, consumers, API keys, subscriptions, usage", """
            CREATE TABLE tenants (
                id          TEXT PRIMARY KEY NOT NULL,
                name        TEXT NOT NULL,
                created_at  INTEGER NOT NULL,
                updated_at  INTEGER NOT NULL
            ) STRICT;

            -- A table rather than a JSON column: the primary key makes a domain belong to one tenant at most,
            -- and "which tenant serves this host" is an index lookup.
            CREATE TABLE tenant_domains (
                domain      TEXT PRIMARY KEY NOT NULL,
                tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                position    INTEGER NOT NULL
            ) STRICT;
            CREATE INDEX tenant_domains_by_tenant ON tenant_domains (tenant_id, position);

            -- RESTRICT: deleting a tenant must not silently delete its consumers and their keys.
            CREATE TABLE consumers (
                id          TEXT PRIMARY KEY NOT NULL,
                tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
                name        TEXT NOT NULL,
                created_at  INTEGER NOT NULL,
                updated_at  INTEGER NOT NULL
            ) STRICT;
            CREATE INDEX consumers_by_tenant ON consumers (tenant_id, id);

            -- Only SHA-256 of the secret; prefix is not unique (it only narrows the lookup).
            CREATE TABLE api_keys (
                id          TEXT PRIMARY KEY NOT NULL,
                consumer_id TEXT NOT NULL REFERENCES consumers (id) ON DELETE CASCADE,
                prefix      TEXT NOT NULL,
                hash        BLOB NOT NULL CHECK (length(hash) = 32),
                created_at  INTEGER NOT NULL,
                expires_at  INTEGER,
                revoked_at  INTEGER
            ) STRICT;
            CREATE INDEX api_keys_by_prefix ON api_keys (prefix);
            CREATE INDEX api_keys_by_consumer ON api_keys (consumer_id, id);

            CREATE TABLE subscriptions (
                id          TEXT PRIMARY KEY NOT NULL,
                consumer_id TEXT NOT NULL REFERENCES consumers (id) ON DELETE CASCADE,
                api_id      TEXT NOT NULL,
                status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
                created_at  INTEGER NOT NULL,
                decided_at  INTEGER,
                decided_by  TEXT,
                UNIQUE (consumer_id, api_id)
            ) STRICT;
            CREATE INDEX subscriptions_by_status ON subscriptions (status, id);

            CREATE TABLE usage (
                consumer_id   TEXT NOT NULL REFERENCES consumers (id) ON DELETE CASCADE,
                period        TEXT NOT NULL,
                requests      INTEGER NOT NULL DEFAULT 0,
                input_tokens  INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (consumer_id, period)
            ) STRICT, WITHOUT ROWID;
            """),
    ];

    public static int Latest => Migrations[^1].Version;
}

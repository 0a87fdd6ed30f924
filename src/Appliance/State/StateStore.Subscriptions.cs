using Microsoft.Data.Sqlite;

namespace Appliance.State;

/// <summary>Subscriptions: one per consumer and API; pending until an operator approves or rejects it, once.</summary>
public sealed partial class StateStore
{
    private const string SubscriptionColumns = "id, consumer_id, api_id, status, created_at, decided_at, decided_by";

    /// <summary>Asks for access to <paramref name="apiId"/> (a route id); starts pending.</summary>
    public Subscription CreateSubscription(string consumerId, string apiId)
    {
        StateValidation.Id(consumerId, "consumerId");
        StateValidation.Id(apiId, "apiId");
        return Write(StateChange.Subscriptions, tx =>
        {
            RequireConsumer(tx, consumerId);
            Subscription? existing = Query(tx, $"SELECT {SubscriptionColumns} FROM subscriptions WHERE consumer_id = $consumer AND api_id = $api",
                MapSubscription, ("$consumer", consumerId), ("$api", apiId)).FirstOrDefault();
            if (existing is not null)
            {
                throw StateException.Conflict("apiId", $"consumer '{consumerId}' already has a subscription to '{apiId}' ({existing.Id}, {Status(existing.Status)})");
            }

            DateTimeOffset now = Now();
            var subscription = new Subscription(StateIds.New("sub_", now), consumerId, apiId, SubscriptionStatus.Pending, now, null, null);
            Execute(tx, "INSERT INTO subscriptions (id, consumer_id, api_id, status, created_at) VALUES ($id, $consumer, $api, 'pending', $now)",
                ("$id", subscription.Id), ("$consumer", consumerId), ("$api", apiId), ("$now", Ms(now)));
            return subscription;
        });
    }

    public Subscription? GetSubscription(string id)
    {
        StateValidation.Id(id, "id");
        return Read(tx => LoadSubscription(tx, id));
    }

    /// <summary>Subscriptions in creation order, optionally of one consumer and/or in one status (the approval queue).</summary>
    public Page<Subscription> ListSubscriptions(string? consumerId = null, SubscriptionStatus? status = null, int limit = 100, string? after = null)
    {
        if (consumerId is not null)
        {
            StateValidation.Id(consumerId, "consumerId");
        }

        StateValidation.Limit(limit);
        StateValidation.After(after);
        return Read(tx =>
        {
            if (consumerId is not null)
            {
                RequireConsumer(tx, consumerId);
            }

            List<Subscription> rows = Query(tx, $"""
                SELECT {SubscriptionColumns} FROM subscriptions
                WHERE ($consumer IS NULL OR consumer_id = $consumer) AND ($status IS NULL OR status = $status)
                  AND ($after IS NULL OR id > $after)
                ORDER BY id LIMIT $n
                """, MapSubscription, ("$consumer", consumerId), ("$status", status is { } s ? Status(s) : null), ("$after", after), ("$n", limit + 1));
            return ToPage(rows, limit, x => x.Id);
        });
    }

    public Subscription ApproveSubscription(string id, string decidedBy) => Decide(id, SubscriptionStatus.Approved, decidedBy);

    public Subscription RejectSubscription(string id, string decidedBy) => Decide(id, SubscriptionStatus.Rejected, decidedBy);

    /// <summary>Removes a subscription whatever its status (to withdraw access, or to let a rejected consumer ask again).</summary>
    public void DeleteSubscription(string id)
    {
        StateValidation.Id(id, "id");
        Write(StateChange.Subscriptions, tx => Execute(tx, "DELETE FROM subscriptions WHERE id = $id", ("$id", id)) == 0
            ? throw StateException.NotFound("id", $"no subscription '{id}'")
            : 0);
    }

    /// <summary>True when the consumer holds an approved subscription to the API.</summary>
    public bool IsSubscribed(string consumerId, string apiId) =>
        Read(tx => Exists(tx, "SELECT 1 FROM subscriptions WHERE consumer_id = $consumer AND api_id = $api AND status = 'approved'",
            ("$consumer", consumerId), ("$api", apiId)));

    private Subscription Decide(string id, SubscriptionStatus decision, string decidedBy)
    {
        StateValidation.Id(id, "id");
        StateValidation.Text(decidedBy, "decidedBy");
        return Write(StateChange.Subscriptions, tx =>
        {
            Subscription current = LoadSubscription(tx, id) ?? throw StateException.NotFound("id", $"no subscription '{id}'");
            if (current.Status != SubscriptionStatus.Pending)
            {
                throw StateException.Conflict("id", $"subscription '{id}' was already {Status(current.Status)} by {current.DecidedBy}");
            }

            DateTimeOffset now = Now();
            Execute(tx, "UPDATE subscriptions SET status = $status, decided_at = $now, decided_by = $by WHERE id = $id",
                ("$id", id), ("$status", Status(decision)), ("$now", Ms(now)), ("$by", decidedBy));
            return current with { Status = decision, DecidedAt = now, DecidedBy = decidedBy };
        });
    }

    private Subscription? LoadSubscription(SqliteTransaction tx, string id) =>
        Query(tx, $"SELECT {SubscriptionColumns} FROM subscriptions WHERE id = $id", MapSubscription, ("$id", id)).FirstOrDefault();

    private static Subscription MapSubscription(SqliteDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.GetString(2), ParseStatus(r.GetString(3)), Time(r, 4), OptionalTime(r, 5), r.IsDBNull(6) ? null : r.GetString(6));

    private static string Status(SubscriptionStatus status) => status switch
    {
        SubscriptionStatus.Pending => "pending",
        SubscriptionStatus.Approved => "approved",
        SubscriptionStatus.Rejected => "rejected",
        _ => throw new ArgumentOutOfRangeException(nameof(status)),
    };

    private static SubscriptionStatus ParseStatus(string status) => status switch
    {
        "pending" => SubscriptionStatus.Pending,
        "approved" => SubscriptionStatus.Approved,
        "rejected" => SubscriptionStatus.Rejected,
        _ => throw new InvalidDataException($"unknown subscription status '{status}'"),
    };
}

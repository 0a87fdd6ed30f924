// Writes to a state database in a tight loop until it is killed, printing each write only after the call that
// committed it returned: "ack <kind> <id> ." (the final " ." marks a whole line). The parent SIGKILLs it at a
// random moment, then checks that the file is intact and that every acknowledged write is in it.
using Appliance.State;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: StateCrashWriter DB_PATH ROUND");
    return 2;
}

using var store = new StateStore(args[0]);
string round = args[1];
if (store.GetTenant("crash") is null)
{
    store.CreateTenant("crash", "Crash test");
}

void Ack(string kind, string id) => Console.Out.Write($"ack {kind} {id} .\n"); // one write(2) per line

// One transaction bigger than SQLite's page cache (2 MB): it spills pages before its commit, so a kill in the
// middle of it finds half a transaction on disk unless the journal keeps it out of the database.
if (store.GetConsumer("bulk") is null)
{
    store.CreateConsumer("crash", "Bulk", "bulk");
}

DateTimeOffset start = new(2015, 1, 1, 0, 0, 0, TimeSpan.Zero);
UsageIncrement[] bulk = [.. Enumerable.Range(0, 100_000).Select(h => new UsageIncrement("bulk", UsagePeriod.Hour(start.AddHours(h)), 1))];

Console.Out.Write("ready\n");
for (long n = 0; ; n++)
{
    Consumer consumer = store.CreateConsumer("crash", $"round {round} consumer {n}", $"r{round}-c{n}");
    Ack("consumer", consumer.Id);
    CreatedApiKey key = store.CreateApiKey(consumer.Id);
    Ack("key", key.Key.Id);
    Subscription subscription = store.CreateSubscription(consumer.Id, "api-" + (n % 7));
    store.ApproveSubscription(subscription.Id, "crash test");
    Ack("approved", subscription.Id);
    store.AddUsage([new UsageIncrement(consumer.Id, "2025-11-29", 1, n), new UsageIncrement(consumer.Id, "2025-11-30", 2)]);
    Ack("usage", consumer.Id);
    // A bigger transaction: rewrite the tenant's whole domain list.
    store.UpdateTenant("crash", domains: [.. Enumerable.Range(0, 50).Select(i => $"d{i}-{n % 3}.r{round}.example")]);
    Ack("domains", $"{n % 3}");
    store.AddUsage(bulk);
    Ack("bulk", $"{n}");
}

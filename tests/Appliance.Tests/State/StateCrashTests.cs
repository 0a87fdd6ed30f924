using System.Diagnostics;
using System.Text.RegularExpressions;
using Appliance.State;

namespace Appliance.Tests.State;

/// <summary>
/// SIGKILL at any moment never corrupts the state database and never loses a write whose call had returned:
/// a child process (tests/StateCrashWriter) writes in a tight loop and prints each committed write; it is
/// killed with SIGKILL mid-burst, then the file is reopened (WAL recovery), checked with integrity_check, and
/// every acknowledged write is looked up. Three rounds on the same file, so each round also starts on a
/// database that a killed process left behind.
/// </summary>
public sealed partial class StateCrashTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "appliance-state-crash-" + Guid.NewGuid().ToString("N"));

    public StateCrashTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [GeneratedRegex(@"^ack (\w+) (\S+) \.$")]
    private static partial Regex AckLine();

    [Fact]
    public async Task Sigkill_mid_burst_leaves_an_intact_database_holding_every_acknowledged_write()
    {
        string db = Path.Combine(_dir, "state.db");
        int bulkAcked = 0;
        for (int round = 0; round < 3; round++)
        {
            // Round 0 is killed at an arbitrary point of the loop, rounds 1 and 2 half-way and late into a bulk transaction.
            List<(string Kind, string Id)> acked = await RunAndKillAsync(db, round, killAfterAcks: 20 + (7 * round), intoBulk: round switch { 1 => 0.5, 2 => 0.85, _ => null });
            Assert.True(File.Exists(db + "-wal"), "killed processes leave their WAL behind for the next open to recover");

            using var store = new StateStore(db);
            Assert.Equal("ok", store.CheckIntegrity());
            foreach ((string kind, string id) in acked)
            {
                switch (kind)
                {
                    case "consumer":
                        Assert.NotNull(store.GetConsumer(id));
                        break;
                    case "key":
                        Assert.NotNull(store.GetApiKey(id));
                        break;
                    case "approved":
                        Assert.Equal(SubscriptionStatus.Approved, store.GetSubscription(id)?.Status);
                        break;
                    case "usage":
                        Assert.Equal([1L, 2L], store.GetUsage(id).Select(u => u.Requests));
                        break;
                    case "domains":
                        break; // checked below: whichever update won, it is whole
                    case "bulk":
                        bulkAcked++;
                        break;
                    default:
                        Assert.Fail($"unexpected ack kind {kind}");
                        break;
                }
            }

            // The tenant's domain list is rewritten in one transaction of 50 rows: never a mix of two versions.
            Tenant tenant = store.GetTenant("crash")!;
            Assert.Equal(50, tenant.Domains.Count);
            Assert.Single(tenant.Domains.Select(d => d[d.IndexOf('-', StringComparison.Ordinal)..]).Distinct());

            // The bulk batch adds 1 to 100 000 rows in one transaction: every row holds the same count, at least
            // the acknowledged batches and at most one more per round (committed, killed before its ack).
            IReadOnlyList<UsageRecord> bulk = store.GetUsage("bulk");
            if (bulkAcked > 0 || bulk.Count > 0)
            {
                Assert.Equal(100_000, bulk.Count);
                long count = bulk[0].Requests;
                Assert.All(bulk, u => Assert.Equal(count, u.Requests));
                Assert.InRange(count, bulkAcked, bulkAcked + round + 1);
            }
        }
    }

    /// <summary>
    /// Runs the writer until <paramref name="killAfterAcks"/> writes are acknowledged, then SIGKILLs it: at once
    /// when <paramref name="intoBulk"/> is null, else that fraction of the way into its next bulk transaction
    /// (timed from the bulk transactions already seen), where a spilled half-transaction would be on disk.
    /// </summary>
    private static async Task<List<(string Kind, string Id)>> RunAndKillAsync(string db, int round, int killAfterAcks, double? intoBulk)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "StateCrashWriter.dll"));
        psi.ArgumentList.Add(db);
        psi.ArgumentList.Add(round.ToString(System.Globalization.CultureInfo.InvariantCulture));

        using Process child = Process.Start(psi)!;
        Task<string> stderr = child.StandardError.ReadToEndAsync();
        var acked = new List<(string, string)>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var clock = Stopwatch.StartNew();
        TimeSpan bulkStarted = TimeSpan.Zero, bulkTook = TimeSpan.Zero;
        bool killed = false;
        try
        {
            while (await child.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                // Lines still in the pipe after the kill were written after their commit: they count too.
                if (AckLine().Match(line) is not { Success: true } m)
                {
                    continue;
                }

                string kind = m.Groups[1].Value;
                acked.Add((kind, m.Groups[2].Value));
                if (kind == "domains")
                {
                    bulkStarted = clock.Elapsed; // the bulk transaction follows at once
                }
                else if (kind == "bulk")
                {
                    bulkTook = clock.Elapsed - bulkStarted;
                }

                if (killed || acked.Count < killAfterAcks)
                {
                    continue;
                }

                if (intoBulk is { } fraction)
                {
                    if (kind != "domains" || bulkTook == TimeSpan.Zero)
                    {
                        continue;
                    }

                    await Task.Delay(bulkTook * fraction); // not a wait for a condition: it picks the moment of the kill
                }

                child.Kill(); // SIGKILL, while the child is in the middle of its next writes
                killed = true;
            }
        }
        finally
        {
            if (!child.HasExited)
            {
                child.Kill();
            }
        }

        await child.WaitForExitAsync();
        Assert.True(killed, $"the writer stopped by itself after {acked.Count} acks (exit {child.ExitCode}):\n{await stderr}");
        Assert.Equal(128 + 9, child.ExitCode); // 137: died of SIGKILL, not of an exception
        return acked;
    }
}

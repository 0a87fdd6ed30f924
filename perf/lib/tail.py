#!/usr/bin/env python3
"""What a latency tail is made of: perf/lib/openloop's per-request dumps (-d), pooled and cut into stalls.

  tail.py [--slow US] [--gap MS] [--sched PERF_SCRIPT] [--loop TID] [--episodes N] LABEL=GLOB [LABEL=GLOB ...]

Each LABEL=GLOB names the dump files of one server (one or more runs: `openloop ... -d run3.txt`). For each label:
  - pooled percentiles over every recorded request of every file, and the median of the files' own p99s
    (perf/run.sh reports the latter);
  - how many requests fell into each latency band;
  - "stalls": requests at least --slow µs late (500) that lie within --gap ms (3) of each other count as one
    episode. Many requests late together is a stall (the server, the client or the box stopped for a while); a
    spread of single late requests is the server's own tail. The sizes of the episodes show which.
With --sched (the text of `perf script` of `perf record -k CLOCK_MONOTONIC -e sched:sched_switch -a`, recorded
during one run whose dump is the only file of the first label), the --episodes largest episodes are listed with
who ran on each CPU meanwhile, and (--loop TID) how long that thread waited runnable while switched out.
"""
import argparse
import collections
import glob
import re
import statistics
import sys

BANDS = [0, 150, 200, 250, 300, 400, 500, 750, 1000, 2000, 5000]


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 2:
                raise SystemExit(f"{path}: not an openloop dump line: {line.strip()[:80]!r}")
            rows.append((float(parts[0]), int(parts[1])))
    return rows


def pct(sorted_values, q):
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q / 100))]


def episodes(rows, slow_us, gap_s):
    eps = []  # [first scheduled, last scheduled, count, worst µs]
    for t, lat in sorted(r for r in rows if r[1] >= slow_us):
        if eps and t - eps[-1][1] < gap_s:
            e = eps[-1]
            e[1], e[2], e[3] = t, e[2] + 1, max(e[3], lat)
        else:
            eps.append([t, t, 1, lat])
    return eps


SWITCH = re.compile(r"\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch: prev_comm=(.*?) prev_pid=(\d+) prev_prio=\d+ "
                    r"prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)")


def load_sched(path):
    """Running intervals (start, end, cpu, comm, pid, state it left in) from perf script's sched_switch lines."""
    current, spans = {}, []
    with open(path) as f:
        for line in f:
            m = SWITCH.search(line)
            if not m:
                continue
            cpu, t = int(m.group(1)), float(m.group(2))
            if cpu in current:
                start, pid, comm = current[cpu]
                spans.append((start, t, cpu, comm, pid, m.group(5)))
            current[cpu] = (t, int(m.group(7)), m.group(6))
    return spans


def who_ran(spans, t0, t1, top=6):
    c = collections.Counter()
    for a, b, cpu, comm, pid, _ in spans:
        overlap = min(b, t1) - max(a, t0)
        if overlap > 0:
            c[(comm, cpu)] += overlap * 1e6
    return [f"{comm}@cpu{cpu} {us:.0f}µs" for (comm, cpu), us in c.most_common(top)]


def waited(spans, tid, t0, t1):
    """Intervals in which thread TID was switched out while runnable (state R), overlapping [t0, t1]."""
    mine = sorted(s for s in spans if s[4] == tid)
    out = []
    for a, b in zip(mine, mine[1:]):
        if a[5].startswith("R") and a[1] < t1 and b[0] > t0 and b[0] - a[1] > 50e-6:
            out.append(f"{(b[0] - a[1]) * 1e6:.0f}µs@cpu{a[2]}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slow", type=int, default=500, help="µs from which a request counts as late (500)")
    ap.add_argument("--gap", type=float, default=3.0, help="ms between late requests of one episode (3)")
    ap.add_argument("--sched", help="perf script text of a sched_switch recording during the first label's run")
    ap.add_argument("--loop", type=int, help="thread id whose runnable waits to list with --sched")
    ap.add_argument("--episodes", type=int, default=10, help="episodes to list with --sched (the largest)")
    ap.add_argument("groups", nargs="+", metavar="LABEL=GLOB")
    args = ap.parse_args()

    first_rows = None
    for group in args.groups:
        label, _, pattern = group.partition("=")
        files = sorted(glob.glob(pattern)) if pattern else []
        if not files:
            raise SystemExit(f"{group}: no files (LABEL=GLOB)")
        rows, per_file_p99, sizes = [], [], []
        for path in files:
            r = load(path)
            if not r:
                continue
            rows += r
            per_file_p99.append(pct(sorted(x[1] for x in r), 99))
            sizes += [e[2] for e in episodes(r, args.slow, args.gap / 1e3)]
        if first_rows is None:
            first_rows = rows
        values = sorted(x[1] for x in rows)
        n = len(values)
        if n == 0:
            raise SystemExit(f"{group}: the files hold no requests")
        print(f"{label}: {n:,} requests in {len(files)} file(s); pooled µs p50 {pct(values, 50)}  p90 {pct(values, 90)}  "
              f"p95 {pct(values, 95)}  p98 {pct(values, 98)}  p99 {pct(values, 99)}  p99.9 {pct(values, 99.9)}  "
              f"max {values[-1]}; median of the files' p99 {statistics.median(per_file_p99):.0f}")
        counts = [sum(1 for v in values if lo <= v < hi) for lo, hi in zip(BANDS, BANDS[1:] + [float("inf")])]
        print("  bands µs: " + "  ".join(f"{lo}+ {c:,}" for lo, c in zip(BANDS, counts)))
        hist = collections.Counter(min(s, 50) // 5 * 5 for s in sizes)
        print(f"  episodes of requests ≥ {args.slow} µs within {args.gap:g} ms: {len(sizes)}, holding {sum(sizes):,} "
              f"requests ({sum(sizes) / n * 1e4:.1f} per 10,000); by size: "
              + ", ".join(f"{k}–{k + 4 if k < 50 else '…'}: {v}" for k, v in sorted(hist.items())))

    if args.sched:
        spans = load_sched(args.sched)
        if not spans:
            raise SystemExit(f"{args.sched}: no sched_switch lines (perf script of perf record -e sched:sched_switch)")
        eps = sorted(episodes(first_rows, args.slow, args.gap / 1e3), key=lambda e: -e[2])[:args.episodes]
        print(f"\nlargest episodes of the first label, and who ran meanwhile ({args.sched}):")
        for t0, t_last, count, worst in sorted(eps):
            t1 = t_last + worst / 1e6
            line = f"  {t0:.3f}: {count} requests, worst {worst / 1e3:.2f} ms; ran: {', '.join(who_ran(spans, t0, t1))}"
            if args.loop:
                line += f"; thread {args.loop} waited runnable: {', '.join(waited(spans, args.loop, t0, t1)) or 'no'}"
            print(line)


if __name__ == "__main__":
    sys.exit(main())

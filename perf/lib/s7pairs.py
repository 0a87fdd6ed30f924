#!/usr/bin/env python3
"""S7 repetition by repetition: the appliance's p99 against a peer's in the same repetition, over one or more runs.

  perf/lib/s7pairs.py [--peer nginx] RESULTS/s7s8-*.tsv …

A run's median p99 hides how the box's stalls fall: scenarios.py runs every contestant once per repetition, minutes
apart, so the two servers of a repetition saw the same period of the box. Per file and per mode this prints in how
many repetitions the appliance's p99 was the lower, the two medians and each pair; then the same over all files.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import rows as read_tsv  # noqa: E402  (the harness TSV reader report.py uses)


def load(path):
    try:
        rows = read_tsv(path)
    except OSError as e:
        raise SystemExit(f"s7pairs: {path}: {e.strerror}")
    need = {"scenario", "contestant", "rep", "p99_ms"}
    if rows and not need <= set(rows[0]):
        raise SystemExit(f"s7pairs: {path}: not a scenarios.py TSV (needs columns {', '.join(sorted(need))})")
    p99 = {}
    for n, r in enumerate(rows, 2):
        if not r.get("scenario", "").startswith("S7"):
            continue
        try:
            p99[(r["scenario"], r["contestant"], int(r["rep"]))] = float(r["p99_ms"])
        except (KeyError, ValueError):
            raise SystemExit(f"s7pairs: {path} line {n}: rep '{r.get('rep')}' or p99_ms '{r.get('p99_ms')}' is missing or not a number")
    return p99


def main(argv):
    peer = "nginx"
    if argv[:1] == ["--peer"]:
        if len(argv) < 2:
            raise SystemExit("s7pairs: --peer needs a contestant name")
        peer, argv = argv[1], argv[2:]
    if not argv:
        raise SystemExit(__doc__.strip().splitlines()[2].strip())
    total = {}
    for path in argv:
        p99 = load(path)
        for mode in ("S7-direct", "S7-proxy"):
            reps = sorted(r for (s, c, r) in p99 if s == mode and c == "appliance" and (s, peer, r) in p99)
            if not reps:
                continue
            pairs = [(p99[(mode, "appliance", r)], p99[(mode, peer, r)]) for r in reps]
            lower = sum(a < b for a, b in pairs)
            t = total.setdefault(mode, [0, [], []])
            t[0] += lower
            t[1] += [a for a, _ in pairs]
            t[2] += [b for _, b in pairs]
            print(f"{path.rsplit('/', 1)[-1]} {mode}: appliance lower in {lower}/{len(pairs)}; median p99 "
                  f"{statistics.median(a for a, _ in pairs):.3f} vs {peer} {statistics.median(b for _, b in pairs):.3f} ms; "
                  + " ".join(f"{a:.2f}/{b:.2f}" for a, b in pairs))
    if not total:
        raise SystemExit(f"s7pairs: no S7 repetition with both the appliance and {peer}")
    for mode, (lower, ours, theirs) in total.items():
        print(f"all {mode}: appliance lower in {lower}/{len(ours)} repetitions; median p99 "
              f"{statistics.median(ours):.3f} vs {peer} {statistics.median(theirs):.3f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])

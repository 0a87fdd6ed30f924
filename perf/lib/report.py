#!/usr/bin/env python3
"""Writes the perf/run.sh section for perf/RESULTS.md: the exact command, the harness's markdown tables, the S7/S8
tables, and the appliance ÷ best peer per scenario.

  report.py --bench DIR --command CMD --results perf/RESULTS.md [--harness-md MD] [--harness-tsv TSV] [--s7s8-tsv TSV]

The section goes in above the newest existing one (RESULTS.md is newest first); --print writes it to stdout only.
"""
import argparse
import datetime
import os
import re
import statistics
import sys

APPLIANCE = os.environ.get("APPLIANCE_NAME", "appliance")

# scenario key -> (what is compared, column, higher is better)
METRICS = {
    "S1": ("req/s per CPU-s", "per_cpu_s", True),
    "S2-13B": ("req/s per CPU-s", "per_cpu_s", True),
    "S2-16KiB": ("req/s per CPU-s", "per_cpu_s", True),
    "S3-direct": ("req/s per CPU-s", "per_cpu_s", True),
    "S3-proxy": ("req/s per CPU-s", "per_cpu_s", True),
    "S4-full-ecdsa": ("hs/s per CPU-s", "per_cpu_s", True),
    "S4-full-rsa": ("hs/s per CPU-s", "per_cpu_s", True),
    "S5-resumed-ecdsa": ("hs/s per CPU-s", "per_cpu_s", True),
    "S6-idle": ("KiB per idle conn", "value", False),
    "S7-direct": ("p99 ms at a fixed rate", "p99_ms", False),
    "S7-proxy": ("p99 ms at a fixed rate", "p99_ms", False),
    "S8-held": ("KiB per held conn", "value", False),
}


def rows(tsv):
    with open(tsv) as f:
        hdr = f.readline().rstrip("\n").split("\t")
        return [dict(zip(hdr, line.rstrip("\n").split("\t"))) for line in f]


def ratios(tsvs):
    by = {}
    for tsv in tsvs:
        for r in rows(tsv):
            if r["scenario"] in METRICS and r.get(METRICS[r["scenario"]][1]) not in ("", None):
                by.setdefault(r["scenario"], {}).setdefault(r["contestant"], []).append(float(r[METRICS[r["scenario"]][1]]))
    L = ["| scenario | compared | appliance | best peer | appliance ÷ best peer | better is |", "|---|---|---|---|---|---|"]
    for key in METRICS:
        if key not in by:
            continue
        what, _, higher = METRICS[key]
        med = {c: statistics.median(v) for c, v in by[key].items() if v}
        peers = {c: v for c, v in med.items() if c != APPLIANCE and not c.startswith(APPLIANCE + "-")}
        if APPLIANCE not in med or not peers:
            continue
        best = (max if higher else min)(peers, key=peers.get)
        a, b = med[APPLIANCE], peers[best]
        ratio = a / b if b else float("nan")
        L.append(f"| {key} | {what} | {a:,.2f} | {best} {b:,.2f} | **×{ratio:.2f}** | {'higher' if higher else 'lower'} |")
    return "\n".join(L) + "\n"


def harness_tables(md):
    """The harness summary's result tables: every '### ' section except the notes and re-run help."""
    text = open(md).read()
    parts = re.split(r"(?m)^(?=### )", text)
    keep = [p.strip() for p in parts if p.startswith("### ") and not p.startswith(("### How it was measured", "### Re-run"))]
    return "\n\n".join(keep) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--binary", default="")
    ap.add_argument("--harness-md")
    ap.add_argument("--harness-tsv")
    ap.add_argument("--s7s8-md")
    ap.add_argument("--s7s8-tsv")
    ap.add_argument("--print", action="store_true")
    a = ap.parse_args()
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    tsvs = [t for t in (a.harness_tsv, a.s7s8_tsv) if t]
    L = [f"## {now} — perf/run.sh side by side\n", f"Command: `{a.command}`"]
    if a.binary:
        L.append(f"Binary: {a.binary}")
    L.append("Raw rows: " + ", ".join(f"`{t}`" for t in tsvs) + " (temporary bench copy).\n")
    L.append("### Appliance ÷ best peer per scenario (medians)\n")
    L.append(ratios(tsvs))
    if a.harness_md:
        L.append(harness_tables(a.harness_md))
    if a.s7s8_md:
        L.append(open(a.s7s8_md).read().strip() + "\n")
    section = "\n".join(L).rstrip() + "\n\n"
    if a.print:
        sys.stdout.write(section)
        return
    text = open(a.results).read() if os.path.exists(a.results) else "# Performance results\n\n"
    m = re.search(r"(?m)^## ", text)
    text = text[:m.start()] + section + text[m.start():] if m else text.rstrip() + "\n\n" + section
    with open(a.results, "w") as f:
        f.write(text)
    print(f"report: section added to {a.results}")


if __name__ == "__main__":
    main()

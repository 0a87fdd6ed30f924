#!/usr/bin/env python3
"""S7 and S8, the scenarios the side-by-side harness (../shared/bench) lacks, run the harness's way.

  scenarios.py run                  S7/S8 against the contestants file; TSV + markdown in $BENCH/results
  scenarios.py summarize TSV [...]  markdown tables of one or more TSVs (pooled)

S7  p99 latency at a fixed request rate below saturation: perf/lib/openloop (open loop, latency from the
    scheduled send time) at S7_RATE req/s (5000) over S7_CONNS (64) HTTPS/1.1 keep-alive connections for
    D_S7 seconds (10; the first S7_WARMUP=2 s not recorded), DIRECT and PROXY (GET / → 13 B).
S8  S8_CONNS (10000) TLS keep-alive connections held for D_S8 seconds (40), each sending one request every
    S8_EVERY seconds (10): errors, RSS of the server's process tree (idle, when all are open, peak), latency.
    Fresh instance per run, direct mode (proxy when the contestant has no direct mode).

Imports the harness's lib/anchors.py from $BENCH (a writable copy) for contestants, ports, start/verify/stop,
CPU accounting and TSV rows, so rows and tables read like the harness's. Env: BENCH, CONTESTANTS, ONLY,
SCENARIOS (S7,S8), REPS (3), QUICK (halves durations, S8 at 2000 connections), BASE_PORT, BACKEND_PORT,
OPENLOOP (path of the built tool). Loopback only; every load run is bounded in time.
"""
import os
import re
import subprocess
import sys
import time

BENCH = os.environ.get("BENCH")
if not BENCH or not os.path.exists(os.path.join(BENCH, "lib", "anchors.py")):
    sys.exit("scenarios.py: set BENCH to a writable copy of ../shared/bench")
os.environ.setdefault("BASE_PORT", "18640")  # away from the harness's own range
sys.path.insert(0, os.path.join(BENCH, "lib"))
import anchors as A  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OPENLOOP = os.environ.get("OPENLOOP", os.path.join(HERE, "openloop"))
SCEN = set(s for s in os.environ.get("SCENARIOS", "S7,S8").split(",") if s in ("S7", "S8"))
Q = A.QUICK
S7_RATE = int(A.envs("S7_RATE", "5000"))
S7_CONNS = int(A.envs("S7_CONNS", "64"))
S7_WARMUP = float(A.envs("S7_WARMUP", "2"))
D_S7 = float(A.envs("D_S7", "6" if Q else "10"))
S8_CONNS = int(A.envs("S8_CONNS", "2000" if Q else "10000"))
S8_EVERY = float(A.envs("S8_EVERY", "10"))
D_S8 = float(A.envs("D_S8", "30" if Q else "40"))
S8_PROCS = int(A.envs("S8_PROCS", "4"))


def parse_result(out):
    m = re.search(r"^RESULT (.*)$", out, re.M)
    if not m:
        return None
    r = {}
    for kv in m.group(1).split():
        k, v = kv.split("=", 1)
        try:
            r[k] = float(v)
        except ValueError:
            r[k] = v
    return r


def errors_of(r):
    return int(r["open_failed"] + r["non2xx"] + r["closed"] + r["timeout"] + r["unsent"])


def run():
    import datetime
    import json
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(os.path.join(BENCH, "results"), exist_ok=True)
    rundir = os.path.join(BENCH, "run", "s7s8-" + stamp)
    os.makedirs(rundir, exist_ok=True)
    tsv = os.path.join(BENCH, "results", f"s7s8-{stamp}.tsv")
    res = A.Results(tsv)
    meta = dict(started=res.date, reps=A.REPS, scenarios=sorted(SCEN), s7=dict(rate=S7_RATE, conns=S7_CONNS, secs=D_S7,
                warmup=S7_WARMUP), s8=dict(conns=S8_CONNS, every=S8_EVERY, secs=D_S8, procs=S8_PROCS),
                contestants={}, failed={})
    t_start = time.monotonic()
    backend = None
    try:
        if not A.port_free(A.BACKEND_PORT):
            raise SystemExit(f"backend port {A.BACKEND_PORT} is busy (set BACKEND_PORT)")
        backend = A.Server("backend", "http", "-", "{bench}/contestants/backend/start.sh 127.0.0.1:{port} {run}",
                           A.BACKEND_PORT, rundir)
        backend.start()
        if not backend.wait_ready():
            raise SystemExit("backend did not start: see " + backend.run + ".log")
        contestants = A.load_contestants()

        if "S7" in SCEN:
            servers = [A.Server(n, m, "ecdsa", c, A.alloc_port(), rundir) for n, ms, c in contestants for m in ms]
            for s in servers:
                s.start()
            ok = []
            for s in servers:
                if s.wait_ready():
                    s.info = A.verify(s)
                    bad = [k for k in ("h1_body_ok", "proxy_16k_ok") if s.info.get(k) is False]
                    if not bad:
                        ok.append(s)
                        meta["contestants"][s.label] = dict(cmd=s.cmd, port=s.port, **s.info)
                        continue
                    meta["failed"][s.label] = "verification failed: " + ",".join(bad)
                else:
                    meta["failed"][s.label] = "did not start; log: " + s.run + ".log"
                A.log(f"FAIL {s.label}: {meta['failed'][s.label]}")
                s.stop()
            for s in ok:  # warm-up
                A.run_tool(A.wrk_args(s.port, "/", 2, 16), 30)
            A.log(f"S7 p99 at a fixed rate: openloop {S7_RATE} req/s over {S7_CONNS} connections, {D_S7:g} s "
                  f"({S7_WARMUP:g} s not recorded)")
            for rep in range(1, A.REPS + 1):
                for mode in ("direct", "proxy"):
                    for s in A.rotate([s for s in ok if s.mode == mode], rep):
                        argv = [OPENLOOP, str(s.port), str(S7_CONNS), str(S7_RATE), str(D_S7), "-w", str(S7_WARMUP)]
                        m = A.measured(s, backend, argv, D_S7 + 40)
                        r = parse_result(m["out"])
                        if not r:
                            A.log(f"S7 {s.label}: no result: {m['out'][-300:]}")
                            continue
                        res.add("S7-" + mode, s.name, s.mode, s.cert, rep, r["p99_ms"], "p99 ms", m=m, p50_ms=r["p50_ms"],
                                p99_ms=r["p99_ms"], errors=errors_of(r), total=r["ok"],
                                extra=f"rate={r['rate']};p90={r['p90_ms']};p999={r['p999_ms']};max={r['max_ms']};"
                                      f"lag99={r['send_lag_p99_ms']};proto={r['proto']};cipher={r['cipher']}")
            for s in ok:
                s.stop()

        if "S8" in SCEN:
            rate = S8_CONNS / S8_EVERY
            A.log(f"S8 {S8_CONNS} held TLS connections, one request each every {S8_EVERY:g} s ({rate:g} req/s), "
                  f"{D_S8:g} s (fresh instance per run)")
            for rep in range(1, A.REPS + 1):
                for name, modes, cmd in A.rotate(contestants, rep):
                    mode = "direct" if "direct" in modes else modes[0]
                    s = A.Server(name, mode, "ecdsa", cmd, A.alloc_port(), rundir)
                    s.start()
                    try:
                        if not s.wait_ready():
                            meta["failed"][s.label + "/S8"] = "did not start; log: " + s.run + ".log"
                            continue
                        A.run_tool(A.wrk_args(s.port, "/", 1, 8), 30)
                        time.sleep(1.0)
                        pids = s.pids()
                        rss0 = A.rss_kb(pids)
                        ready = os.path.join(s.run, "ready.txt")
                        argv = [OPENLOOP, str(s.port), str(S8_CONNS), str(rate), str(D_S8), "-p", str(S8_PROCS),
                                "-t", "10", "-r", ready]
                        out_path = os.path.join(s.run, "openloop.out")
                        with open(out_path, "w") as outf:
                            op = subprocess.Popen(argv, stdout=outf, stderr=subprocess.STDOUT)
                            rss_open = peak = 0
                            c_open = w_open = None
                            deadline = time.monotonic() + D_S8 + 180
                            while op.poll() is None and time.monotonic() < deadline:
                                time.sleep(1.0)
                                pids = s.pids()
                                rss = A.rss_kb(pids)
                                peak = max(peak, rss)
                                if c_open is None and os.path.exists(ready):
                                    rss_open, c_open, w_open = rss, A.cpu_ticks(pids), time.monotonic()
                            if op.poll() is None:
                                op.kill()
                            op.wait()
                            c_end, w_end = A.cpu_ticks(s.pids()), time.monotonic()
                        out = open(out_path).read()
                        r = parse_result(out)
                        if not r:
                            A.log(f"S8 {s.label}: no result: {out[-300:]}")
                            continue
                        opened = int(r["open"])
                        held_cores = (c_end - c_open) / A.CLK / (w_end - w_open) if c_open is not None else 0.0
                        per = (rss_open - rss0) / opened if opened else 0.0
                        res.add("S8-held", name, mode, "ecdsa", rep, per, "KiB/conn", p50_ms=r["p50_ms"], p99_ms=r["p99_ms"],
                                errors=errors_of(r), extra=f"open={opened};rss_idle_kib={rss0};rss_open_kib={rss_open};"
                                f"rss_peak_kib={peak};held_cores={held_cores:.3f};ok={int(r['ok'])};"
                                f"scheduled={int(r['scheduled'])};open_secs={r['secs']}")
                    finally:
                        s.stop()
    finally:
        A.stop_all()
        if backend:
            backend.stop()
        meta["elapsed_s"] = round(time.monotonic() - t_start, 1)
        res.f.close()
        with open(tsv.replace(".tsv", ".meta.json"), "w") as f:
            json.dump(meta, f, indent=1, default=str)
        A.log(f"results: {tsv}  ({meta['elapsed_s']} s)")
    md = summarize([tsv])
    with open(tsv.replace(".tsv", ".md"), "w") as f:
        f.write(md)
    A.log("summary: " + tsv.replace(".tsv", ".md"))
    print(tsv)


def _rows(tsvs):
    rows, metas = [], []
    for tsv in tsvs:
        with open(tsv) as f:
            hdr = f.readline().rstrip("\n").split("\t")
            rows += [dict(zip(hdr, line.rstrip("\n").split("\t"))) for line in f]
        mp = tsv.replace(".tsv", ".meta.json")
        if os.path.exists(mp):
            import json
            metas.append(json.load(open(mp)))
    return rows, (metas[-1] if metas else {})


def _extra(g):
    ex = {}
    for r in g:
        for kv in r.get("extra", "").split(";"):
            if "=" in kv:
                a, b = kv.split("=", 1)
                ex.setdefault(a, []).append(b)
    return ex


def summarize(tsvs):
    rows, meta = _rows(tsvs)
    groups = {}
    for r in rows:
        groups.setdefault((r["scenario"], r["contestant"], r["mode"]), []).append(r)
    f, med = A.fnum, A.med
    L = []
    s7 = meta.get("s7", {})
    for mode in ("direct", "proxy"):
        cells = [(k, g) for k, g in groups.items() if k[0] == "S7-" + mode]
        if not cells:
            continue
        L.append(f"\n### S7 latency at a fixed rate, HTTPS/1.1, {mode.upper()} ({f(s7.get('rate'))} req/s over "
                 f"{s7.get('conns', '?')} keep-alive connections, open loop: latency from the scheduled send time; "
                 f"perf/lib/openloop)\n")
        h = ["contestant", "mode", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "req/s done", "req/s per CPU-s",
             "×best", "proxy cores", "client lag p99 ms", "foreign", "errors", "n"]
        L.append("| " + " | ".join(h) + " |")
        L.append("|" + "---|" * len(h))
        st = []
        for k, g in cells:
            ex = _extra(g)
            st.append(dict(name=k[1], mode=k[2], p50=med(r["p50_ms"] for r in g), p99=med(r["p99_ms"] for r in g),
                           p90=med(ex.get("p90", [])), p999=med(ex.get("p999", [])), mx=med(ex.get("max", [])),
                           rate=med(ex.get("rate", [])), lag=med(ex.get("lag99", [])),
                           per=med(r["per_cpu_s"] for r in g),
                           cores=med(float(r["proxy_cpu_s"]) / float(r["wall_s"]) for r in g if r["wall_s"]),
                           foreign=med(r.get("foreign_cores") for r in g),
                           errors=sum(int(float(r["errors"] or 0)) for r in g), n=len(g)))
        best = max((s["per"] or 0) for s in st) or 1
        st.sort(key=lambda s: s["p99"] if s["p99"] is not None else 1e9)
        for s in st:
            L.append("| " + " | ".join([s["name"], s["mode"], f(s["p50"], 3), f(s["p90"], 3), f(s["p99"], 3),
                                        f(s["p999"], 3), f(s["mx"], 2), f(s["rate"]), f(s["per"]),
                                        f"{(s['per'] or 0) / best:.2f}", f(s["cores"], 2), f(s["lag"], 3),
                                        f(s["foreign"], 2), str(s["errors"]), str(s["n"])]) + " |")
    cells = [(k, g) for k, g in groups.items() if k[0] == "S8-held"]
    if cells:
        s8 = meta.get("s8", {})
        L.append(f"\n### S8 {f(s8.get('conns'))} held TLS keep-alive connections, one request each every "
                 f"{s8.get('every', '?')} s for {s8.get('secs', '?')} s (fresh instance per run; perf/lib/openloop)\n")
        h = ["contestant", "mode", "opened", "errors", "RSS idle MiB", "RSS all open MiB", "RSS peak MiB",
             "KiB per conn", "cores while held", "p50 ms", "p99 ms", "n"]
        L.append("| " + " | ".join(h) + " |")
        L.append("|" + "---|" * len(h))
        st = []
        for k, g in cells:
            ex = _extra(g)
            st.append((med(r["value"] for r in g), k, g, ex))
        st.sort(key=lambda x: x[0] or 0)
        for per, k, g, ex in st:
            L.append("| " + " | ".join([k[1], k[2], f(med(ex.get("open", []))), str(sum(int(float(r["errors"] or 0)) for r in g)),
                                        f((med(ex.get("rss_idle_kib", [])) or 0) / 1024, 1),
                                        f((med(ex.get("rss_open_kib", [])) or 0) / 1024, 1),
                                        f((med(ex.get("rss_peak_kib", [])) or 0) / 1024, 1), f(per, 1),
                                        f(med(ex.get("held_cores", [])), 3), f(med(r["p50_ms"] for r in g), 2),
                                        f(med(r["p99_ms"] for r in g), 2), str(len(g))]) + " |")
    if meta.get("failed"):
        L.append("\n**Failed:** " + "; ".join(f"{k}: {v}" for k, v in meta["failed"].items()))
    L.append("\nS7: *req/s per CPU-s* at the same offered load = how much CPU each request costs below saturation; "
             "*client lag* = how late openloop itself sent (when it nears the p99, the client limits the figure). "
             "S8: *KiB per conn* = (RSS with all connections open − RSS before) / opened; *errors* = failed opens, "
             "non-2xx, connections closed by the server, timeouts, requests never sent.")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "run":
        run()
    elif len(sys.argv) >= 3 and sys.argv[1] == "summarize":
        sys.stdout.write(summarize(sys.argv[2:]))
    else:
        print(__doc__)
        sys.exit(2)

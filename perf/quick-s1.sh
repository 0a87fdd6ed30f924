#!/usr/bin/env bash
# Quick single-server S1 probe: starts the appliance via bench-start.sh, runs wrk -t1 -c64 for D seconds,
# prints req/s and req/s per CPU-second of the appliance process (from /proc utime+stime).
#   perf/quick-s1.sh CERT KEY [SECONDS] [extra env assignments...]
set -euo pipefail
cert=$1 key=$2 dur=${3:-8}; shift 3 || true
here=$(cd "$(dirname "$0")" && pwd)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
run=$(mktemp -d)
env "$@" "$here/bench-start.sh" direct "$port" "$cert" "$key" none "$run" >"$run/log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sk "https://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
server=$(pgrep -P $pid || echo $pid); [ -d /proc/$server ] || server=$pid
wrk -t1 -c64 -d2s "https://127.0.0.1:$port/" >/dev/null   # warm-up
tick=$(getconf CLK_TCK)
cpu0=$(awk '{print $14+$15}' /proc/$server/stat)
out=$(wrk -t1 -c64 -d${dur}s --latency "https://127.0.0.1:$port/")
cpu1=$(awk '{print $14+$15}' /proc/$server/stat)
kill $pid 2>/dev/null; wait $pid 2>/dev/null || true
rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
p99=$(awk '/ 99%/{print $2}' <<<"$out")
python3 - "$rps" "$cpu0" "$cpu1" "$tick" "$dur" "$p99" <<'PY'
import sys
rps, c0, c1, tick, dur, p99 = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
cpu = (c1 - c0) / tick
print(f"req/s {rps:,.0f}  cpu {cpu:.2f}s ({cpu/dur:.2f} cores)  req/s per CPU-s {rps*dur/cpu:,.0f}  p99 {p99}")
PY
rm -rf "$run"

#!/usr/bin/env bash
# Quick single-server probe of the appliance: starts it via bench-start.sh (and, in proxy mode, the bench's nginx
# origin on a free port), runs wrk -t1 -c64 for D seconds against PATH, prints req/s, req/s per CPU-second of the
# appliance process (from /proc utime+stime) and p99. PROFILE=1 also records a perf cpu-clock profile of the
# appliance during the run and prints its top symbols (PERF_OUT=FILE keeps the recording). SYSCALLS=1 counts the appliance's system calls
# during the run (perf stat, raw_syscalls:sys_enter; an io_uring_enter counts once however many calls it carries) and
# prints them per request (SYSCALL_EVENTS=syscalls:sys_enter_epoll_wait,... adds named ones). TOOL=h2load measures HTTP/2 instead (h2load -t1 -c16 -m32, as S3);
# TOOL=openloop a fixed rate below saturation (RATE req/s, default 5000, over 64 connections, as S7).
#   perf/quick.sh direct|proxy CERT KEY [SECONDS] [PATH]
set -euo pipefail
mode=$1 cert=$2 key=$3 dur=${4:-8} path=${5:-/}
here=$(cd "$(dirname "$0")" && pwd)
bench=${BENCH:-/tmp/bench}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
port=$(free_port)
run=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$run"; }
trap cleanup EXIT
backend=none
if [ "$mode" = proxy ]; then
  [ -x "$bench/contestants/backend/start.sh" ] || { echo "proxy mode needs the bench harness at $bench (cp -r ../shared/bench /tmp/bench)"; exit 2; }
  backend=127.0.0.1:$(free_port)
  "$bench/contestants/backend/start.sh" "$backend" "$run/backend" >"$run/backend.log" 2>&1 &
  pids+=($!)
fi
"$here/bench-start.sh" "$mode" "$port" "$cert" "$key" "$backend" "$run" >"$run/log" 2>&1 &
pid=$!; pids+=($pid)
for _ in $(seq 200); do curl -sfk "https://127.0.0.1:$port$path" >/dev/null 2>&1 && break; sleep 0.1; done
server=$(pgrep -P $pid || echo $pid); [ -d /proc/$server ] || server=$pid
wrk -t1 -c64 -d2s "https://127.0.0.1:$port$path" >/dev/null   # warm-up
tick=$(getconf CLK_TCK)
cpu0=$(awk '{print $14+$15}' /proc/$server/stat)
if [ "${PROFILE:-0}" = 1 ]; then
  perf record -e cpu-clock -F 999 -g -o "$run/perf.data" -p "$server" -- sleep "$dur" >/dev/null 2>&1 &
  perfpid=$!
fi
if [ "${SYSCALLS:-0}" = 1 ]; then
  perf stat -e raw_syscalls:sys_enter${SYSCALL_EVENTS:+,$SYSCALL_EVENTS} -x, -o "$run/syscalls" -p "$server" -- sleep "$dur" >/dev/null 2>&1 &
  statpid=$!
fi
if [ "${TOOL:-wrk}" = openloop ]; then
  [ -x "$here/lib/openloop" ] || gcc -O2 -Wall -o "$here/lib/openloop" "$here/lib/openloop.c" -lssl -lcrypto
  out=$("$here/lib/openloop" "$port" 64 "${RATE:-5000}" "$dur" -P "$path")
  cpu1=$(awk '{print $14+$15}' /proc/$server/stat)
  rps=$(grep -o ' rate=[0-9.]*' <<<"$out" | cut -d= -f2)
  p99=$(grep -o ' p99_ms=[0-9.]*' <<<"$out" | cut -d= -f2)ms
  errors=$(grep '^RESULT' <<<"$out" | grep -vE 'open_failed=0 .*non2xx=0 closed=0 timeout=0 unsent=0' || true)
elif [ "${TOOL:-wrk}" = h2load ]; then
  out=$(h2load -t1 -c16 -m32 -D "$dur" "https://127.0.0.1:$port$path")
  cpu1=$(awk '{print $14+$15}' /proc/$server/stat)
  rps=$(awk '/^finished in/{gsub(",","",$4); print $4}' <<<"$out")
  p99=n/a
  errors=$(grep -E "^requests:" <<<"$out" | grep -v " 0 failed, 0 errored" || true)
else
  out=$(wrk -t1 -c64 -d${dur}s --latency "https://127.0.0.1:$port$path")
  cpu1=$(awk '{print $14+$15}' /proc/$server/stat)
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  p99=$(awk '/ 99%/{print $2}' <<<"$out")
  errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" || true)
fi
python3 - "$rps" "$cpu0" "$cpu1" "$tick" "$dur" "$p99" "$mode" "$path" <<'PY'
import sys
rps, c0, c1, tick, dur, p99, mode, path = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6], sys.argv[7], sys.argv[8]
cpu = (c1 - c0) / tick
print(f"{mode} {path}: req/s {rps:,.0f}  cpu {cpu:.2f}s ({cpu/dur:.2f} cores)  req/s per CPU-s {rps*dur/cpu:,.0f}  p99 {p99}")
PY
[ -n "$errors" ] && echo "$errors"
if [ "${SYSCALLS:-0}" = 1 ]; then
  wait $statpid || true
  awk -F, -v rps="$rps" -v dur="$dur" '$3 ~ /sys_enter/{printf "%s %d, per request %.3f\n", ($3 ~ /raw_syscalls/ ? "system calls" : $3), $1, $1/(rps*dur)}' "$run/syscalls"
fi
if [ "${PROFILE:-0}" = 1 ]; then
  wait $perfpid || true
  if [ -n "${PERF_OUT:-}" ]; then cp "$run/perf.data" "$PERF_OUT"; fi
  perf report -i "$run/perf.data" --no-children --sort symbol --stdio 2>/dev/null | grep -E "^ +[0-9]" | head -${TOP:-40} || true
fi

#!/usr/bin/env bash
# Managed bytes allocated per request by the running AOT binary under wrk, read from the admin API's
# dotnet_gc_allocated_bytes_total at two points inside one run (after a warm-up run and 2 s into it). TOOL=h2load measures HTTP/2 instead
# (h2load -t1 -c16 -m32, as S3). It also reads the counter over the same time with no load, and reports what the
# requests allocated beyond that idle baseline.
# In proxy mode without BACKEND it starts the bench's nginx origin (BENCH, default /tmp/bench) on a free port. A run
# with any non-2xx answer is refused: error responses allocate, and would be measured instead of the proxy.
#   perf/alloc-per-request.sh direct|proxy CERT KEY [BACKEND] [SECONDS]
set -euo pipefail
mode=$1 cert=$2 key=$3 backend=${4:-} dur=${5:-5}
here=$(cd "$(dirname "$0")" && pwd)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
port=$(free_port)
run=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$run"' EXIT
if [ "$mode" = proxy ] && [ -z "$backend" ]; then
  bench=${BENCH:-/tmp/bench}
  [ -x "$bench/contestants/backend/start.sh" ] || { echo "proxy mode needs BACKEND or the bench harness at $bench" >&2; exit 2; }
  backend=127.0.0.1:$(free_port)
  "$bench/contestants/backend/start.sh" "$backend" "$run/backend" >"$run/backend.log" 2>&1 &
  pids+=($!)
fi
"$here/bench-start.sh" "$mode" "$port" "$cert" "$key" "${backend:-none}" "$run" >"$run/log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -sk "https://127.0.0.1:$port/" >/dev/null 2>&1 && [ -S "$run/admin.sock" ] && break; sleep 0.1; done
metric() { curl -s --unix-socket "$run/admin.sock" http://a/v1/metrics | awk '/^dotnet_gc_allocated_bytes_total/{print $2}'; }
# One long run, sampled inside it: connection setup (TLS handshakes, a new connection's first streams and buffers)
# falls before the first sample, so the window holds steady-state requests only. Their number in the window is
# the run's average rate times the window (the rate is steady once warm).
total=$((dur + 4))
if [ "${TOOL:-wrk}" = h2load ]; then
  h2load -t1 -c16 -m32 -D 2 "https://127.0.0.1:$port/" >/dev/null
  h2load -t1 -c16 -m32 -D "$total" "https://127.0.0.1:$port/" >"$run/load.out" &
else
  wrk -t1 -c64 -d2s "https://127.0.0.1:$port/" >/dev/null
  wrk -t1 -c64 -d"${total}s" "https://127.0.0.1:$port/" >"$run/load.out" &
fi
load=$!
sleep 2
t0=$(date +%s.%N); a0=$(metric)
sleep "$dur"
t1=$(date +%s.%N); a1=$(metric)
wait $load
out=$(cat "$run/load.out")
if [ "${TOOL:-wrk}" = h2load ]; then
  rate=$(awk '/^finished in/{gsub(",","",$4); print $4}' <<<"$out")
  grep -q "^status codes: .* 0 4xx, 0 5xx" <<<"$out" || { echo "refused: answers other than 2xx/3xx:"; grep "^status codes" <<<"$out"; exit 1; }
else
  rate=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  if grep -q "Non-2xx" <<<"$out"; then echo "refused: $(grep Non-2xx <<<"$out")"; exit 1; fi
fi
reqs=$(python3 -c "print(int($rate * ($t1 - $t0)))")
# The same span without load: what timers, heartbeats and the metrics call itself allocate, whatever the traffic.
i0=$(metric); sleep "$dur"; i1=$(metric)
python3 -c "r=$reqs; b=($a1-$a0); i=($i1-$i0); print(f'$mode ${TOOL:-wrk}: {b/r:.2f} bytes allocated per request over {r} requests; {i:,} bytes in the same time idle (timers, heartbeats, the metrics call); {max(0,b-i)/r:.2f} per request beyond that')"

#!/usr/bin/env bash
# Managed bytes allocated per request by the running AOT binary under wrk, read from the admin API's
# dotnet_gc_allocated_bytes_total before and after a run (warm-up first). TOOL=h2load measures HTTP/2 instead
# (h2load -t1 -c16 -m32, as S3).
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
if [ "${TOOL:-wrk}" = h2load ]; then
  h2load -t1 -c16 -m32 -D 2 "https://127.0.0.1:$port/" >/dev/null
  a0=$(metric)
  out=$(h2load -t1 -c16 -m32 -D "$dur" "https://127.0.0.1:$port/")
  a1=$(metric)
  reqs=$(awk '/^requests:/{print $6}' <<<"$out")
  grep -q "^status codes: .* 0 4xx, 0 5xx" <<<"$out" || { echo "refused: answers other than 2xx/3xx:"; grep "^status codes" <<<"$out"; exit 1; }
else
  wrk -t1 -c64 -d2s "https://127.0.0.1:$port/" >/dev/null
  a0=$(metric)
  out=$(wrk -t1 -c64 -d"${dur}s" "https://127.0.0.1:$port/")
  a1=$(metric)
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  if grep -q "Non-2xx" <<<"$out"; then echo "refused: $(grep Non-2xx <<<"$out")"; exit 1; fi
fi
python3 -c "print(f'$mode ${TOOL:-wrk}: {($a1-$a0)/$reqs:.1f} bytes allocated per request over $reqs requests (includes the metrics call and timers)')"

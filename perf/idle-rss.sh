#!/usr/bin/env bash
# RSS per idle TLS keep-alive connection of one appliance binary, as the bench's S6 measures it, for quick A/B checks
# without the whole harness: start `perf/bench-start.sh direct` on a free port, warm up (wrk, one connection, 4 s),
# read VmRSS, open N connections with the bench's lib/idle_conns (full handshake, one GET each, then held open),
# wait 2 s, read VmRSS again. Prints KiB per connection and what the GC says about its heap at that moment
# (admin metrics: gen0 collections during the ramp, heap size, committed bytes), and, with ALLOC=1, the managed
# bytes allocated per connection opened.
#   perf/idle-rss.sh BINARY CERT KEY [N]          (N default 5000)
#   perf/idle-rss.sh artifacts/publish/appliance /tmp/bench/certs/ecdsa.{crt,key} 5000
# Environment variables other than these pass through to the binary (DOTNET_GCgen0size=... for a GC probe).
# Needs the bench copy with its built lib/idle_conns (BENCH, default /tmp/bench), wrk, curl.
set -euo pipefail
bin=$1 cert=$2 key=$3 n=${4:-5000}
here=$(cd "$(dirname "$0")" && pwd)
bench=${BENCH:-/tmp/bench}
[ -x "$bench/lib/idle_conns" ] || { echo "idle-rss: build $bench/lib/idle_conns first (gcc -O2 -o idle_conns idle_conns.c -lssl -lcrypto)" >&2; exit 2; }
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
run=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$run"' EXIT
APPLIANCE_BIN=$bin "$here/bench-start.sh" direct "$port" "$cert" "$key" none "$run" >"$run/log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -sk "https://127.0.0.1:$port/" >/dev/null 2>&1 && [ -S "$run/admin.sock" ] && break; sleep 0.1; done
pid=$(pgrep -f "$run/appliance.json" | head -1)
[ -n "$pid" ] || { echo "idle-rss: the appliance did not start:" >&2; cat "$run/log" >&2; exit 1; }
metrics() { curl -s --unix-socket "$run/admin.sock" http://a/v1/metrics; }
rss() { awk '/^VmRSS:/{print $2}' "/proc/$pid/status"; }
wrk -t1 -c1 -d4s "https://127.0.0.1:$port/" >/dev/null
sleep 1
r0=$(rss)
g0=$(metrics | awk '/^dotnet_gc_collections_total\{generation="0"\}/{print $2}')
a0=$(metrics | awk '/^dotnet_gc_allocated_bytes_total/{print $2}')
(ulimit -n "$(ulimit -Hn)"; exec "$bench/lib/idle_conns" "$port" "$n" 4 120 "$run/ready") >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1100); do [ -s "$run/ready" ] && break; sleep 0.1; done
[ -s "$run/ready" ] || { echo "idle-rss: idle_conns did not finish opening" >&2; exit 1; }
sleep 2
r1=$(rss)
m=$(metrics)
opened=$(sed -n 's/.*ok=\([0-9]*\).*/\1/p' "$run/ready")
g1=$(awk '/^dotnet_gc_collections_total\{generation="0"\}/{print $2}' <<<"$m")
a1=$(awk '/^dotnet_gc_allocated_bytes_total/{print $2}' <<<"$m")
heap=$(awk '/^dotnet_gc_heap_size_bytes/{print $2}' <<<"$m")
committed=$(awk '/^dotnet_gc_committed_bytes/{print $2}' <<<"$m")
python3 - "$r0" "$r1" "$opened" "$n" "$((g1 - g0))" "$heap" "$committed" "$((a1 - a0))" "${ALLOC:-}" <<'PY'
import sys
r0, r1, opened, n, gcs, heap, committed, alloc, show = sys.argv[1:]
r0, r1, opened = int(r0), int(r1), int(opened)
line = (f"{(r1 - r0) / opened:.2f} KiB per idle connection ({opened} of {n} opened; RSS {r0 / 1024:.1f} -> {r1 / 1024:.1f} MiB); "
        f"GC: {gcs} gen0 collections during the ramp, heap {int(heap) / 2**20:.1f} MiB, committed {int(committed) / 2**20:.1f} MiB")
if show:
    line += f"; {int(alloc) / opened:.0f} B allocated per connection"
print(line)
PY

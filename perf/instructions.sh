#!/usr/bin/env bash
# Instructions per request of an AOT build, counted by valgrind's callgrind: a number that does not move with the
# box's speed. Two runs of one binary with the same N agree within 0.1 % (runs of different N within about 1 %), where CPU time on this shared box swings by up to 1.7×
# between minutes (and the box has no PMU counters for `perf stat -e instructions`). For A/B checks of small changes.
# The binary runs under callgrind with instrumentation off; after a warm-up it is switched on for N requests
# (h2load -t1 -c4 -m8 -n N; with TOOL=h1, wrk -t1 -c8 for about N keep-alive HTTP/1.1 requests; with TOOL=full or
# TOOL=resumed, the bench's tlsload for about N connections of one request, full or resumed handshakes), then dumped:
# user-space instructions of the whole process (every thread) divided by the requests.
#   perf/instructions.sh BINARY direct|proxy CERT KEY [N]       (N default 20000; about a minute per 10,000 under valgrind)
# BINARY "nginx" counts the bench's nginx instead (one worker, no master process), for the same figure of a peer;
# BINARY "h2o" the bench's h2o (one thread).
# URLPATH (default /) picks the resource: /16k is the bench origin's 16 KiB file (S2's large response) in proxy mode.
# In proxy mode it starts the bench's nginx origin (BENCH, default /tmp/bench). KEEP=FILE keeps the callgrind dump
# (callgrind_annotate FILE). Needs valgrind.
set -euo pipefail
bin=$1 mode=$2 cert=$3 key=$4 n=${5:-20000}
here=$(cd "$(dirname "$0")" && pwd)
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
port=$(free_port)
run=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$run"' EXIT
backend=none
if [ "$mode" = proxy ]; then
  bench=${BENCH:-/tmp/bench}
  [ -x "$bench/contestants/backend/start.sh" ] || { echo "proxy mode needs the bench harness at $bench (cp -r ../shared/bench /tmp/bench)" >&2; exit 2; }
  backend=127.0.0.1:$(free_port)
  "$bench/contestants/backend/start.sh" "$backend" "$run/backend" >"$run/backend.log" 2>&1 &
  pids+=($!)
fi
if [ "$bin" = nginx ]; then
  # The same count for the bench's nginx (Debian's), as its contestant config has it but with one worker process
  # and no master: the user-space instructions a peer spends on the same request, for comparison.
  bench=${BENCH:-/tmp/bench}
  [ -f "$bench/contestants/nginx/nginx.conf.tmpl" ] || { echo "nginx needs the bench harness at $bench" >&2; exit 2; }
  mkdir -p "$run/s"
  sed -e "s#@PORT@#$port#g" -e "s#@CERT@#$cert#g" -e "s#@KEY@#$key#g" -e "s#@BACKEND@#${backend/none/127.0.0.1:9}#g" -e "s#@RUN@#$run/s#g" \
    -e 's/^worker_processes .*/worker_processes 1; master_process off;/' "$bench/contestants/nginx/nginx.conf.tmpl" >"$run/s/nginx.conf"
  cp "$bench/contestants/nginx/$mode.conf" "$run/s/mode.conf"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$run/cg.out" nginx -c "$run/s/nginx.conf" -p "$run/s" >"$run/valgrind.log" 2>&1 &
elif [ "$bin" = h2o ]; then
  # The bench's h2o (Debian's 2.2.5, its contestant config) with one thread. Its serving process is the one valgrind
  # starts (the child it forks does not serve).
  bench=${BENCH:-/tmp/bench}
  [ -f "$bench/contestants/h2o/h2o.conf.tmpl" ] || { echo "h2o needs the bench harness at $bench" >&2; exit 2; }
  mkdir -p "$run/s"
  if [ "$mode" = direct ]; then m="        file.file: $bench/contestants/backend/www/hello.txt"; else m="        proxy.reverse.url: http://$backend/"; fi
  sed -e "s#@PORT@#$port#g" -e "s#@CERT@#$cert#g" -e "s#@KEY@#$key#g" -e "s#@RUN@#$run/s#g" -e 's/^num-threads: .*/num-threads: 1/' \
    "$bench/contestants/h2o/h2o.conf.tmpl" | awk -v m="$m" '{ if ($0=="@MODE@") print m; else print }' >"$run/s/h2o.conf"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$run/cg.out" h2o -c "$run/s/h2o.conf" >"$run/valgrind.log" 2>&1 &
else
  # The config as bench-start.sh writes it (with a stand-in binary, so it only writes it).
  APPLIANCE_BIN=/bin/true "$here/bench-start.sh" "$mode" "$port" "$cert" "$key" "$backend" "$run/s" >/dev/null 2>&1
  # A copy without the .dbg beside it (valgrind 3.19 cannot read the DWARF 5 in it and gives up on the process),
  # with the native libraries that sit next to the binary (SQLite).
  cp "$bin" "$run/appliance"
  for lib in "$(dirname "$bin")"/*.so; do [ -e "$lib" ] && cp "$lib" "$run/"; done
  [ -e "$run/libe_sqlite3.so" ] || cp "$here/../artifacts/publish/libe_sqlite3.so" "$run/" 2>/dev/null || true
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$run/cg.out" "$run/appliance" run --config "$run/s/appliance.json" >"$run/valgrind.log" 2>&1 &
fi
vg=$!
pids+=($vg)
for _ in $(seq 600); do curl -sfk "https://127.0.0.1:$port/" >/dev/null 2>&1 && break; kill -0 "$vg" 2>/dev/null || break; sleep 0.2; done
curl -sfk "https://127.0.0.1:$port/" >/dev/null 2>&1 || { echo "instructions.sh: the server did not start under valgrind; its log:" >&2; tail -20 "$run/valgrind.log" >&2; exit 1; }
load() {
  if [ "${TOOL:-h2}" = h2 ]; then
    h2load -t1 -c4 -m8 -n "$1" "https://127.0.0.1:$port${URLPATH:-/}" | awk '/^requests:/{print $8}'
  elif [ "${TOOL}" = full ] || [ "${TOOL}" = resumed ]; then
    # the bench's tlsload, one request per connection: every handshake full, or each resuming the last session
    # (about 60 handshakes per second under valgrind)
    local kind=new; [ "$TOOL" = resumed ] && kind=reuse
    "${BENCH:-/tmp/bench}/lib/tlsload" "$port" "$kind" 2 "$(( $1 / 60 + 1 ))" | grep -o 'conns=[0-9]*' | cut -d= -f2
  else
    # wrk runs for a time, not a count: about N requests at valgrind's pace (some 500 per second)
    wrk -t1 -c8 -d"$(( $1 / 500 + 1 ))s" "https://127.0.0.1:$port${URLPATH:-/}" | awk '/requests in/{print $1}'
  fi
}
case "${TOOL:-h2}" in full|resumed) load 120 >/dev/null ;; *) load 4000 >/dev/null ;; esac
callgrind_control -i on "$vg" >/dev/null 2>&1
done_requests=$(load "$n")
callgrind_control -d "$vg" >/dev/null 2>&1
for _ in $(seq 300); do grep -q '^totals:' "$run/cg.out.1" 2>/dev/null && break; sleep 0.1; done
ir=$(awk '/^totals:/{print $2}' "$run/cg.out.1")
[ -n "$ir" ] || { echo "instructions.sh: callgrind wrote no dump; its log:" >&2; tail -20 "$run/valgrind.log" >&2; exit 1; }
[ -n "${KEEP:-}" ] && cp "$run/cg.out.1" "$KEEP"
python3 -c "print(f'$(basename "$bin") $mode ${TOOL:-h2}: {$done_requests} requests, {$ir:,} instructions, {$ir / $done_requests:,.0f} per request')"

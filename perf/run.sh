#!/usr/bin/env bash
# The project's side-by-side benchmark: the appliance against nginx, HAProxy, h2o (Debian) and Kestrel/YARP
# (native AOT, when they build), on this box, interleaved, with the tables and the appliance ÷ best peer added to
# perf/RESULTS.md.
#
#   perf/run.sh [SCENARIOS] [CONTESTANTS]
#     SCENARIOS    comma list, default S1,S2,S3,S4,S5,S6 (S0..S6 run by the bench harness; S7, S8 by
#                  perf/lib/scenarios.py: p99 at a fixed rate, 10,000 held connections). "all" = S0..S8.
#     CONTESTANTS  comma list of names to run (same as ONLY=), default all: appliance,nginx,haproxy,h2o,kestrel,yarp
#
#   perf/run.sh                              full run (~20 min), 3 repetitions
#   QUICK=1 REPS=1 perf/run.sh S1,S7 appliance,nginx       smoke-size
#   BENCH=/tmp/bench-perf perf/run.sh S8     reuse a bench copy (its built helpers and dotnet peers)
#
# Env (passed through to the harness): REPS (3), QUICK, ONLY, D_S1..D_S5, S6_CONNS, BACKEND_PORT, BASE_PORT,
# TLSLOAD_PROCS; for S7/S8: S7_RATE (5000), S7_CONNS (64), D_S7 (10), S8_CONNS (10000), S8_EVERY (10), D_S8 (40).
# Also: BENCH (a writable bench copy to reuse; default: a fresh copy of ../shared/bench in a temp dir),
# APPLIANCE_BIN (run that binary as it is, no publish), NO_RESULTS=1 (print the section instead of adding it
# to RESULTS.md), LOCK (a file: the whole run holds flock on it, so that builds or other load runs that take the
# same lock on a shared box wait; default none), VARIANTS (more appliance contestants with engine settings, each
# NAME=MEMBERS separated by ';', MEMBERS added to the config's "server" object through bench-start.sh's SERVER_JSON:
#   VARIANTS='noring="ioUring": false' NO_RESULTS=1 perf/run.sh S7 appliance,noring,nginx
# (MEMBERS that start with "cluster:" go to the proxy mode's cluster instead, through CLUSTER_JSON:
#   VARIANTS='keep300=cluster:"timeouts": { "idle": "300s" }' ...)
# runs the default and the variant side by side; name them in CONTESTANTS when that list is given),
# QUIET=1 (root: quiets the box for the run, for every contestant alike: each DAMON kdamond that is on is turned off
# and turned back on at the end, and the whole run, harness, contestants, backend and load generators, runs at nice
# QUIET_NICE (-15), above a background agent at nice -10; on this box those two set most of S7's tail, RESULTS.md
# 2026-12-04 16:49).
#
# Steps: take the lock; publish the AOT binary (dotnet publish … -o artifacts/publish) unless APPLIANCE_BIN or it is
# newer than every source;
# copy the bench; write its contestants file (appliance via perf/bench-start.sh + the peers); build
# perf/lib/openloop; run the harness for S0..S6, then perf/lib/scenarios.py for S7/S8; add a dated section with
# the exact command, the harness's tables, the S7/S8 tables and the ratios to perf/RESULTS.md (newest first).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cmdline="perf/run.sh $*"
for v in QUIET QUIET_NICE REPS QUICK ONLY BENCH APPLIANCE_BIN D_S1 D_S2 D_S3 D_S4 D_S5 S6_CONNS S7_RATE S7_CONNS D_S7 S8_CONNS S8_EVERY D_S8; do
  [ -n "${!v:-}" ] && cmdline="$v=${!v} $cmdline"
done

lock=${LOCK:-none}
if [ "$lock" != none ] && [ -z "${PERF_RUN_LOCKED:-}" ]; then
  echo "run.sh: waiting for $lock ..." >&2
  PERF_RUN_LOCKED=1 PERF_RUN_CMD="$cmdline" exec flock "$lock" "$0" "$@"
fi
cmdline=${PERF_RUN_CMD:-$cmdline}

[[ "${QUIET:-0}" =~ ^[01]$ ]] || { echo "run.sh: QUIET '${QUIET}' is not 0 or 1" >&2; exit 2; }
if [ "${QUIET:-0}" = 1 ] && [ -z "${PERF_RUN_QUIET:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "run.sh: QUIET=1 needs root (it turns kdamonds off and raises priority)" >&2; exit 2; }
  [[ "${QUIET_NICE:--15}" =~ ^-?[0-9]+$ ]] || { echo "run.sh: QUIET_NICE '${QUIET_NICE}' is not a nice value" >&2; exit 2; }
  stopped=()
  restore() { for s in "${stopped[@]}"; do echo on > "$s" || echo "run.sh: could not turn $s back on" >&2; done; }
  trap restore EXIT
  for s in /sys/kernel/mm/damon/admin/kdamonds/*/state; do
    if [ -f "$s" ] && [ "$(cat "$s")" = on ]; then echo off > "$s"; stopped+=("$s"); fi
  done
  echo "run.sh: QUIET: ${#stopped[@]} kdamond(s) off for the run, nice ${QUIET_NICE:--15}" >&2
  rc=0
  PERF_RUN_QUIET=1 PERF_RUN_CMD="$cmdline" nice -n "${QUIET_NICE:--15}" "$0" "$@" || rc=$?
  exit $rc
fi

scen=${1:-S1,S2,S3,S4,S5,S6}
[ "$scen" = all ] && scen=S0,S1,S2,S3,S4,S5,S6,S7,S8
only=${2:-${ONLY:-}}
[ -n "$only" ] && [[ ",$only," != *",appliance,"* ]] && only="appliance,$only"   # the appliance is always in
wants() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }
harness_scen=$(tr ',' '\n' <<<"$scen" | grep -E '^S[0-6]$' | paste -sd, || true)
extra_scen=$(tr ',' '\n' <<<"$scen" | grep -E '^S[78]$' | paste -sd, || true)

for t in nginx haproxy h2o wrk h2load openssl curl gcc python3; do
  command -v $t >/dev/null || { echo "run.sh: missing $t (apt-get install -y nginx haproxy h2o wrk nghttp2-client openssl curl gcc libssl-dev python3)" >&2; exit 1; }
done

# 1. The binary under test.
if [ -n "${APPLIANCE_BIN:-}" ]; then
  binary="$APPLIANCE_BIN (given)"
else
  bin=$root/artifacts/publish/appliance
  if [ ! -x "$bin" ] || [ -n "$(find "$root/src" \( -name obj -o -name bin \) -prune -o -newer "$bin" \( -name '*.cs' -o -name '*.csproj' \) -print -quit)" ]; then
    echo "run.sh: publishing the AOT binary" >&2
    dotnet publish "$root/src/Appliance/Appliance.csproj" -c Release -r linux-x64 -o "$root/artifacts/publish" -nologo -v quiet >&2
  fi
  binary="artifacts/publish/appliance, AOT build of $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src || echo ' + uncommitted changes')"
fi

# 2. The bench copy.
if [ -n "${BENCH:-}" ]; then
  bench=$BENCH
else
  bench=$(mktemp -d /tmp/perf-bench.XXXXXX)
  chmod 755 "$bench" # mktemp's 0700 would hide the origin's files from nginx's unprivileged worker (403 on /16k)
  cp -r "$root/../shared/bench/." "$bench/"
  chmod -R u+w "$bench"
fi
[ -x "$bench/run-anchors.sh" ] || { echo "run.sh: $bench is not a bench copy" >&2; exit 1; }
(cd "$bench" && ./certs.sh >/dev/null)

# 3. Contestants. Kestrel and YARP are native-AOT apps of the bench; publish them here so a failure only drops them.
conf=$bench/perf-contestants.conf
{
  echo "# written by perf/run.sh"
  echo "appliance  direct,proxy  $here/bench-start.sh {mode} {port} {cert} {key} {backend} {run}"
  IFS=';' read -ra variants <<<"${VARIANTS:-}"
  for v in "${variants[@]}"; do
    name=${v%%=*} members=${v#*=}
    [[ "$name" =~ ^[a-z0-9-]+$ && "$v" == *=* ]] || { echo "run.sh: VARIANTS entry '$v' is not NAME=MEMBERS" >&2; exit 2; }
    wants "$name" || continue
    if [[ "$members" == cluster:* ]]; then
      printf '#!/bin/bash\nCLUSTER_JSON=%q exec %q "$@"\n' "${members#cluster:}" "$here/bench-start.sh" > "$bench/variant-$name.sh"
    else
      printf '#!/bin/bash\nSERVER_JSON=%q exec %q "$@"\n' "$members" "$here/bench-start.sh" > "$bench/variant-$name.sh"
    fi
    chmod +x "$bench/variant-$name.sh"
    echo "$name  direct,proxy  {bench}/variant-$name.sh {mode} {port} {cert} {key} {backend} {run}"
  done
  for p in nginx haproxy h2o; do
    wants $p && echo "$p  direct,proxy  {bench}/contestants/$p/start.sh {mode} {port} {cert} {key} {backend} {run}"
  done
  for app in kestrel yarp; do
    wants $app || continue
    if [ ! -x "$bench/contestants/$app/out/$app" ]; then
      echo "run.sh: publishing $app (native AOT) ..." >&2
      (cd "$bench/contestants/$app" && dotnet publish -c Release -r linux-x64 -o out >"$bench/$app-publish.log" 2>&1) \
        || echo "run.sh: $app did not build (see $bench/$app-publish.log); left out" >&2
    fi
    [ -x "$bench/contestants/$app/out/$app" ] || continue
    [ $app = kestrel ] && echo "kestrel  direct  {bench}/contestants/kestrel/out/kestrel {port} {cert} {key}"
    [ $app = yarp ] && echo "yarp     proxy   {bench}/contestants/yarp/out/yarp {port} {cert} {key} {backend}"
  done
} > "$conf"
# run-anchors.sh publishes Kestrel/YARP when its own contestants.conf lists them: let it see ours.
[ -f "$bench/contestants.conf.orig" ] || cp "$bench/contestants.conf" "$bench/contestants.conf.orig"
cp "$conf" "$bench/contestants.conf"
echo "run.sh: contestants: $(grep -v '^#' "$conf" | awk '{print $1}' | paste -sd' ')" >&2

# 4. The open-loop load generator for S7/S8.
if [ -n "$extra_scen" ]; then
  if [ ! -x "$here/lib/openloop" ] || [ "$here/lib/openloop.c" -nt "$here/lib/openloop" ]; then
    gcc -O2 -Wall -o "$here/lib/openloop" "$here/lib/openloop.c" -lssl -lcrypto
  fi
fi

# S6/S8 hold thousands of connections; the contestants inherit this limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export REPS=${REPS:-3} CONTESTANTS=$conf
[ -n "$only" ] && export ONLY=$only
[ -n "${QUICK:-}" ] && export QUICK
[ -n "${APPLIANCE_BIN:-}" ] && export APPLIANCE_BIN

# 5. Run.
args=(--bench "$bench" --command "$cmdline" --results "$here/RESULTS.md" --binary "$binary")
if [ -n "$harness_scen" ]; then
  before=$(ls "$bench"/results/anchors-*.tsv 2>/dev/null || true)
  SCENARIOS=$harness_scen SUMMARY=0 "$bench/run-anchors.sh"
  tsv=$(comm -13 <(sort <<<"$before") <(ls "$bench"/results/anchors-*.tsv | sort) | tail -1)
  args+=(--harness-tsv "$tsv" --harness-md "${tsv%.tsv}.md")
fi
if [ -n "$extra_scen" ]; then
  tsv=$(BENCH=$bench SCENARIOS=$extra_scen OPENLOOP=$here/lib/openloop python3 "$here/lib/scenarios.py" run | tail -1)
  args+=(--s7s8-tsv "$tsv" --s7s8-md "${tsv%.tsv}.md")
fi

# 6. Record.
if [ -n "${NO_RESULTS:-}" ]; then
  python3 "$here/lib/report.py" "${args[@]}" --print
else
  python3 "$here/lib/report.py" "${args[@]}"
fi
echo "run.sh: bench copy with raw rows and server logs: $bench" >&2

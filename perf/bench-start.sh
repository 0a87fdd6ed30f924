#!/usr/bin/env bash
# Starts the appliance for ../shared/bench (and our own perf scripts) in the foreground.
#   perf/bench-start.sh MODE PORT CERT KEY BACKEND RUNDIR
# MODE direct: every method on every path answers 200 "Hello, World!" (request bodies read and discarded).
# MODE proxy:  forwards everything to BACKEND (host:port, plain HTTP/1.1) over a keep-alive pool.
# EXTRA_CERTS=N adds N more certificates (x<i>.bench.test, self-signed, made by the appliance on first start in
# RUNDIR, or in EXTRA_CERTS_DIR to keep them between runs) beside the bench one: the handshake cost with a
# 10,000-entry SNI map against one.
# SERVER_JSON='"socketThreads": 1' adds members to the config's "server" object (probes of engine settings);
# CLUSTER_JSON='"timeouts": { "idle": "300s" }' adds members to the proxy mode's cluster.
# Publishes the AOT binary first when it is missing or older than the sources (obj/ and bin/ do not count: any
# build regenerates the .cs files there).
set -euo pipefail
if [ $# -ne 6 ]; then
  echo "usage: $0 direct|proxy PORT CERT KEY BACKEND RUNDIR" >&2
  exit 2
fi
mode=$1 port=$2 cert=$3 key=$4 backend=$5 run=$6
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${APPLIANCE_BIN:-$root/artifacts/publish/appliance}  # APPLIANCE_BIN: another build, used as it is (A/B runs)

case "$mode" in
  direct) handler='"direct": { "status": 200, "contentType": "text/plain", "body": "Hello, World!" }' ; clusters='[]' ;;
  proxy) handler='"cluster": "backend"'
         clusters="[ { \"id\": \"backend\", \"destinations\": [ { \"address\": \"$backend\" } ]${CLUSTER_JSON:+, $CLUSTER_JSON} } ]" ;;
  *) echo "bench-start: unknown mode '$mode' (direct|proxy)" >&2; exit 2 ;;
esac

if [ -z "${APPLIANCE_BIN:-}" ] && { [ ! -x "$bin" ] || [ -n "$(find "$root/src" \( -name obj -o -name bin \) -prune -o -newer "$bin" \( -name '*.cs' -o -name '*.csproj' \) -print -quit)" ]; }; then
  echo "bench-start: publishing the AOT binary" >&2
  dotnet publish "$root/src/Appliance/Appliance.csproj" -c Release -r linux-x64 -o "$root/artifacts/publish" -nologo -v quiet >&2
fi

mkdir -p "$run"
extra=""
xdir=${EXTRA_CERTS_DIR:-$run/x}  # kept between runs when set: making 10,000 pairs takes half a minute
for ((i = 0; i < ${EXTRA_CERTS:-0}; i++)); do
  extra+=", { \"name\": \"x$i\", \"hosts\": [\"x$i.bench.test\"], \"certificatePath\": \"$xdir/$i.crt\", \"keyPath\": \"$xdir/$i.key\", \"selfSigned\": true }"
done
cat > "$run/appliance.json" <<JSON
{
  "server": { "stateDirectory": "$run/state", "shutdownTimeout": "5s"${SERVER_JSON:+, $SERVER_JSON} },
  "admin": { "socketPath": "$run/admin.sock" },
  "listeners": [
    { "name": "bench", "address": "127.0.0.1:$port", "tls": true, "protocols": ["h2", "http/1.1"],
      "defaultCertificate": "bench",
      "limits": { "keepAliveTimeout": "120s" } }
  ],
  "certificates": [
    { "name": "bench", "hosts": ["localhost"], "certificatePath": "$cert", "keyPath": "$key" }$extra
  ],
  "clusters": $clusters,
  "routes": [
    { "id": "bench", "match": { "pathPrefix": "/" }, $handler }
  ]
}
JSON
APPLIANCE_LOG_LEVEL=${APPLIANCE_LOG_LEVEL:-warning} exec "$bin" run --config "$run/appliance.json"

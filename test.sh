#!/usr/bin/env bash
# Runs every test of the project. As root it first installs the Debian peers the tests drive
# (curl, openssl, wrk, nghttp2-client, python3-h2, nginx, testssl.sh, lintian, pebble (the ACME test server); node comes with the machine, and `npm ci` fetches the Node peers ws and @grpc/grpc-js). Ends with a line "N passed, N failed"; exits non-zero if any test failed.
set -uo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"

peers="curl openssl wrk nghttp2-client python3-h2 lz4 nginx testssl.sh lintian binutils pebble"
if [ "$(id -u)" = 0 ]; then
  missing=""
  for p in $peers; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    echo "== installing test peers:$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null || { echo "apt-get failed"; exit 1; }
  fi
fi
for tool in curl openssl wrk nghttp h2load nginx node testssl lintian strip dpkg-deb systemd-analyze systemd-run unshare pebble pebble-challtestsrv; do
  command -v "$tool" >/dev/null || { echo "missing test peer: $tool (run as root to install it)"; echo "0 passed, 1 failed"; exit 1; }
done

# Node peers (ws, @grpc/grpc-js) at the versions package-lock.json pins, next to their scripts.
node_peers="$root/tests/Appliance.Tests/Peers/node"
if [ ! -d "$node_peers/node_modules" ] || [ "$node_peers/package-lock.json" -nt "$node_peers/node_modules" ]; then
  echo "== npm ci (Node test peers)"
  (cd "$node_peers" && npm ci --no-audit --no-fund --loglevel=error) || { echo "npm ci failed"; echo "0 passed, 1 failed"; exit 1; }
  touch "$node_peers/node_modules"
fi

results="$root/artifacts/test-results"
rm -rf "$results"; mkdir -p "$results"
failed_steps=0

echo "== build"
dotnet build Appliance.sln -c Release -nologo -v quiet || { echo "0 passed, 1 failed"; exit 1; }

echo "== AOT publish (must produce the native binary with zero warnings)"
publish_log="$results/publish.log"
dotnet publish src/Appliance/Appliance.csproj -c Release -r linux-x64 -o artifacts/publish -nologo > "$publish_log" 2>&1
publish_rc=$?
aot_passed=0
if [ $publish_rc -eq 0 ] && ! grep -qiE ": warning [A-Z]+[0-9]+" "$publish_log" && [ -x artifacts/publish/appliance ]; then
  aot_passed=1; echo "AOT publish: ok"
else
  cat "$publish_log"; echo "AOT publish: FAILED (warnings or errors above)"; failed_steps=1
fi

echo "== tests"
dotnet test Appliance.sln -c Release --no-build -nologo \
  --logger "trx" --results-directory "$results" -- RunConfiguration.TreatNoTestsAsError=true
test_rc=$?

# Packaging tier B: the .deb installed in a Debian 12 rootfs booted with systemd-nspawn (needs root).
vm_passed=0; vm_failed=0
if [ "$(id -u)" = 0 ]; then
  echo "== packaging tier B (systemd-nspawn boot)"
  vm_log="$results/tier-b.log"
  PUBLISH_DIR="$root/artifacts/publish" packaging/test-vm.sh nspawn > "$vm_log" 2>&1
  vm_rc=$?
  grep -E '^(ok|FAIL):' "$vm_log"
  vm_passed=$(grep -c '^ok:' "$vm_log"); vm_failed=$(grep -c '^FAIL:' "$vm_log")
  if [ $vm_rc -ne 0 ] && [ "$vm_failed" = 0 ]; then tail -20 "$vm_log"; vm_failed=1; fi
fi

passed=0; failed=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters"); f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done
passed=$((passed + aot_passed + vm_passed)); failed=$((failed + failed_steps + vm_failed))
if [ $test_rc -ne 0 ] && [ $failed -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]

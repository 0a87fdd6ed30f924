#!/usr/bin/env bash
# The slow packaging checks, apart from ./test.sh (which runs tier A). Needs root.
#   packaging/test-vm.sh nspawn    tier B: Debian 12 rootfs (debootstrap minbase, cached), the .deb installed,
#                                  booted with systemd-nspawn -b; packaging/vm/smoke.sh checks it from inside
# Prints one line per check and "N passed, N failed"; exits non-zero if anything failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tier=${1:-nspawn}
[ "$(id -u)" = 0 ] || { echo "needs root (debootstrap, systemd-nspawn)"; exit 2; }
cache=${ROOTFS_CACHE:-/var/tmp/appliance-rootfs/bookworm-minbase.tar}

need() { command -v "$1" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
need debootstrap debootstrap
need systemd-nspawn systemd-container
need script bsdutils

deb=$("$root/packaging/build-deb.sh" | tail -1)
echo "== package: $deb"

if [ ! -f "$cache" ]; then
  echo "== debootstrap bookworm minbase (cached in $cache)"
  tmp=$(mktemp -d)
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,curl,ca-certificates,libssl3,kmod \
    bookworm "$tmp" http://deb.debian.org/debian > "$tmp.log" 2>&1 || { tail -20 "$tmp.log"; exit 1; }
  mkdir -p "$(dirname "$cache")"
  tar -C "$tmp" -cf "$cache.part" . && mv "$cache.part" "$cache"
  rm -rf "$tmp" "$tmp.log"
fi

work=$(mktemp -d /var/tmp/appliance-nspawn.XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xf "$cache"
mkdir -p "$work/debs" "$work/results"
cp "$deb" "$work/debs/appliance.deb"
install -m 0755 packaging/vm/smoke.sh "$work/usr/local/lib/appliance-smoke.sh"
install -m 0644 packaging/vm/appliance-smoke.service "$work/etc/systemd/system/appliance-smoke.service"
ln -sf /etc/systemd/system/appliance-smoke.service "$work/etc/systemd/system/multi-user.target.wants/appliance-smoke.service"

echo "== install the .deb in the rootfs"
systemd-nspawn --quiet --register=no --keep-unit -D "$work" --pipe -- dpkg -i /debs/appliance.deb

echo "== boot (systemd-nspawn -b, private network)"
log="$root/artifacts/nspawn-boot.log"
mkdir -p "$root/artifacts"
start=$(date +%s)
timeout 600 script -qec "systemd-nspawn --register=no --keep-unit --private-network -D '$work' -b" "$log" > /dev/null 2>&1 || true
echo "   booted, checked and powered off in $(( $(date +%s) - start )) s (console: $log)"

out="$work/results/smoke.txt"
[ -f "$out" ] || { echo "no results: the smoke unit did not run (see $log)"; echo "0 passed, 1 failed"; exit 1; }
cat "$out"
passed=$(grep -c '^ok:' "$out" || true)
failed=$(grep -c '^FAIL:' "$out" || true)
grep -q '^smoke: done' "$out" || failed=$((failed + 1))
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

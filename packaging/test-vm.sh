#!/usr/bin/env bash
# The slow packaging checks, apart from ./test.sh (which runs tier A). Needs root.
#   packaging/test-vm.sh nspawn    tier B: Debian 12 rootfs (debootstrap minbase, cached), the .deb installed,
#                                  booted with systemd-nspawn -b; packaging/vm/smoke.sh checks it from inside
#   packaging/test-vm.sh qemu      tier C: the bootable image (image/build-image.sh, with the smoke unit) booted
#                                  under QEMU (TCG, UEFI); the smoke unit reports on the serial console, the host
#                                  reaches HTTPS through a forwarded loopback port
# Prints one line per check and "N passed, N failed"; exits non-zero if anything failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tier=${1:-nspawn}
[ "$(id -u)" = 0 ] || { echo "needs root (debootstrap, systemd-nspawn)"; exit 2; }

need() { command -v "$1" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
need systemd-nspawn systemd-container
need script bsdutils

report() {
  local out=$1
  [ -f "$out" ] || { echo "no results (see the console log)"; echo "0 passed, 1 failed"; exit 1; }
  grep -E '^(ok|FAIL):' "$out" || true
  passed=$(grep -c '^ok:' "$out" || true)
  failed=$(grep -c '^FAIL:' "$out" || true)
  grep -q '^smoke: done' "$out" || failed=$((failed + 1))
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}

if [ "$tier" = qemu ]; then
  need qemu-system-x86_64 qemu-system-x86
  [ -f /usr/share/ovmf/OVMF.fd ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ovmf >/dev/null
  start=$(date +%s)
  image=$(SMOKE=1 "$root/packaging/image/build-image.sh" | tail -1)
  echo "== image: $image (built in $(( $(date +%s) - start )) s)"
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  console="$root/artifacts/qemu-console.log"
  : > "$console"
  start=$(date +%s)
  # snapshot=on: the image file stays as built. -cpu max under TCG (no KVM here).
  timeout 900 qemu-system-x86_64 -machine q35 -cpu max -smp 2 -m 2048 -nographic -no-reboot \
    -bios /usr/share/ovmf/OVMF.fd \
    -drive file="$image",format=raw,if=virtio,snapshot=on \
    -netdev user,id=n0,hostfwd=tcp:127.0.0.1:$port-:443 -device virtio-net-pci,netdev=n0 \
    > "$console" 2>&1 &
  qemu=$!
  host_ok=0
  while kill -0 $qemu 2>/dev/null; do
    if [ $host_ok = 0 ] && grep -qa 'smoke: waiting for the host' "$console"; then
      if curl -sk --max-time 30 "https://127.0.0.1:$port/healthz" | grep -q '"ok"'; then host_ok=1; else host_ok=2; fi
      echo "   host request through 127.0.0.1:$port → $([ $host_ok = 1 ] && echo ok || echo FAILED) after $(( $(date +%s) - start )) s"
    fi
    sleep 1
  done
  wait $qemu || true
  echo "   booted, checked and powered off in $(( $(date +%s) - start )) s (console: $console)"
  tr -d '\r' < "$console" | grep -aoE '(ok|FAIL|smoke): .*' > "$root/artifacts/qemu-smoke.txt" || true
  [ $host_ok = 1 ] && echo "ok: HTTPS from the host through the forwarded port" >> "$root/artifacts/qemu-smoke.txt" \
    || echo "FAIL: HTTPS from the host through the forwarded port" >> "$root/artifacts/qemu-smoke.txt"
  report "$root/artifacts/qemu-smoke.txt"
  exit $?
fi

deb=$("$root/packaging/build-deb.sh" | tail -1)
echo "== package: $deb"

cache=$(packaging/vm/rootfs.sh)

work=$(mktemp -d /var/tmp/appliance-nspawn.XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xf "$cache"
chmod 755 "$work" # the container's "/"
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

report "$work/results/smoke.txt"

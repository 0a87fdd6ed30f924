#!/usr/bin/env bash
# Prints the path of a cached tarball of a minimal Debian 12 rootfs (debootstrap minbase with systemd),
# making it first if missing. Shared by the nspawn tier and the image builder. Needs root.
set -euo pipefail
cache=${ROOTFS_CACHE:-/var/tmp/appliance-rootfs/bookworm-minbase.tar}
if [ ! -f "$cache" ]; then
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  tmp=$(mktemp -d /var/tmp/appliance-debootstrap.XXXXXX)
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,curl,ca-certificates,libssl3,kmod \
    bookworm "$tmp" http://deb.debian.org/debian > "$tmp.log" 2>&1 || { tail -20 "$tmp.log" >&2; exit 1; }
  mkdir -p "$(dirname "$cache")"
  tar -C "$tmp" -cf "$cache.part" . && mv "$cache.part" "$cache"
  rm -rf "$tmp" "$tmp.log"
fi
echo "$cache"

#!/usr/bin/env bash
# Prints the path of a cached tarball of a minimal Debian 12 rootfs (debootstrap minbase with systemd),
# making it first if missing. Shared by the nspawn tier and the image builder. Needs root.
set -euo pipefail
cache=${ROOTFS_CACHE:-/var/tmp/appliance-rootfs/bookworm-minbase.tar}
if [ ! -f "$cache" ]; then
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  # The machine's own Debian mirror and proxy (as apt is configured), deb.debian.org otherwise.
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 ~ /^http/ && $0 ~ /debian/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  mirror=${mirror:-http://deb.debian.org/debian}
  proxy=$(apt-config shell p Acquire::http::Proxy 2>/dev/null | sed -n "s/^p='\(.*\)'$/\1/p")
  [ -n "$proxy" ] && export http_proxy=${http_proxy:-$proxy}
  tmp=$(mktemp -d /var/tmp/appliance-debootstrap.XXXXXX)
  chmod 755 "$tmp" # the rootfs's "/" (mktemp makes it 0700: nobody but root could reach anything in the system)
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,curl,ca-certificates,libssl3,kmod \
    bookworm "$tmp" "$mirror" > "$tmp.log" 2>&1 || { tail -20 "$tmp.log" >&2; exit 1; }
  mkdir -p "$(dirname "$cache")"
  tar -C "$tmp" -cf "$cache.part" . && mv "$cache.part" "$cache"
  rm -rf "$tmp" "$tmp.log"
fi
echo "$cache"

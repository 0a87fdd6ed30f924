#!/usr/bin/env bash
# Builds artifacts/appliance_<version>_amd64.deb from the AOT publish output (publishing first unless
# PUBLISH_DIR points at an existing one). Needs dpkg-deb; checks the result with lintian when it is installed.
#   packaging/build-deb.sh            → artifacts/appliance_0.1.0_amd64.deb
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' src/Appliance/Appliance.csproj)
publish=${PUBLISH_DIR:-$root/artifacts/publish}
if [ -z "${PUBLISH_DIR:-}" ]; then
  dotnet publish src/Appliance/Appliance.csproj -c Release -r linux-x64 -o "$publish" -nologo -v quiet >/dev/null
fi
[ -x "$publish/appliance" ] && [ -f "$publish/libe_sqlite3.so" ] || { echo "no appliance binary in $publish" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg="$stage/appliance"
install -d "$pkg/DEBIAN" "$pkg/usr/lib/appliance" "$pkg/usr/bin" "$pkg/lib/systemd/system" \
  "$pkg/usr/lib/sysusers.d" "$pkg/usr/lib/tmpfiles.d" "$pkg/usr/lib/modules-load.d" "$pkg/etc/appliance" \
  "$pkg/usr/share/doc/appliance"
install -m 0755 "$publish/appliance" "$pkg/usr/lib/appliance/appliance"
install -m 0644 "$publish/libe_sqlite3.so" "$pkg/usr/lib/appliance/libe_sqlite3.so"
strip --strip-unneeded "$pkg/usr/lib/appliance/libe_sqlite3.so"
ln -s ../lib/appliance/appliance "$pkg/usr/bin/appliance"
install -m 0644 packaging/systemd/*.service packaging/systemd/*.socket "$pkg/lib/systemd/system/"
install -m 0644 packaging/sysusers.d/appliance.conf "$pkg/usr/lib/sysusers.d/appliance.conf"
install -m 0644 packaging/tmpfiles.d/appliance.conf "$pkg/usr/lib/tmpfiles.d/appliance.conf"
install -m 0644 packaging/modules-load.d/appliance.conf "$pkg/usr/lib/modules-load.d/appliance.conf"
install -m 0644 packaging/appliance.json "$pkg/etc/appliance/appliance.json"
install -m 0644 packaging/debian/copyright "$pkg/usr/share/doc/appliance/copyright"
install -m 0644 README.md "$pkg/usr/share/doc/appliance/README.md"
install -d "$pkg/usr/share/man/man1" "$pkg/usr/share/lintian/overrides"
install -m 0644 packaging/debian/lintian-overrides "$pkg/usr/share/lintian/overrides/appliance"
gzip -9n < packaging/appliance.1 > "$pkg/usr/share/man/man1/appliance.1.gz"
gzip -9n < packaging/debian/changelog > "$pkg/usr/share/doc/appliance/changelog.gz"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$pkg/DEBIAN/"
echo "/etc/appliance/appliance.json" > "$pkg/DEBIAN/conffiles"

size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: appliance
Version: $version
Architecture: amd64
Maintainer: Appliance developers <appliance@example.invalid>
Installed-Size: $size
Depends: libc6 (>= 2.36), libssl3, systemd (>= 252)
Recommends: kmod
Section: httpd
Priority: optional
Homepage: https://example.invalid/appliance
Description: TLS gateway appliance: API and AI gateway in one binary
 A native TLS gateway with its own HTTP/1.1 and HTTP/2 engine: SNI
 certificate maps with hot reload, reverse proxy with health checks and
 load balancing, an admin API on a Unix socket, and a hardened systemd
 service with socket activation and a watchdog.
CONTROL
(cd "$pkg" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums)

out="$root/artifacts/appliance_${version}_amd64.deb"
mkdir -p "$root/artifacts"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$out" >/dev/null
echo "$out"

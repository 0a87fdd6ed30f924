#!/usr/bin/env bash
# Builds artifacts/appliance-<version>.raw: a bootable GPT disk image of a minimal Debian 12 (debootstrap
# minbase, systemd, the Debian kernel) with the appliance .deb installed. UEFI: an ESP with systemd-boot, the
# kernel and its initrd; an ext4 root. Partitions are made with systemd-repart. Needs root.
#   packaging/image/build-image.sh            → artifacts/appliance-0.1.0.raw
#   SMOKE=1 packaging/image/build-image.sh    → artifacts/appliance-0.1.0-smoke.raw, with the smoke unit and a
#                                               slower start timeout for emulation (the VM test's image)
# Install on bare metal: dd if=artifacts/appliance-0.1.0.raw of=/dev/sdX bs=4M conv=fsync (UEFI boot).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' src/Appliance/Appliance.csproj)
smoke=${SMOKE:-0}
suffix=""; [ "$smoke" = 1 ] && suffix=-smoke
out="$root/artifacts/appliance-$version$suffix.raw"
for tool in systemd-repart systemd-nspawn mkfs.vfat mcopy; do
  command -v $tool >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container dosfstools mtools >/dev/null
done
efi=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
[ -f $efi ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-boot-efi >/dev/null

deb=$("$root/packaging/build-deb.sh" | tail -1)
base=$(packaging/vm/rootfs.sh)
work=$(mktemp -d /var/tmp/appliance-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/root esp=$work/esp
mkdir -p "$rootfs" "$esp"
chmod 755 "$rootfs" # the image's "/" (mktemp's 0700 would lock every service user out of the system)

# The rootfs with the Debian kernel and its initrd, cached beside the base tarball (installing them takes minutes).
kernel_cache="${base%.tar}-kernel.tar"
if [ ! -f "$kernel_cache" ]; then
  tar -C "$rootfs" -xf "$base"
  systemd-nspawn --quiet --register=no --keep-unit -D "$rootfs" --pipe -- sh -ec '
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends linux-image-amd64 initramfs-tools >/dev/null
    apt-get clean
    rm -rf /var/lib/apt/lists/*
  ' > "$work/kernel.log" 2>&1 || { tail -30 "$work/kernel.log" >&2; exit 1; }
  tar -C "$rootfs" -cf "$kernel_cache.part" . && mv "$kernel_cache.part" "$kernel_cache"
  rm -rf "$rootfs" && mkdir -p "$rootfs"
fi
tar -C "$rootfs" -xf "$kernel_cache"

# The appliance, installed as on any Debian host (not in /tmp: nspawn mounts a fresh one there).
cp "$deb" "$rootfs/root/appliance.deb"
systemd-nspawn --quiet --register=no --keep-unit -D "$rootfs" --pipe -- dpkg -i /root/appliance.deb > "$work/install.log" 2>&1 \
  || { tail -30 "$work/install.log" >&2; exit 1; }
rm -f "$rootfs/root/appliance.deb"

echo appliance > "$rootfs/etc/hostname"
printf '127.0.1.1\tappliance\n' >> "$rootfs/etc/hosts"
echo 'PARTLABEL=root / ext4 defaults,noatime 0 1' > "$rootfs/etc/fstab"
: > "$rootfs/etc/machine-id"            # made on first boot
rm -f "$rootfs/var/lib/appliance/tls/"*  # the self-signed certificate is made on first start, per machine
# A DHCP client for the first network interface (systemd-networkd is in the systemd package).
mkdir -p "$rootfs/etc/systemd/network"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' > "$rootfs/etc/systemd/network/50-dhcp.network"
ln -sf /lib/systemd/system/systemd-networkd.service "$rootfs/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
ln -sf /lib/systemd/system/serial-getty@.service "$rootfs/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service" 2>/dev/null || true

if [ "$smoke" = 1 ]; then
  install -m 0755 packaging/vm/smoke.sh "$rootfs/usr/local/lib/appliance-smoke.sh"
  install -m 0644 packaging/vm/appliance-smoke.service "$rootfs/etc/systemd/system/appliance-smoke.service"
  ln -sf /etc/systemd/system/appliance-smoke.service "$rootfs/etc/systemd/system/multi-user.target.wants/appliance-smoke.service"
  # Software emulation starts slowly; the shipped unit's 60 s is for real hardware.
  mkdir -p "$rootfs/etc/systemd/system/appliance.service.d"
  printf '[Service]\nTimeoutStartSec=600\nWatchdogSec=300s\n' > "$rootfs/etc/systemd/system/appliance.service.d/emulation.conf"
fi

# The ESP: systemd-boot as the default UEFI loader, one entry booting the Debian kernel.
kernel=$(ls "$rootfs"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$rootfs"/boot/initrd.img-* | sort -V | tail -1)
mkdir -p "$esp/EFI/BOOT" "$esp/loader/entries"
cp $efi "$esp/EFI/BOOT/BOOTX64.EFI"
cp "$kernel" "$esp/vmlinuz"
cp "$initrd" "$esp/initrd.img"
printf 'timeout 0\ndefault appliance.conf\n' > "$esp/loader/loader.conf"
printf 'title Appliance %s\nlinux /vmlinuz\ninitrd /initrd.img\noptions root=PARTLABEL=root rw console=tty0 console=ttyS0,115200\n' \
  "$version" > "$esp/loader/entries/appliance.conf"

# Both file systems are made as image files without mounting anything (mkfs.vfat + mcopy, mkfs.ext4 -d), so
# this works where loop-mounting vfat does not; systemd-repart lays out the GPT and copies them in.
mkfs.vfat -C -n ESP "$work/esp.img" $((256 * 1024)) >/dev/null
mcopy -s -i "$work/esp.img" "$esp"/* ::/
root_mb=$(( $(du -sm "$rootfs" | cut -f1) * 13 / 10 + 256 ))
mkfs.ext4 -q -L root -d "$rootfs" "$work/root.img" "${root_mb}M"
mkdir -p "$work/repart.d"
printf '[Partition]\nType=esp\nLabel=esp\nCopyBlocks=%s\n' "$work/esp.img" > "$work/repart.d/00-esp.conf"
printf '[Partition]\nType=root-x86-64\nLabel=root\nCopyBlocks=%s\n' "$work/root.img" > "$work/repart.d/10-root.conf"
rm -f "$out"
systemd-repart --empty=create --size=auto --dry-run=no --no-pager --definitions="$work/repart.d" "$out" > "$work/repart.log" 2>&1 \
  || { cat "$work/repart.log" >&2; exit 1; }
echo "$out"

#!/bin/sh
# Builds OUTDIR/host-dracut.img: a dracut initramfs with module 90ntfsclone, for tests and to try
# the dracut module on a machine without dracut. Nothing is installed on the machine: dracut is
# the installed one, or else Debian's dracut-core package unpacked into OUTDIR/dracut-core
# (apt-get download + dpkg -x; dracut conflicts with initramfs-tools, so it cannot be installed
# beside it). A copy of dracut's module directory gets our module.
#
#   boot/host/mkdracut.sh OUTDIR [BINARY]
#
# The image is small and generic: dracut's own init (no systemd), the modules that mount a root
# file system, and the drivers of virtio, SATA, NVMe and USB disks and of the image stores.
# KVER picks the kernel (default: the newest /lib/modules/* with a modules.dep).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: boot/host/mkdracut.sh OUTDIR [BINARY]}
bin=${2:-$here/../../target/x86_64-unknown-linux-musl/release/ntfsclone}
die() { echo "host-dracut: $*" >&2; exit 1; }
[ -x "$bin" ] || die "no binary at $bin (make release)"
if [ -z "${KVER:-}" ]; then
	KVER=$(find /lib/modules -mindepth 2 -maxdepth 2 -name modules.dep | sed 's|^/lib/modules/||; s|/modules.dep$||' \
		| sort -V -r | head -n 1)
fi
if [ -z "${KVER:-}" ] || [ ! -f "/lib/modules/$KVER/modules.dep" ]; then
	die "no kernel modules for '${KVER:-}' in /lib/modules (apt-get install linux-image-amd64)"
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

# dracut: installed, or unpacked from Debian's package (once).
if command -v dracut >/dev/null && [ -d /usr/lib/dracut/modules.d ]; then
	dracut=$(command -v dracut) base=/usr/lib/dracut
else
	pkg=$out/dracut-core
	if [ ! -x "$pkg/usr/bin/dracut" ]; then
		rm -rf "$pkg" "$out/dracut-deb"
		mkdir -p "$out/dracut-deb"
		(cd "$out/dracut-deb" && apt-get download dracut-core) || die "apt-get download dracut-core failed"
		dpkg -x "$out"/dracut-deb/dracut-core_*.deb "$pkg"
		rm -rf "$out/dracut-deb"
	fi
	dracut=$pkg/usr/bin/dracut base=$pkg/usr/lib/dracut
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/host-dracut.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cp -a "$base" "$work/dracut"
mkdir -p "$work/dracut/modules.d/90ntfsclone" "$work/lib" "$work/none"
cp "$here/dracut/90ntfsclone/module-setup.sh" "$here/dracut/90ntfsclone/ntfsclone-pre-mount.sh" \
	"$work/dracut/modules.d/90ntfsclone/"
cp "$bin" "$work/lib/ntfsclone"
cp "$here/../lib/ntfsclone-job.sh" "$here/ntfsclone-boot" "$here/../udhcpc.script" "$work/lib/"

drivers="virtio_pci virtio_blk virtio_scsi ahci sd_mod nvme xhci_pci ehci_pci usb_storage uas ext4 \
vfat nls_cp437 nls_ascii nls_iso8859_1 nls_utf8 exfat"
NTFSCLONE_DIR=$work/lib dracutbasedir=$work/dracut "$dracut" --force --quiet --no-hostonly \
	--no-early-microcode --conf /dev/null --confdir "$work/none" \
	--modules "bash base kernel-modules rootfs-block udev-rules ntfsclone" --drivers "$drivers" \
	--kver "$KVER" "$work/host-dracut.img"
mv "$work/host-dracut.img" "$out/host-dracut.img"
echo "host-dracut: $out/host-dracut.img ($(stat -c %s "$out/host-dracut.img") bytes, kernel $KVER)"

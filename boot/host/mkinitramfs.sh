#!/bin/sh
# Builds OUTDIR/host-initrd.img: Debian's mkinitramfs for an installed kernel, from a temporary
# copy of /etc/initramfs-tools plus the ntfsclone hook and boot script. Nothing is installed on
# the machine. For tests, and to try a host initramfs before boot/host/install.sh.
#
#   boot/host/mkinitramfs.sh OUTDIR [BINARY]
#
# BINARY defaults to the static musl build of ntfsclone. KVER picks the kernel (default: the newest
# /lib/modules/* with a modules.dep).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: boot/host/mkinitramfs.sh OUTDIR [BINARY]}
bin=${2:-$here/../../target/x86_64-unknown-linux-musl/release/ntfsclone}
die() { echo "host-initramfs: $*" >&2; exit 1; }
[ -x "$bin" ] || die "no binary at $bin (make release)"
command -v mkinitramfs >/dev/null || die "mkinitramfs not found (apt-get install initramfs-tools)"
[ -d /etc/initramfs-tools ] || die "no /etc/initramfs-tools (apt-get install initramfs-tools)"
if [ -z "${KVER:-}" ]; then
	KVER=$(find /lib/modules -mindepth 2 -maxdepth 2 -name modules.dep | sed 's|^/lib/modules/||; s|/modules.dep$||' \
		| sort -V -r | head -n 1)
fi
if [ -z "${KVER:-}" ] || [ ! -f "/lib/modules/$KVER/modules.dep" ]; then
	die "no kernel modules for '${KVER:-}' in /lib/modules (apt-get install linux-image-amd64)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/host-initramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cp -a /etc/initramfs-tools "$work/conf"
mkdir -p "$work/conf/hooks" "$work/conf/scripts/init-premount" "$work/lib"
cp "$here/initramfs-tools/hook" "$work/conf/hooks/ntfsclone"
cp "$here/ntfsclone-boot" "$work/conf/scripts/init-premount/ntfsclone"
chmod 755 "$work/conf/hooks/ntfsclone" "$work/conf/scripts/init-premount/ntfsclone"
cp "$bin" "$work/lib/ntfsclone"
cp "$here/../lib/ntfsclone-job.sh" "$here/../udhcpc.script" "$work/lib/"

mkdir -p "$out"
NTFSCLONE_DIR=$work/lib mkinitramfs -d "$work/conf" -o "$work/host-initrd.img" "$KVER"
mv "$work/host-initrd.img" "$out/host-initrd.img"
echo "host-initramfs: $out/host-initrd.img ($(stat -c %s "$out/host-initrd.img") bytes, kernel $KVER)"

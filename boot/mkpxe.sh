#!/bin/sh
# Builds a TFTP root for network boot, without root.
#
#   boot/mkpxe.sh INDIR OUTDIR "JOB"
#
# INDIR holds vmlinuz and initramfs.img (from mkinitramfs.sh). OUTDIR gets:
#   pxelinux.0, ldlinux.c32, menu.c32, libutil.c32, libcom32.c32, pxelinux.cfg/default  (BIOS PXE)
#   bootx64.efi, grubx64.efi, mmx64.efi, grub/grub.cfg                                  (UEFI PXE)
#   vmlinuz, initrd.img
# UEFI (Secure Boot on or off) boots Debian's signed chain only, unmodified: shim (Microsoft-signed)
# as bootx64.efi fetches grubx64.efi (the signed network GRUB, grubnetx64) from the same TFTP
# directory; that GRUB reads grub/grub.cfg from its server (its prefix /grub is built in) and
# loads the kernel (Debian's signed one, checked by shim) and the initrd (not checked).
# The default entry boots the JOB (kernel command line words) after 3 s.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
in=${1:?usage: mkpxe.sh INDIR OUTDIR JOB}
dst=${2:?usage: mkpxe.sh INDIR OUTDIR JOB}
job=${3:-}
timeout_s=3

die() { echo "mkpxe: $*" >&2; exit 1; }
for f in "$in/vmlinuz" "$in/initramfs.img"; do [ -f "$f" ] || die "missing $f (make initramfs)"; done
pxelinux=/usr/lib/PXELINUX/pxelinux.0
c32=/usr/lib/syslinux/modules/bios
for f in $pxelinux $c32/ldlinux.c32 $c32/menu.c32; do
	[ -f "$f" ] || die "missing $f (apt-get install pxelinux syslinux-common)"
done

rm -rf "$dst"
mkdir -p "$dst/pxelinux.cfg" "$dst/grub"
cp $pxelinux $c32/ldlinux.c32 $c32/menu.c32 $c32/libutil.c32 $c32/libcom32.c32 "$dst/"
cp "$in/vmlinuz" "$dst/vmlinuz"
cp "$in/initramfs.img" "$dst/initrd.img"

# Kernel command line and menu entries (shared with the other boot menu).
# shellcheck source=boot/menu.sh
. "$here/menu.sh"

# BIOS: pxelinux menu (paths relative to the TFTP root; TIMEOUT in tenths of a second).
cat >"$dst/pxelinux.cfg/default" <<CFG
SERIAL 0 115200
UI menu.c32
PROMPT 0
TIMEOUT $((timeout_s * 10))
DEFAULT job
MENU TITLE ntfsclone rescue (network boot)
LABEL job
  MENU LABEL $title1
  KERNEL vmlinuz
  INITRD initrd.img
  APPEND $args1
LABEL shell
  MENU LABEL $title2
  KERNEL vmlinuz
  INITRD initrd.img
  APPEND $args2
CFG

# UEFI: the signed network GRUB's root is the TFTP server it came from.
shim=/usr/lib/shim/shimx64.efi.signed
mokmanager=/usr/lib/shim/mmx64.efi.signed
grubnet=/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed
for f in $shim $mokmanager; do [ -f "$f" ] || die "missing $f (apt-get install shim-signed)"; done
[ -f $grubnet ] || die "missing $grubnet (apt-get install grub-efi-amd64-signed)"
cp $shim "$dst/bootx64.efi"
cp $grubnet "$dst/grubx64.efi"
cp $mokmanager "$dst/mmx64.efi"
cat >"$dst/grub/grub.cfg" <<CFG
set timeout=$timeout_s
set default=0
menuentry "$title1" {
	linux /vmlinuz $args1
	initrd /initrd.img
}
menuentry "$title2" {
	linux /vmlinuz $args2
	initrd /initrd.img
}
CFG
echo "mkpxe: $dst (BIOS: pxelinux.0, UEFI: bootx64.efi), job: ${job:-none}"

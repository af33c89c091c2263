#!/bin/sh
# Builds a TFTP root for network boot, without root.
#
#   boot/mkpxe.sh INDIR OUTDIR "JOB"
#
# INDIR holds vmlinuz and initramfs.img (from mkinitramfs.sh). OUTDIR gets:
#   pxelinux.0, ldlinux.c32, menu.c32, libutil.c32, libcom32.c32, pxelinux.cfg/default  (BIOS PXE)
#   bootx64.efi (standalone GRUB for UEFI PXE, config embedded), grub/grub.cfg (a readable copy)
#   vmlinuz, initrd.img
# The default entry boots the JOB (kernel command line words) after 3 s.
set -eu
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
. "$(dirname "$0")/menu.sh"

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

# UEFI: a standalone GRUB that loads the kernel from the TFTP server it came from.
if [ -d /usr/lib/grub/x86_64-efi ] && command -v grub-mkstandalone >/dev/null; then
	cat >"$dst/grub/grub.cfg" <<CFG
set timeout=$timeout_s
set default=0
menuentry "$title1" {
	linux (tftp)/vmlinuz $args1
	initrd (tftp)/initrd.img
}
menuentry "$title2" {
	linux (tftp)/vmlinuz $args2
	initrd (tftp)/initrd.img
}
CFG
	mods="normal configfile linux echo test net efinet tftp efi_gop efi_uga all_video gzio sleep"
	grub-mkstandalone -O x86_64-efi -o "$dst/bootx64.efi" \
		--modules="$mods" --install-modules="$mods" --locales= --fonts= --themes= \
		"boot/grub/grub.cfg=$dst/grub/grub.cfg"
else
	echo "mkpxe: note: no grub-efi-amd64-bin, UEFI PXE (bootx64.efi) left out" >&2
fi
echo "mkpxe: $dst (BIOS: pxelinux.0, UEFI: bootx64.efi), job: ${job:-none}"

#!/bin/sh
# Builds the hybrid rescue ISO (CD and USB stick, BIOS and UEFI) without root.
#
#   boot/mkiso.sh INDIR OUT.iso "JOB"
#
# INDIR holds vmlinuz and initramfs.img (from mkinitramfs.sh).
# BIOS: isolinux with the isohybrid MBR (so `dd` to a USB stick boots too).
# UEFI (Secure Boot on or off): Debian's signed chain only, unmodified: shim (Microsoft-signed) as
# /EFI/BOOT/BOOTX64.EFI, the signed CD GRUB (gcdx64) as grubx64.efi beside it (shim loads it from
# its own directory), MokManager as mmx64.efi; in a FAT EFI system image (El Torito EFI entry, GPT
# partition for USB) and in the ISO tree. The signed GRUB finds the ISO filesystem by /.disk/info
# and reads /boot/grub/grub.cfg there (its prefix is built in; only its built-in modules exist).
# vmlinuz must be Debian's signed kernel (shim checks it); the initrd is not checked.
# The default menu entry boots the JOB (kernel command line words) after 3 s.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
in=${1:?usage: mkiso.sh INDIR OUT.iso JOB}
dst=${2:?usage: mkiso.sh INDIR OUT.iso JOB}
job=${3:-}
volid=NTFSCLONE_RESCUE # /init recognises the boot medium by this ISO 9660 volume id
timeout_s=3

die() { echo "mkiso: $*" >&2; exit 1; }
for f in "$in/vmlinuz" "$in/initramfs.img"; do [ -f "$f" ] || die "missing $f (make initramfs)"; done
isolinux=/usr/lib/ISOLINUX/isolinux.bin
isohdpfx=/usr/lib/ISOLINUX/isohdpfx.bin
c32=/usr/lib/syslinux/modules/bios
for f in $isolinux $isohdpfx $c32/ldlinux.c32 $c32/menu.c32; do
	[ -f "$f" ] || die "missing $f (apt-get install isolinux syslinux-common)"
done
shim=/usr/lib/shim/shimx64.efi.signed
mokmanager=/usr/lib/shim/mmx64.efi.signed
grubcd=/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed
for f in $shim $mokmanager; do [ -f "$f" ] || die "missing $f (apt-get install shim-signed)"; done
[ -f $grubcd ] || die "missing $grubcd (apt-get install grub-efi-amd64-signed)"
for t in xorriso mkfs.vfat mcopy mmd; do
	command -v $t >/dev/null || die "missing $t (apt-get install xorriso mtools dosfstools)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mkiso.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
iso=$work/iso
mkdir -p "$iso/isolinux" "$iso/boot/grub" "$iso/EFI/BOOT"
cp "$in/vmlinuz" "$iso/boot/vmlinuz"
cp "$in/initramfs.img" "$iso/boot/initrd.img"
cp $isolinux $c32/ldlinux.c32 $c32/menu.c32 $c32/libutil.c32 $c32/libcom32.c32 "$iso/isolinux/"
echo "$volid" >"$iso/ntfsclone-rescue.id"
# The signed GRUB looks for this file to find the ISO filesystem (as on Debian's own media).
mkdir -p "$iso/.disk"
echo "ntfsclone rescue" >"$iso/.disk/info"

# Kernel command line and menu entries (shared with the other boot menu).
# shellcheck source=boot/menu.sh
. "$here/menu.sh"

# BIOS: isolinux menu (TIMEOUT is in tenths of a second).
cat >"$iso/isolinux/isolinux.cfg" <<CFG
SERIAL 0 115200
UI menu.c32
PROMPT 0
TIMEOUT $((timeout_s * 10))
DEFAULT job
MENU TITLE ntfsclone rescue
LABEL job
  MENU LABEL $title1
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND $args1
LABEL shell
  MENU LABEL $title2
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND $args2
CFG

# UEFI: the signed GRUB has already set root to the ISO filesystem (by /.disk/info); the search
# by our own id file makes sure of it when its built-in prefix happened to exist elsewhere.
cat >"$iso/boot/grub/grub.cfg" <<CFG
set timeout=$timeout_s
set default=0
search --no-floppy --set=root --file /ntfsclone-rescue.id
menuentry "$title1" {
	linux /boot/vmlinuz $args1
	initrd /boot/initrd.img
}
menuentry "$title2" {
	linux /boot/vmlinuz $args2
	initrd /boot/initrd.img
}
CFG
cp $shim "$iso/EFI/BOOT/BOOTX64.EFI"
cp $grubcd "$iso/EFI/BOOT/grubx64.efi"
cp $mokmanager "$iso/EFI/BOOT/mmx64.efi"

# The EFI system image: a small FAT holding the same /EFI/BOOT (made with mtools, no mount).
efisize_k=$(( $(du -k -c "$iso"/EFI/BOOT/* | tail -n 1 | cut -f 1) + 512 ))
mkfs.vfat -C -n EFIBOOT -i 4E544653 "$iso/boot/efiboot.img" "$efisize_k" >/dev/null
mmd -i "$iso/boot/efiboot.img" ::/EFI ::/EFI/BOOT
for f in BOOTX64.EFI grubx64.efi mmx64.efi; do
	mcopy -i "$iso/boot/efiboot.img" "$iso/EFI/BOOT/$f" "::/EFI/BOOT/$f"
done

# The hybrid ISO: El Torito BIOS + EFI, isohybrid MBR, GPT entry for the EFI image.
xorriso -as mkisofs -quiet -o "$work/out.iso" -V "$volid" -J -joliet-long -r \
	-isohybrid-mbr $isohdpfx \
	-c isolinux/boot.cat -b isolinux/isolinux.bin -no-emul-boot -boot-load-size 4 -boot-info-table \
	-eltorito-alt-boot -e boot/efiboot.img -no-emul-boot -isohybrid-gpt-basdat \
	"$iso"
mv "$work/out.iso" "$dst"
echo "mkiso: $dst ($(stat -c %s "$dst") bytes), job: ${job:-none}"

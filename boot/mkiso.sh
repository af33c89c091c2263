#!/bin/sh
# Builds the hybrid rescue ISO (CD and USB stick, BIOS and UEFI) without root.
#
#   boot/mkiso.sh INDIR OUT.iso "JOB"
#
# INDIR holds vmlinuz and initramfs.img (from mkinitramfs.sh).
# BIOS: isolinux with the isohybrid MBR (so `dd` to a USB stick boots too). UEFI: a standalone GRUB
# (config embedded) in a FAT EFI system image, El Torito EFI entry and a GPT partition for USB.
# The default menu entry boots the JOB (kernel command line words) after 3 s.
set -eu
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
[ -d /usr/lib/grub/x86_64-efi ] || die "missing /usr/lib/grub/x86_64-efi (apt-get install grub-efi-amd64-bin)"
for t in xorriso grub-mkstandalone mkfs.vfat mcopy mmd; do
	command -v $t >/dev/null || die "missing $t (apt-get install xorriso grub-common mtools dosfstools)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mkiso.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
iso=$work/iso
mkdir -p "$iso/isolinux" "$iso/boot/grub" "$iso/EFI/BOOT"
cp "$in/vmlinuz" "$iso/boot/vmlinuz"
cp "$in/initramfs.img" "$iso/boot/initrd.img"
cp $isolinux $c32/ldlinux.c32 $c32/menu.c32 $c32/libutil.c32 $c32/libcom32.c32 "$iso/isolinux/"
echo "$volid" >"$iso/ntfsclone-rescue.id"

# Kernel command line and menu entries (shared with the other boot menu).
# shellcheck source=boot/menu.sh
. "$(dirname "$0")/menu.sh"

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

# UEFI: GRUB finds the ISO filesystem (CD, or the whole USB disk) by its id file.
cat >"$work/grub.cfg" <<CFG
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
cp "$work/grub.cfg" "$iso/boot/grub/grub.cfg"
mods="normal configfile linux echo test search search_fs_file iso9660 fat part_gpt part_msdos efi_gop efi_uga all_video gzio sleep"
grub-mkstandalone -O x86_64-efi -o "$iso/EFI/BOOT/BOOTX64.EFI" \
	--modules="$mods" --install-modules="$mods" --locales= --fonts= --themes= \
	"boot/grub/grub.cfg=$work/grub.cfg"

# The EFI system image: a small FAT holding /EFI/BOOT/BOOTX64.EFI (made with mtools, no mount).
efisize_k=$(( ($(stat -c %s "$iso/EFI/BOOT/BOOTX64.EFI") / 1024) + 512 ))
mkfs.vfat -C -n EFIBOOT -i 4E544653 "$iso/boot/efiboot.img" "$efisize_k" >/dev/null
mmd -i "$iso/boot/efiboot.img" ::/EFI ::/EFI/BOOT
mcopy -i "$iso/boot/efiboot.img" "$iso/EFI/BOOT/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI

# The hybrid ISO: El Torito BIOS + EFI, isohybrid MBR, GPT entry for the EFI image.
xorriso -as mkisofs -quiet -o "$work/out.iso" -V "$volid" -J -joliet-long -r \
	-isohybrid-mbr $isohdpfx \
	-c isolinux/boot.cat -b isolinux/isolinux.bin -no-emul-boot -boot-load-size 4 -boot-info-table \
	-eltorito-alt-boot -e boot/efiboot.img -no-emul-boot -isohybrid-gpt-basdat \
	"$iso"
mv "$work/out.iso" "$dst"
echo "mkiso: $dst ($(stat -c %s "$dst") bytes), job: ${job:-none}"

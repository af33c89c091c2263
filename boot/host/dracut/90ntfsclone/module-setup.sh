#!/bin/bash
# dracut module 90ntfsclone: the ntfsclone boot job in a dracut initramfs (Fedora, RHEL, SUSE,
# Arch). The pre-mount hook runs /sbin/ntfsclone-boot (boot/host/ntfsclone-boot), which runs a job
# only when the kernel command line has ntfsclone.* parameters.
#
# NTFSCLONE_DIR: where ntfsclone, ntfsclone-job.sh and ntfsclone-boot are (default
# /usr/local/lib/ntfsclone, where boot/host/install.sh puts them).

# Included in every initramfs once installed (it costs nothing at boot without a job).
check() {
	return 0
}

depends() {
	return 0
}

installkernel() {
	# File systems that may hold an image file, and FAT's default code page and charsets.
	hostonly='' instmods vfat nls_cp437 nls_ascii nls_iso8859_1 nls_utf8 exfat ext4 btrfs xfs
}

install() {
	local dir=${NTFSCLONE_DIR:-/usr/local/lib/ntfsclone}
	inst_simple "$dir/ntfsclone" /usr/bin/ntfsclone
	inst_simple "$dir/ntfsclone-job.sh" /lib/ntfsclone-job.sh
	inst_simple "$dir/ntfsclone-boot" /sbin/ntfsclone-boot
	[ -r "$dir/udhcpc.script" ] && inst_simple "$dir/udhcpc.script" /lib/ntfsclone-udhcpc.script
	# What the job script runs (busybox or coreutils/util-linux, whichever the host has).
	inst_multiple sh cat tr grep sed dd tee sleep sync mkdir dirname basename readlink mount umount \
		blkid findfs gzip
	inst_multiple -o gunzip wget ip udhcpc dmesg poweroff reboot
	# shellcheck disable=SC2154 # moddir: set by dracut
	inst_hook pre-mount 10 "$moddir/ntfsclone-pre-mount.sh"
}

# shellcheck shell=sh
# Hardware helpers of the rescue system, sourced by /init (POSIX sh, busybox; installed as
# /lib/hw.sh). Functions only: sourcing it runs nothing. They read sysfs under $HW_SYS (default
# /sys, so that tests can point them at a tree of their own) and print /dev names under $HW_DEV.
#
#   hw_serial_disk SERIAL   the disk whose serial number is SERIAL (/dev/NAME), or status 1
#   hw_disk_serial NAME     the serial number of the disk NAME (sda, nvme0n1, vda, mmcblk0)
#   hw_net_report           says that no network driver bound and lists the PCI network devices
#                           that have no driver (vendor:device IDs), for the console and the log
#   hw_secure_boot          prints "on", "off" or "unknown" (the firmware's SecureBoot variable;
#                           "off" when not booted by UEFI)

HW_SYS=${HW_SYS:-/sys}
HW_DEV=${HW_DEV:-/dev}

# hw_trim: stdin without NUL bytes and without leading and trailing blanks (serials are padded).
hw_trim() {
	tr -d '\000' | sed 's/^[[:space:]]*//; s/[[:space:]]*$//'
}

# hw_disk_serial NAME: the serial number, from the first source that has one: the block device's
# own attribute (virtio), its device's (NVMe controller, MMC card), the SCSI unit serial number
# page 0x80 (SATA/AHCI through libata, SAS, most SCSI), then the USB device above it (USB disks,
# whose SCSI layer usually skips the VPD pages).
hw_disk_serial() {
	b=$HW_SYS/block/$1
	for f in "$b/serial" "$b/device/serial"; do
		if [ -r "$f" ]; then
			v=$(hw_trim <"$f")
			[ -n "$v" ] && { echo "$v"; return 0; }
		fi
	done
	if [ -r "$b/device/vpd_pg80" ]; then
		# 4 header bytes (peripheral, page code, length), then the serial number in ASCII.
		v=$(dd if="$b/device/vpd_pg80" bs=1 skip=4 2>/dev/null | hw_trim)
		[ -n "$v" ] && { echo "$v"; return 0; }
	fi
	d=$(readlink -f "$b/device" 2>/dev/null) || return 1
	while [ -n "$d" ] && [ "$d" != / ] && [ "$d" != "$HW_SYS" ]; do
		if [ -r "$d/idVendor" ] && [ -r "$d/serial" ]; then
			v=$(hw_trim <"$d/serial")
			[ -n "$v" ] && { echo "$v"; return 0; }
		fi
		d=$(dirname "$d")
	done
	return 1
}

# hw_serial_disk SERIAL: /dev/NAME of the whole disk with that serial number (blanks around it
# ignored, letters compared as written); status 1 when none has it (yet).
hw_serial_disk() {
	want=$(echo "$1" | hw_trim)
	[ -n "$want" ] || return 1
	for b in "$HW_SYS"/block/*; do
		[ -e "$b" ] || continue
		name=${b##*/}
		case $name in loop* | ram* | zram* | sr* | fd*) continue ;; esac
		[ "$(hw_disk_serial "$name")" = "$want" ] && { echo "$HW_DEV/$name"; return 0; }
	done
	return 1
}

# hw_net_report: the lines to show when no network interface appeared (no driver bound).
hw_net_report() {
	echo "ntfsclone rescue: no network driver bound to any network device"
	found=0
	for d in "$HW_SYS"/bus/pci/devices/*; do
		[ -r "$d/class" ] || continue
		# PCI class 0x02: network controller.
		case $(cat "$d/class") in 0x02*) ;; *) continue ;; esac
		[ -e "$d/driver" ] && continue
		vendor=$(cat "$d/vendor") device=$(cat "$d/device")
		sub=$(cat "$d/subsystem_vendor" "$d/subsystem_device" 2>/dev/null | sed 's/^0x//' | paste -s -d : -)
		echo "ntfsclone rescue: network device without a driver: PCI ${d##*/} [${vendor#0x}:${device#0x}]" \
			"(subsystem ${sub:-?}, class $(cat "$d/class"))"
		found=$((found + 1))
	done
	if [ "$found" -eq 0 ]; then
		echo "ntfsclone rescue: no PCI network device without a driver (no network card, or a USB one)"
	fi
}

# hw_secure_boot: the state of Secure Boot as the firmware reports it (UEFI variable SecureBoot,
# 4 attribute bytes then 1 value byte), read from efivarfs or the older sysfs efivars.
hw_secure_boot() {
	if [ ! -d "$HW_SYS/firmware/efi" ]; then
		echo off
		return 0
	fi
	if [ ! -d "$HW_SYS/firmware/efi/efivars" ] || [ -z "$(ls "$HW_SYS/firmware/efi/efivars" 2>/dev/null)" ]; then
		mount -t efivarfs efivarfs "$HW_SYS/firmware/efi/efivars" 2>/dev/null
	fi
	for f in "$HW_SYS"/firmware/efi/efivars/SecureBoot-*; do
		[ -r "$f" ] || continue
		case $(dd if="$f" bs=1 skip=4 count=1 2>/dev/null | od -An -tu1 | tr -d ' ') in
		1) echo on ;;
		0) echo off ;;
		*) echo unknown ;;
		esac
		return 0
	done
	echo unknown
}

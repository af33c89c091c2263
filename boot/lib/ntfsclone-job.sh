# shellcheck shell=sh
# The ntfsclone boot job, shared by the rescue system's /init and the host initramfs scripts
# (initramfs-tools and dracut). Sourced: it only defines functions.
#
#   job_parse "$(cat /proc/cmdline)"   reads the ntfsclone.* parameters into job_* variables
#   (job_run)                          runs the job in a subshell: resolves the devices, mounts the
#                                      image store, runs ntfsclone, prints the marker; exits with
#                                      0 (ok) or the failing exit code
#
# Parameters (values have no spaces; the kernel command line is split with globbing off):
#
#   ntfsclone.mode=save|restore|clone|disk-save|disk-restore|disk-clone|shell
#   ntfsclone.source=DEV          volume to save or clone (/dev/sda1, LABEL=x, UUID=x); a whole
#                                 disk for the disk-* modes (ntfsclone --disk)
#   ntfsclone.target=DEV          volume to restore or clone to (a whole disk for disk-*)
#   ntfsclone.image=IMG           save/restore image: DEV (a block device), DEV:/path (a file on the
#                                 FAT/exFAT/ext4 file system on DEV), http://host:port/path (restore)
#                                 a name ending in .gz is compressed/decompressed on the fly
#   ntfsclone.opts=a,b            extra ntfsclone options, comma separated (--rescue,--force)
#   ntfsclone.after=ACTION        what the caller does afterwards (its own default and choices)
#   ntfsclone.wait=SECONDS        how long to wait for the devices (default 60)
#
# Markers: "ntfsclone-job: ok", "ntfsclone-job: ok (N unreadable sectors)",
# "ntfsclone-job: failed (exit N)" (exit 2 = job refused or set up wrong by this script).
#
# The caller may set: echo2 (a second screen that say also writes to, default none), job_name
# (prefix of this script's own messages), job_dir (log and status files, default /tmp/ntfsclone-job),
# job_mnt (mount point of the image store, default /mnt/image), job_volid (ISO 9660 volume id of the
# boot medium, which is never written to), job_udhcpc_script (the DHCP client's script, default
# /usr/share/udhcpc/default.script), and may redefine job_network.

# say TEXT: a line on the console (and on the second screen).
say() {
	echo "$*"
	echo "$*" >"${echo2:-/dev/null}" 2>/dev/null
}

# job_parse CMDLINE: sets job_mode, job_source, job_target, job_image, job_opts (comma separated),
# job_after and job_wait from the words of CMDLINE; job_seen=1 when any ntfsclone.* word is there.
# shellcheck disable=SC2034 # job_seen and job_after are for the callers
job_parse() {
	job_mode="" job_source="" job_target="" job_image="" job_opts="" job_after="" job_wait=60 job_seen=""
	case $- in *f*) job_noglob=1 ;; *) job_noglob="" ;; esac
	set -f
	for w in $1; do
		case $w in
		ntfsclone.*) job_seen=1 ;;
		esac
		case $w in
		ntfsclone.mode=*) job_mode=${w#*=} ;;
		ntfsclone.source=*) job_source=${w#*=} ;;
		ntfsclone.target=*) job_target=${w#*=} ;;
		ntfsclone.image=*) job_image=${w#*=} ;;
		ntfsclone.opts=*) job_opts=${w#*=} ;;
		ntfsclone.after=*) job_after=${w#*=} ;;
		ntfsclone.wait=*) job_wait=${w#*=} ;;
		esac
	done
	[ -n "$job_noglob" ] || set +f
	case $job_wait in
	'' | *[!0-9]*) job_wait=60 ;;
	esac
}

# job_fail N TEXT: prints why and the failure marker, unmounts the image store, exits N.
job_fail() {
	code=$1
	shift
	say "${job_name:-ntfsclone rescue}: $*"
	say "ntfsclone-job: failed (exit $code)"
	[ -z "$job_mounted" ] || umount "$job_mnt" 2>/dev/null
	exit "$code"
}

# job_resolve NAME: waits until the device exists (LABEL=/UUID= via findfs); prints its /dev path.
job_resolve() {
	n=0
	while :; do
		case $1 in
		LABEL=* | UUID=*) dev=$(findfs "$1" 2>/dev/null) ;;
		*) dev=$1 ;;
		esac
		[ -n "$dev" ] && [ -b "$dev" ] && { echo "$dev"; return 0; }
		[ "$n" -ge "$job_wait" ] && return 1
		sleep 1
		n=$((n + 1))
	done
}

# job_disk_of DEV: the whole disk that holds DEV (DEV itself when it is a disk), as a sysfs name.
job_disk_of() {
	name=$(basename "$(readlink -f "$1")")
	if [ -e "/sys/class/block/$name/partition" ]; then
		basename "$(dirname "$(readlink -f "/sys/class/block/$name")")"
	else
		echo "$name"
	fi
}

# job_overlaps A B: true when writing A would overwrite B (same device, or a disk and its partition).
job_overlaps() {
	a=$(basename "$(readlink -f "$1")")
	b=$(basename "$(readlink -f "$2")")
	[ "$a" = "$b" ] && return 0
	[ "$(job_disk_of "$1")" = "$(job_disk_of "$2")" ] || return 1
	[ ! -e "/sys/class/block/$a/partition" ] || [ ! -e "/sys/class/block/$b/partition" ]
}

# job_is_boot_medium DEV: true when DEV's disk carries the boot medium (ISO 9660 volume id $job_volid).
job_is_boot_medium() {
	[ -n "${job_volid:-}" ] || return 1
	id=$(dd if="/dev/$(job_disk_of "$1")" bs=2048 skip=16 count=1 2>/dev/null | dd bs=1 skip=40 count=16 2>/dev/null)
	[ "$id" = "$job_volid" ]
}

# job_check_writable DEV WHAT: refuses to write over the source or the boot medium.
job_check_writable() {
	if [ -n "$job_src_dev" ] && job_overlaps "$1" "$job_src_dev"; then
		job_fail 2 "refusing the job: $2 $1 is the source $job_src_dev (or holds it)"
	fi
	if job_is_boot_medium "$1"; then
		job_fail 2 "refusing the job: $2 $1 is the medium this system booted from"
	fi
}

# job_is_ntfs DEV: true when DEV holds an NTFS file system (OEM id "NTFS    " at byte 3).
job_is_ntfs() {
	[ "$(dd if="$1" bs=1 skip=3 count=4 2>/dev/null)" = NTFS ]
}

# job_bytes DEV OFFSET COUNT: COUNT bytes of DEV from OFFSET, as text (for signatures).
job_bytes() {
	dd if="$1" bs=1 skip="$2" count="$3" 2>/dev/null
}

# job_fstype DEV: the type of the file system on DEV (vfat, exfat, ext4, btrfs, xfs), from blkid
# or, where there is none (busybox has no blkid applet), from the file system's signature.
job_fstype() {
	t=$(blkid "$1" 2>/dev/null | sed -n 's/.* TYPE="\([^"]*\)".*/\1/p')
	if [ -n "$t" ]; then
		echo "$t"
	elif [ "$(job_bytes "$1" 3 8)" = "EXFAT   " ]; then
		echo exfat
	elif [ "$(job_bytes "$1" 82 5)" = FAT32 ] || [ "$(job_bytes "$1" 54 3)" = FAT ]; then
		echo vfat
	elif [ "$(dd if="$1" bs=1 skip=1080 count=2 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 53ef ]; then
		echo ext4
	elif [ "$(job_bytes "$1" 65600 8)" = _BHRfS_M ]; then
		echo btrfs
	elif [ "$(job_bytes "$1" 0 4)" = XFSB ]; then
		echo xfs
	fi
}

# job_mount_store DEV ro|rw: mounts the file system that holds the image file on $job_mnt, with
# its type named (a host initramfs loads the driver on demand) and, for FAT, UTF-8 file names.
job_mount_store() {
	if job_is_ntfs "$1"; then
		job_fail 2 "the image file is on an NTFS file system ($1): this kernel has no NTFS driver;" \
			"put the image on a FAT32, exFAT or ext4 disk, on a raw partition, or serve it over HTTP"
	fi
	fstype=$(job_fstype "$1")
	mkdir -p "$job_mnt"
	case $fstype in
	'') mount -o "$2" "$1" "$job_mnt" ;;
	vfat) mount -t vfat -o "$2,utf8" "$1" "$job_mnt" ;;
	*) mount -t "$fstype" -o "$2" "$1" "$job_mnt" ;;
	esac || {
		dmesg 2>/dev/null | tail -n 2
		job_fail 2 "cannot mount $1${fstype:+ ($fstype)} (FAT, exFAT and ext4 are supported)"
	}
	job_mounted=1
}

# job_network: brings up the first interface that gets a DHCP lease (busybox udhcpc), unless the
# initramfs has configured one already (a host's ip=dhcp).
job_network() {
	if ip -4 addr show scope global 2>/dev/null | grep -q inet; then
		return 0
	fi
	ip link set lo up
	n=0
	while :; do
		for i in /sys/class/net/*; do
			[ "${i##*/}" = lo ] || [ ! -e "$i" ] || break 2
		done
		[ "$n" -lt "$job_wait" ] || break
		sleep 1
		n=$((n + 1))
	done
	for i in /sys/class/net/*; do
		i=${i##*/}
		[ "$i" = lo ] || [ "$i" = "*" ] && continue
		ip link set "$i" up
		udhcpc -i "$i" -n -q -t 5 -T 2 -s "${job_udhcpc_script:-/usr/share/udhcpc/default.script}" >/dev/null 2>&1 && return 0
	done
	job_fail 2 "no network: no interface got an address by DHCP"
}

# job_tool ARGS...: runs ntfsclone, its messages on the console and in the log; status in $rc.
job_tool() {
	say "+ ntfsclone $*"
	{
		ntfsclone "$@" 2>&1
		echo $? >"$job_dir/rc"
	} | tee -a "$job_dir/log" "${echo2:-/dev/null}"
	rc=$(cat "$job_dir/rc")
}

# Producers and consumers of a streamed image (run as one side of a pipe).
job_http_get() { wget -q -O - "$1"; }
job_http_get_gz() { wget -q -O - "$1" | gunzip -c; }
job_gunzip() { gunzip -c "$1"; }
job_gzip_to() { gzip -c >"$1"; }

# job_tool_from PRODUCER ARG ARGS...: like job_tool, with the image streamed from `PRODUCER ARG`
# (one of the functions above; ARG goes through as one argument, whatever characters it holds).
job_tool_from() {
	producer=$1 parg=$2
	shift 2
	say "+ $producer $parg | ntfsclone $*"
	echo 0 >"$job_dir/rc_in"
	{
		"$producer" "$parg" || echo $? >"$job_dir/rc_in"
	} | {
		ntfsclone "$@" 2>&1
		echo $? >"$job_dir/rc"
	} | tee -a "$job_dir/log" "${echo2:-/dev/null}"
	rc=$(cat "$job_dir/rc")
	if [ "$rc" = 0 ] && [ "$(cat "$job_dir/rc_in")" != 0 ]; then
		say "${job_name:-ntfsclone rescue}: reading the image failed: $producer $parg"
		rc=$(cat "$job_dir/rc_in")
	fi
}

# job_tool_to CONSUMER ARG ARGS...: like job_tool, with the image (ntfsclone's stdout) written by
# `CONSUMER ARG`.
job_tool_to() {
	consumer=$1 carg=$2
	shift 2
	say "+ ntfsclone $* | $consumer $carg"
	echo 0 >"$job_dir/rc_out"
	{
		{
			ntfsclone "$@" 2>&3
			echo $? >"$job_dir/rc"
		} | { "$consumer" "$carg" || echo $? >"$job_dir/rc_out"; }
	} 3>&1 | tee -a "$job_dir/log" "${echo2:-/dev/null}"
	rc=$(cat "$job_dir/rc")
	if [ "$rc" = 0 ] && [ "$(cat "$job_dir/rc_out")" != 0 ]; then
		say "${job_name:-ntfsclone rescue}: writing the image failed: $consumer $carg"
		rc=$(cat "$job_dir/rc_out")
	fi
}

# job_umount_store: unmounts the image store; a failure fails a job that went well (after a save
# the image may not be on the disk yet).
job_umount_store() {
	job_mounted=""
	if ! umount "$job_mnt"; then
		say "${job_name:-ntfsclone rescue}: unmounting $job_img_dev failed: the image on it may be incomplete"
		[ "$rc" != 0 ] || rc=1
	fi
}

# job_disk_mode: for ntfsclone.mode=disk-save|disk-restore|disk-clone, sets job_disk=--disk and
# job_mode to save, restore or clone (the disk job then runs as that mode with --disk); for the
# other modes job_disk is empty.
job_disk_mode() {
	job_disk=""
	case $job_mode in
	disk-save | disk-restore | disk-clone)
		job_disk=--disk
		job_mode=${job_mode#disk-}
		;;
	esac
}

# job_disk_check: a disk job's source and target must be whole disks (not partitions); the
# checks of every job (job_check_writable, the image store) then keep the target disk off the
# source's disk, the image store's disk and the boot medium.
job_disk_check() {
	[ -n "$job_disk" ] || return 0
	for d in "$job_src_dev" "$job_tgt_dev"; do
		if [ -n "$d" ] && [ -e "/sys/class/block/$(basename "$(readlink -f "$d")")/partition" ]; then
			job_fail 2 "refusing the job: ntfsclone.mode=disk-$job_mode needs whole disks; $d is a partition of /dev/$(job_disk_of "$d")"
		fi
	done
}

# job_disk_reread: after a disk restore or clone, the kernel reads the target's new partition
# table (busybox blockdev; a failure is only reported).
job_disk_reread() {
	[ -n "$job_disk" ] && [ "$rc" = 0 ] && [ -n "$job_tgt_dev" ] || return 0
	blockdev --rereadpt "$job_tgt_dev" 2>/dev/null ||
		say "${job_name:-ntfsclone rescue}: the kernel did not re-read the partition table of $job_tgt_dev"
}

# job_run: the job parsed by job_parse (mode save, restore or clone). Meant for a subshell: it
# exits with the job's status after printing the marker.
job_run() {
	job_dir=${job_dir:-/tmp/ntfsclone-job}
	job_mnt=${job_mnt:-/mnt/image}
	job_mounted=""
	mkdir -p "$job_dir"
	job_disk_mode
	case $job_mode in
	save | restore | clone) ;;
	*) job_fail 2 "unknown ntfsclone.mode=$job_mode (save, restore, clone, disk-save, disk-restore, disk-clone or shell)" ;;
	esac

	# Wait for the devices of the job.
	job_src_dev=""
	if [ "$job_mode" != restore ]; then
		[ -n "$job_source" ] || job_fail 2 "ntfsclone.mode=$job_mode needs ntfsclone.source="
		job_src_dev=$(job_resolve "$job_source") || job_fail 2 "source $job_source did not appear within $job_wait s"
	fi
	job_tgt_dev=""
	if [ "$job_mode" != save ]; then
		[ -n "$job_target" ] || job_fail 2 "ntfsclone.mode=$job_mode needs ntfsclone.target="
		job_tgt_dev=$(job_resolve "$job_target") || job_fail 2 "target $job_target did not appear within $job_wait s"
		job_check_writable "$job_tgt_dev" target
	fi
	job_disk_check
	job_img_dev="" img_path=""
	if [ "$job_mode" != clone ]; then
		[ -n "$job_image" ] || job_fail 2 "ntfsclone.mode=$job_mode needs ntfsclone.image="
		case $job_image in
		http://* | https://*)
			[ "$job_mode" = restore ] || job_fail 2 "saving over HTTP is not supported: save to a disk (DEV or DEV:/path)"
			;;
		*:*)
			job_img_dev=$(job_resolve "${job_image%%:*}") || job_fail 2 "image disk ${job_image%%:*} did not appear within $job_wait s"
			img_path=$job_mnt/${job_image#*:}
			;;
		*)
			job_img_dev=$(job_resolve "$job_image") || job_fail 2 "image device $job_image did not appear within $job_wait s"
			;;
		esac
		if [ "$job_mode" = save ] && [ -n "$job_img_dev" ]; then
			job_check_writable "$job_img_dev" image
		fi
		if [ "$job_mode" = restore ] && [ -n "$job_img_dev" ] && job_overlaps "$job_img_dev" "$job_tgt_dev"; then
			job_fail 2 "refusing the job: target $job_tgt_dev is the image device $job_img_dev (or holds it)"
		fi
	fi

	# The extra options, split at commas (globbing off), lead the arguments of every command.
	set -f
	old_ifs=$IFS
	IFS=,
	# shellcheck disable=SC2086 # split on purpose
	set -- $job_opts $job_disk
	IFS=$old_ifs
	set +f

	# Run the job.
	: >"$job_dir/log"
	rc=""
	case $job_mode in
	clone)
		job_tool "$@" --overwrite "$job_tgt_dev" "$job_src_dev"
		;;
	save)
		if [ -z "$img_path" ]; then
			job_tool "$@" --save-image --overwrite "$job_img_dev" "$job_src_dev"
		else
			job_mount_store "$job_img_dev" rw
			mkdir -p "$(dirname "$img_path")"
			case $img_path in
			*.gz) job_tool_to job_gzip_to "$img_path" "$@" --save-image --output - "$job_src_dev" ;;
			*) job_tool "$@" --save-image --overwrite "$img_path" "$job_src_dev" ;;
			esac
			sync
			job_umount_store
		fi
		;;
	restore)
		case $job_image in
		http://* | https://*)
			job_network
			case $job_image in
			*.gz) job_tool_from job_http_get_gz "$job_image" "$@" --restore-image --overwrite "$job_tgt_dev" - ;;
			*) job_tool_from job_http_get "$job_image" "$@" --restore-image --overwrite "$job_tgt_dev" - ;;
			esac
			;;
		*)
			if [ -z "$img_path" ]; then
				job_tool "$@" --restore-image --overwrite "$job_tgt_dev" "$job_img_dev"
			else
				job_mount_store "$job_img_dev" ro
				[ -f "$img_path" ] || job_fail 2 "no image file ${job_image#*:} on $job_img_dev"
				case $img_path in
				*.gz) job_tool_from job_gunzip "$img_path" "$@" --restore-image --overwrite "$job_tgt_dev" - ;;
				*) job_tool "$@" --restore-image --overwrite "$job_tgt_dev" "$img_path" ;;
				esac
				job_umount_store
			fi
			;;
		esac
		;;
	esac
	sync
	job_disk_reread

	# The marker: ok (with the number of unreadable sectors when --rescue met any) or the exit code.
	if [ "$rc" = 0 ]; then
		bad=$(tr '\r' '\n' <"$job_dir/log" | grep -c "WARNING: Can't read sector")
		if [ "$bad" -gt 0 ]; then
			say "ntfsclone-job: ok ($bad unreadable sectors)"
		else
			say "ntfsclone-job: ok"
		fi
		exit 0
	fi
	say "ntfsclone-job: failed (exit $rc)"
	exit "$rc"
}

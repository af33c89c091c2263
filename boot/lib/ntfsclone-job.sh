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
#                                 FAT/exFAT/ext4/NTFS file system on DEV), http://host:port/path
#                                 (restore), smb://[user[:password]@]host/share/path,
#                                 nfs://host[:port]/path (see "Image stores" below);
#                                 a name ending in .gz is compressed/decompressed on the fly
#                                 (busybox gzip), one ending in .zst by ntfsclone (--zstd)
#   ntfsclone.split=SIZE          save the image file in parts of at most SIZE (K, M, G: binary
#                                 suffixes; 0 or no: one file); default 4095M on FAT
#   ntfsclone.verify=no           no read-back check of a saved image (ntfsclone -r -n)
#   ntfsclone.mountopts=a,b       extra mount options for smb:// and nfs:// stores (vers=1.0, ...)
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
	job_split="" job_verify="" job_mountopts=""
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
		ntfsclone.split=*) job_split=${w#*=} ;;
		ntfsclone.verify=*) job_verify=${w#*=} ;;
		ntfsclone.mountopts=*) job_mountopts=${w#*=} ;;
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
	[ -z "$job_mounted" ] || store_umount 2>/dev/null
	exit "$code"
}

# job_resolve NAME: waits until the device exists (LABEL=/UUID= via findfs, SERIAL= a whole disk's
# serial number via hw.sh); prints its /dev path.
job_resolve() {
	n=0
	while :; do
		case $1 in
		LABEL=* | UUID=*) dev=$(findfs "$1" 2>/dev/null) ;;
		SERIAL=*) dev=$(hw_serial_disk "${1#SERIAL=}" 2>/dev/null) ;;
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
# its type named (a host initramfs loads the driver on demand) and, for FAT, UTF-8 file names;
# NTFS through ntfs-3g.
job_mount_store() {
	if job_is_ntfs "$1"; then
		store_mount_ntfs "$1" "$2"
		return
	fi
	fstype=$(job_fstype "$1")
	mkdir -p "$job_mnt"
	case $fstype in
	'') mount -o "$2" "$1" "$job_mnt" ;;
	vfat) mount -t vfat -o "$2,utf8" "$1" "$job_mnt" ;;
	*) mount -t "$fstype" -o "$2" "$1" "$job_mnt" ;;
	esac || {
		dmesg 2>/dev/null | tail -n 2
		job_fail 2 "cannot mount $1${fstype:+ ($fstype)} (FAT, exFAT, ext4 and NTFS are supported)"
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
	nic=""
	for i in /sys/class/net/*; do
		[ "${i##*/}" = lo ] || [ ! -e "$i" ] || nic=1
	done
	if [ -z "$nic" ]; then
		# No interface at all: no driver bound to the network card. Say which cards those are
		# (hw.sh, sourced by /init and the host scripts before this file).
		if command -v hw_net_report >/dev/null 2>&1; then hw_net_report; fi
		job_fail 2 "no network driver for this network card"
	fi
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
	rc_in=$(cat "$job_dir/rc_in")
	# 141 (SIGPIPE): ntfsclone had the whole image and stopped reading before the producer ended.
	if [ "$rc" = 0 ] && [ "$rc_in" != 0 ] && [ "$rc_in" != 141 ]; then
		say "${job_name:-ntfsclone rescue}: reading the image failed: $producer $parg"
		rc=$rc_in
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
	if [ "$(cat "$job_dir/rc_out")" != 0 ]; then
		say "${job_name:-ntfsclone rescue}: writing the image failed: $consumer $carg"
		[ "$rc" != 0 ] || rc=$(cat "$job_dir/rc_out")
	fi
}

# job_umount_store: unmounts the image store; a failure fails a job that went well (after a save
# the image may not be on the disk yet).
job_umount_store() {
	job_mounted=""
	if ! store_umount; then
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
	job_img_dev="" img_path="" job_store=""
	if [ "$job_mode" != clone ]; then
		[ -n "$job_image" ] || job_fail 2 "ntfsclone.mode=$job_mode needs ntfsclone.image="
		case $job_image in
		http://* | https://*)
			[ "$job_mode" = restore ] || job_fail 2 "saving over HTTP is not supported: save to a disk (DEV or DEV:/path)"
			job_store=http
			;;
		smb://* | nfs://*)
			job_store=${job_image%%://*}
			;;
		*:*)
			job_img_dev=$(job_resolve "${job_image%%:*}") || job_fail 2 "image disk ${job_image%%:*} did not appear within $job_wait s"
			img_path=${job_image#*:}
			img_path=$job_mnt/${img_path#/}
			job_store=disk
			;;
		*)
			job_img_dev=$(job_resolve "$job_image") || job_fail 2 "image device $job_image did not appear within $job_wait s"
			job_store=dev
			;;
		esac
		store_check_params
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
	# An image named *.zst is compressed by ntfsclone itself (--zstd, on every core); restores
	# and the read-back recognise zstd by themselves.
	if [ "$job_mode" = save ]; then
		case $job_image in *.zst) set -- "$@" --zstd ;; esac
	fi

	# Run the job.
	: >"$job_dir/log"
	rc=""
	case $job_mode in
	clone)
		job_tool "$@" --overwrite "$job_tgt_dev" "$job_src_dev"
		;;
	save)
		if [ "$job_store" = dev ]; then
			job_tool "$@" --save-image --overwrite "$job_img_dev" "$job_src_dev"
			[ "$rc" != 0 ] || store_verify "$job_img_dev"
		else
			store_save "$@"
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
			if [ "$job_store" = dev ]; then
				job_tool "$@" --restore-image --overwrite "$job_tgt_dev" "$job_img_dev"
			else
				store_restore "$@"
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

# Image stores ----------------------------------------------------------------------------------
#
#   DEV:/path       a file on the FAT, exFAT, ext4 or NTFS (ntfs-3g) file system on DEV
#   smb://[[domain;]user[:password]@]host[:port]/share/path/file.img
#                   kernel cifs; host is resolved by DNS (busybox nslookup) when it is a name;
#                   without a user, user "guest" with an empty password
#   nfs://host[:port]/path/on/server/file.img
#                   NFS v4: the server's pseudo-root is mounted and the path followed from there;
#                   NFS v3 (nolock) when v4 fails: the longest leading directory of the path that the
#                   server exports is mounted
# %XX in the user, password, share and path of a URL stands for the byte XX (%20: a space).
# A save creates the missing directories, removes the parts of an older image of the same name,
# writes the image (in parts NAME, NAME.001, NAME.002, ... with ntfsclone.split), then reads it
# back (ntfsclone -r -n) unless ntfsclone.verify=no. A restore finds the parts by itself.

# store_check_params: checks ntfsclone.split= against the store; sets store_split (bytes, empty
# for no split, "default" for the store's default).
store_check_params() {
	case $job_split in
	'') store_split=default ;;
	0 | no) store_split="" ;;
	*)
		store_split=$(store_bytes "$job_split") || job_fail 2 "ntfsclone.split=$job_split: a size like 4095M, 700M or 2G"
		[ "$store_split" -ge 1048576 ] || job_fail 2 "ntfsclone.split=$job_split: parts must be 1M or more"
		case $job_store in
		dev | http) job_fail 2 "ntfsclone.split= needs an image file (DEV:/path, smb:// or nfs://)" ;;
		esac
		;;
	esac
}

# store_bytes SIZE: SIZE (N, NK, NM or NG, binary suffixes) in bytes.
store_bytes() {
	n=${1%[KkMmGg]}
	case $n in
	'' | *[!0-9]*) return 1 ;;
	esac
	case $1 in
	*[Kk]) echo $((n * 1024)) ;;
	*[Mm]) echo $((n * 1048576)) ;;
	*[Gg]) echo $((n * 1073741824)) ;;
	*) echo "$n" ;;
	esac
}

# store_unescape TEXT: TEXT with each %XX replaced by the byte XX.
store_unescape() {
	case $1 in
	*%[0-9A-Fa-f][0-9A-Fa-f]*)
		printf '%b' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/%\([0-9A-Fa-f][0-9A-Fa-f]\)/\\x\1/g')"
		;;
	*) printf '%s' "$1" ;;
	esac
}

# store_addr HOST: HOST's IPv4 address (HOST itself when it is one; else a DNS lookup).
store_addr() {
	case $1 in
	'' | *[!0-9.]*)
		a=$(nslookup "$1" 2>/dev/null |
			sed -n '/^Name:/,$ s/^Address[ 0-9]*:[[:space:]]*\([0-9][0-9.]*\)\([[:space:]].*\)\{0,1\}$/\1/p' | head -n 1)
		[ -n "$a" ] || return 1
		echo "$a"
		;;
	*) echo "$1" ;;
	esac
}

# store_mount ro|rw: mounts the store of the image file on $job_mnt; sets img_path (the file),
# store_name (the store, for messages) and store_fs (its file system type, from /proc/mounts).
store_mount() {
	mkdir -p "$job_mnt"
	store_fuse=""
	case $job_store in
	disk)
		store_name=$job_img_dev
		job_mount_store "$job_img_dev" "$1"
		;;
	smb) store_mount_smb "$1" ;;
	nfs) store_mount_nfs "$1" ;;
	esac
	# The type the kernel mounted (busybox has no blkid: a disk is mounted by trying each type).
	store_fs=$(awk -v m="$job_mnt" '$2 == m { t = $3 } END { print t }' /proc/mounts 2>/dev/null)
}

# store_mount_ntfs DEV ro|rw: mounts the NTFS file system on DEV with ntfs-3g (FUSE).
store_mount_ntfs() {
	if ! command -v ntfs-3g >/dev/null 2>&1; then
		job_fail 2 "the image file is on an NTFS file system ($1) and this system has no ntfs-3g;" \
			"put the image on a FAT32, exFAT or ext4 disk, on a raw partition, or serve it over HTTP"
	fi
	# ntfs-3g (libfuse) reads the mount table from /etc/mtab.
	[ -e /etc/mtab ] || ln -s /proc/mounts /etc/mtab 2>/dev/null
	o=$2
	[ "$2" = ro ] || o=$2,big_writes
	if ! ntfs-3g -o "$o" "$1" "$job_mnt" >"$job_dir/mount.err" 2>&1; then
		sed 's/^/  /' "$job_dir/mount.err"
		job_fail 2 "cannot mount $1 (NTFS) with ntfs-3g"
	fi
	store_fuse=1
	job_mounted=1
}

# store_mount_smb ro|rw: mounts the share of an smb:// image with the kernel's cifs.
store_mount_smb() {
	rest=${job_image#smb://}
	authority=${rest%%/*}
	rest=${rest#"$authority"}
	share=${rest#/}
	share=${share%%/*}
	path=${rest#/"$share"}
	# The URL without its password, for messages.
	case $authority in
	*:*@*) store_url="smb://${authority%%:*}:***@${authority##*@}$rest" ;;
	*) store_url=$job_image ;;
	esac
	case $share/$path in
	*/) job_fail 2 "ntfsclone.image=$store_url: expected smb://[user[:password]@]host/share/path/file.img" ;;
	?*//?*) ;;
	*) job_fail 2 "ntfsclone.image=$store_url: expected smb://[user[:password]@]host/share/path/file.img" ;;
	esac
	userinfo=""
	case $authority in
	*@*)
		userinfo=${authority%@*}
		authority=${authority##*@}
		;;
	esac
	store_host_port "$authority"
	user=guest pass="" domain=""
	if [ -n "$userinfo" ]; then
		user=${userinfo%%:*}
		case $userinfo in *:*) pass=${userinfo#*:} ;; esac
	fi
	case $user in
	*\;*)
		domain=${user%%;*}
		user=${user#*;}
		;;
	esac
	user=$(store_unescape "$user")
	domain=$(store_unescape "$domain")
	share=$(store_unescape "$share")
	path=$(store_unescape "$path")
	pass=$(store_unescape "$pass")
	case $user$pass$domain in
	*,*) job_fail 2 "ntfsclone.image=$store_url: busybox mount cannot pass a comma in a user name or password" ;;
	esac
	job_network
	addr=$(store_addr "$host") || job_fail 2 "cannot resolve the SMB server's name $host (DNS)"
	store_name=//$host/$share
	[ "$addr" = "$host" ] || store_name="$store_name ($addr)"
	job_img_dev=$store_name
	o="$1,user=$user,pass=$pass${domain:+,domain=$domain}${port:+,port=$port}"
	if ! mount -t cifs "//$addr/$share" "$job_mnt" -o "$o${job_mountopts:+,$job_mountopts}" >"$job_dir/mount.err" 2>&1; then
		dmesg 2>/dev/null | grep -i cifs | tail -n 3
		sed 's/^/  /' "$job_dir/mount.err"
		job_fail 2 "cannot mount the SMB share $store_name as user $user${domain:+ (domain $domain)}"
	fi
	job_mounted=1
	img_path=$job_mnt$path
}

# store_mount_nfs ro|rw: mounts the NFS server of an nfs:// image (v4 pseudo-root, or v3 export).
store_mount_nfs() {
	rest=${job_image#nfs://}
	authority=${rest%%/*}
	path=$(store_unescape "${rest#"$authority"}")
	store_url=$job_image
	case $path in
	/*[!/]) ;;
	*) job_fail 2 "ntfsclone.image=$job_image: expected nfs://host[:port]/path/on/server/file.img" ;;
	esac
	store_host_port "$authority"
	job_network
	addr=$(store_addr "$host") || job_fail 2 "cannot resolve the NFS server's name $host (DNS)"
	o=$1${port:+,port=$port}${job_mountopts:+,$job_mountopts}
	if mount -t nfs4 -o "$o,vers=4,addr=$addr" "$addr:/" "$job_mnt" >"$job_dir/mount.err" 2>&1; then
		store_nfs_mounted "$host:/ (NFS v4)" "$path"
		return 0
	fi
	v4=$(tail -n 1 "$job_dir/mount.err")
	# v3: the longest leading directory that is exported (one try each, no retries).
	d=${path%/*}
	while :; do
		if mount -t nfs -o "$o,vers=3,nolock,retry=0" "$addr:${d:-/}" "$job_mnt" >"$job_dir/mount.err" 2>&1; then
			store_nfs_mounted "$host:${d:-/} (NFS v3)" "${path#"$d"}"
			return 0
		fi
		[ -n "$d" ] || break
		d=${d%/*}
	done
	dmesg 2>/dev/null | grep -i nfs | tail -n 3
	say "  NFS v4: ${v4:-failed}"
	say "  NFS v3: $(tail -n 1 "$job_dir/mount.err")"
	job_fail 2 "cannot mount the NFS server $host${port:+ port $port} ($addr): no NFS v4, and no NFS v3 export holds $path"
}

# store_host_port AUTHORITY: sets host and port (empty when none) from HOST[:PORT].
store_host_port() {
	host=$1 port=""
	case $1 in
	*:*)
		host=${1%:*}
		port=${1##*:}
		;;
	esac
}

# store_nfs_mounted NAME PATH: the NFS mount NAME (said on the console) is up; PATH is the image
# file's path in it.
store_nfs_mounted() {
	store_name=$1
	job_img_dev=$1
	job_mounted=1
	img_path=$job_mnt$2
	say "image store: $1"
}

# store_umount: unmounts $job_mnt; after ntfs-3g, waits for it to write everything and exit.
store_umount() {
	umount "$job_mnt" || return 1
	if [ -n "$store_fuse" ]; then
		store_fuse=""
		n=0
		while pidof ntfs-3g >/dev/null 2>&1; do
			[ "$n" -lt 60 ] || return 1
			sleep 1
			n=$((n + 1))
		done
	fi
	return 0
}

# store_part NAME I: the name of part I (NAME for 0, then NAME.001 ... NAME.999).
store_part() {
	if [ "$2" = 0 ]; then
		printf '%s' "$1"
	else
		printf '%s.%03d' "$1" "$2"
	fi
}

# store_is_gz NAME: true when NAME ends in .gz (a gzip'd image).
store_is_gz() {
	case $1 in
	*.gz) return 0 ;;
	esac
	return 1
}

# store_write NAME: writes stdin (gzip'd for a .gz NAME) to NAME, in parts of $store_split bytes
# when that is set.
store_write() {
	case $1 in
	*.gz) gzip -c | store_write_parts "$1" ;;
	*) store_write_parts "$1" ;;
	esac
}

# store_write_parts NAME: stdin to NAME, NAME.001, ... ($store_split bytes each; one file without).
store_write_parts() {
	if [ -z "$store_split" ]; then
		cat >"$1"
		return
	fi
	i=0
	while :; do
		part=$(store_part "$1" "$i")
		dd of="$part" bs=1048576 count="$store_split" iflag=count_bytes,fullblock 2>"$job_dir/dd.err" || {
			grep -v 'records\|bytes' "$job_dir/dd.err" >&2
			return 1
		}
		got=$(stat -c %s "$part") || return 1
		if [ "$got" -lt "$store_split" ]; then
			# The input ended: an empty part after full ones is not kept.
			[ "$got" != 0 ] || [ "$i" = 0 ] || rm -f "$part"
			return 0
		fi
		i=$((i + 1))
		if [ "$i" -gt 999 ]; then
			echo "more than 1000 parts: choose a larger ntfsclone.split" >&2
			return 1
		fi
	done
}

# store_read NAME: the image NAME (its parts NAME, NAME.001, ... one after the other; gunzip'd for
# a .gz NAME) on stdout.
store_read() {
	case $1 in
	*.gz) store_read_parts "$1" | gunzip -c ;;
	*) store_read_parts "$1" ;;
	esac
}

store_read_parts() {
	i=0
	while part=$(store_part "$1" "$i") && [ -e "$part" ]; do
		cat "$part" || return
		i=$((i + 1))
	done
}

# store_drop_caches: writes out and forgets cached file data, so that a read-back reads the store.
store_drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
}

# store_verify IMAGE: reads a saved image back (ntfsclone -r -n), unless ntfsclone.verify=no;
# sets rc.
store_verify() {
	case $job_verify in
	no | 0 | off) return 0 ;;
	esac
	store_drop_caches
	say "${job_name:-ntfsclone rescue}: reading the image back to check it"
	# $job_disk: --disk for a disk job's image (unquoted: it is empty or one word).
	# shellcheck disable=SC2086
	if [ -b "$1" ] || { [ ! -e "$1.001" ] && ! store_is_gz "$1"; }; then
		job_tool $job_disk --restore-image --no-action "$1"
	else
		job_tool_from store_read "$1" $job_disk --restore-image --no-action -
	fi
	[ "$rc" = 0 ] || say "${job_name:-ntfsclone rescue}: the image read back from ${store_name:-$1} is not valid"
}

# store_mkdirs DIR: creates DIR and its missing parents, making only those that do not exist (an
# NFS v4 pseudo file system refuses even to make a directory that is there: mkdir -p fails).
store_mkdirs() {
	[ -d "$1" ] && return 0
	store_mkdirs "$(dirname "$1")" || return 1
	mkdir "$1"
}

# store_save ARGS...: the save job to an image file (ARGS: the extra ntfsclone options).
store_save() {
	store_mount rw
	if [ "$store_split" = default ]; then
		store_split=""
		# FAT holds no file of 4 GiB.
		[ "$store_fs" != vfat ] || store_split=$((4095 * 1048576))
	fi
	dir=$(dirname "$img_path")
	store_mkdirs "$dir" || job_fail 2 "cannot create the directory ${dir#"$job_mnt"} on $store_name"
	# The parts of an older image of this name would be read after the new one.
	for part in "$img_path".[0-9][0-9][0-9]; do
		[ ! -e "$part" ] || rm -f "$part" ||
			job_fail 2 "cannot remove ${part#"$job_mnt"} (an older image's part) on $store_name"
	done
	if [ -n "$store_split" ] || store_is_gz "$img_path"; then
		job_tool_to store_write "$img_path" "$@" --save-image --output - "$job_src_dev"
	else
		job_tool "$@" --save-image --overwrite "$img_path" "$job_src_dev"
	fi
	sync
	[ "$rc" != 0 ] || store_verify "$img_path"
	job_umount_store
}

# store_restore ARGS...: the restore job from an image file (ARGS: the extra ntfsclone options).
store_restore() {
	store_mount ro
	[ -f "$img_path" ] || job_fail 2 "no image file ${img_path#"$job_mnt"} on $store_name"
	if [ -e "$img_path.001" ] || store_is_gz "$img_path"; then
		job_tool_from store_read "$img_path" "$@" --restore-image --overwrite "$job_tgt_dev" -
	else
		job_tool "$@" --restore-image --overwrite "$job_tgt_dev" "$img_path"
	fi
	job_umount_store
}

# shellcheck shell=sh
# The rescue system's menu for people at the console, shown by /init when the kernel command line
# has no job. Sourced after ntfsclone-job.sh: it only defines functions.
#
#   (menu_main)   lists the disks and partitions, asks for mode, source, target and image store
#                 by number, prints the ntfsclone command and the job parameters that would run it
#                 unattended, asks for the target's name as confirmation, runs the job with job_run
#                 (same output and markers as an unattended job) and prints a summary line; then
#                 shows the menu again. Returns on `q` or at the end of input (the caller then gives
#                 the shell). Meant for a subshell: /init is PID 1.
#
# The file system type and label come from the volume's own first bytes (busybox has no blkid):
# NTFS (label from $Volume), FAT, exFAT, ext2/3/4, swap, LUKS, BitLocker; blkid, when present,
# names what these checks do not know.

# menu_bytes DEV SKIP COUNT: COUNT 512-byte sectors of DEV from sector SKIP, as decimal numbers.
menu_bytes() {
	dd if="$1" bs=512 skip="$2" count="$3" 2>/dev/null | od -An -v -tu1
}

# The awk helpers: b[] holds the bytes read, le(o, n) reads an n-byte little-endian number and
# txt(o, n) a NUL/space padded text, non-printable bytes shown as '?'.
# shellcheck disable=SC2016 # awk's own text
menu_awk_lib='
{ for (i = 1; i <= NF; i++) b[nb++] = $i + 0 }
function le(o, n,   v, i) { v = 0; for (i = n - 1; i >= 0; i--) v = v * 256 + b[o + i]; return v }
function is(o, s,   i) { for (i = 1; i <= length(s); i++) if (b[o + i - 1] != ord[substr(s, i, 1)]) return 0; return 1 }
function pow2(k,   v) { v = 1; while (k-- > 0) v *= 2; return v }
function txt(o, n,   s, i, c) {
	s = ""
	for (i = 0; i < n; i++) { c = b[o + i]; if (c == 0) break; s = s ((c < 32 || c > 126) ? "?" : sprintf("%c", c)) }
	sub(/ +$/, "", s)
	return s
}
BEGIN { for (i = 32; i < 127; i++) ord[sprintf("%c", i)] = i }
'

# menu_probe DEV: sets menu_fs (file system type, or empty) and menu_label.
# shellcheck disable=SC2034 # menu_label is read through menu_add's eval
menu_probe() {
	menu_fs="" menu_label=""
	out=$(menu_bytes "$1" 0 8 | awk "$menu_awk_lib"'
	END {
		if (nb < 4096) exit
		if (is(3, "NTFS    ")) {
			# Where $Volume (MFT record 3) is: its sector and length in sectors.
			bps = le(11, 2); spc = b[13]; if (spc > 128) spc = pow2(256 - spc)
			cl = bps * spc; c = b[64]; rec = (c < 128) ? c * cl : pow2(256 - c)
			if (bps < 256 || cl == 0 || rec < 512 || rec > 65536) { print "ntfs"; exit }
			printf "ntfs\t%.0f\t%d\n", (le(48, 8) * cl + 3 * rec) / 512, rec / 512
		} else if (is(3, "-FVE-FS-")) print "BitLocker"
		else if (is(3, "EXFAT   ")) print "exfat"
		else if (is(82, "FAT32")) { l = txt(71, 11); print "vfat\t" (l == "NO NAME" ? "" : l) }
		else if (is(54, "FAT1")) { l = txt(43, 11); print "vfat\t" (l == "NO NAME" ? "" : l) }
		else if (b[1080] == 83 && b[1081] == 239) {
			t = "ext2"; if (le(1116, 4) % 8 >= 4) t = "ext3"; if (int(le(1120, 4) / 64) % 2) t = "ext4"
			print t "\t" txt(1144, 16)
		} else if (is(4086, "SWAPSPACE2")) print "swap"
		else if (is(0, "LUKS") && b[4] == 186 && b[5] == 190) print "crypto_LUKS"
		else if (b[510] == 85 && b[511] == 170) print (is(512, "EFI PART") ? "(gpt)" : "(dos)")
	}')
	menu_fs=$(printf '%s\n' "$out" | cut -f1)
	case $out in
	ntfs"	"*)
		set -- "$1" "$(printf '%s\n' "$out" | cut -f2)" "$(printf '%s\n' "$out" | cut -f3)"
		menu_label=$(menu_bytes "$1" "$2" "$3" | awk "$menu_awk_lib"'
		END {
			if (!is(0, "FILE")) exit
			# The update sequence array puts the last two bytes of each 512-byte block back.
			u = le(4, 2); n = le(6, 2)
			for (i = 1; i < n && i * 512 <= nb; i++) { b[i * 512 - 2] = b[u + 2 * i]; b[i * 512 - 1] = b[u + 2 * i + 1] }
			a = le(20, 2)
			while (a + 24 <= nb) {
				t = le(a, 4); l = le(a + 4, 4)
				if (t == 4294967295 || l < 24) exit
				if (t == 96 && b[a + 8] == 0) {
					# $VOLUME_NAME: UTF-16LE, written as UTF-8 (controls as "?").
					o = a + le(a + 20, 2); n = le(a + 16, 4); s = ""
					for (i = 0; i + 1 < n && o + i + 1 < nb; i += 2) {
						c = le(o + i, 2)
						if (c < 32 || c == 127 || (c >= 55296 && c < 57344)) s = s "?"
						else if (c < 128) s = s sprintf("%c", c)
						else if (c < 2048) s = s sprintf("%c%c", 192 + int(c / 64), 128 + c % 64)
						else s = s sprintf("%c%c%c", 224 + int(c / 4096), 128 + int(c / 64) % 64, 128 + c % 64)
					}
					print s
					exit
				}
				a += l
			}
		}')
		;;
	*) menu_label=$(printf '%s\n' "$out" | cut -f2 -s) ;;
	esac
	if [ -z "$menu_fs" ] && command -v blkid >/dev/null 2>&1; then
		out=$(blkid "$1" 2>/dev/null)
		menu_fs=$(printf '%s\n' "$out" | sed -n 's/.* TYPE="\([^"]*\)".*/\1/p')
		menu_label=$(printf '%s\n' "$out" | sed -n 's/.* LABEL="\([^"]*\)".*/\1/p' | tr -d '\000-\037')
	fi
}

# menu_human SECTORS: a size in KiB, MiB, GiB or TiB with one decimal.
menu_human() {
	awk -v s="$1" 'BEGIN { b = s * 512; split("B KiB MiB GiB TiB PiB", u, " "); i = 1
		while (b >= 1024 && i < 6) { b /= 1024; i++ }
		printf (i == 1 ? "%d %s\n" : "%.1f %s\n"), b, u[i] }'
}

# menu_add NAME DISK: one numbered entry for the block device NAME (a disk, or a partition of DISK).
# shellcheck disable=SC2034 # boot is read through eval
menu_add() {
	sectors=$(cat "/sys/class/block/$1/size" 2>/dev/null)
	case $sectors in '' | *[!0-9]*) return ;; esac
	# Empty drives and the 1 KiB stub of an extended partition are left out.
	[ "$sectors" -gt 2 ] || return
	menu_n=$((menu_n + 1))
	menu_probe "/dev/$1"
	# The model (SCSI, ATA, USB, NVMe), the card's name (MMC), or else the driver (virtio_blk).
	model=$(sed 's/[[:space:]]*$//' "/sys/block/$2/device/model" 2>/dev/null || cat "/sys/block/$2/device/name" 2>/dev/null)
	[ -n "$model" ] || model=$(basename "$(readlink "/sys/block/$2/device/driver" 2>/dev/null)" 2>/dev/null)
	model=$(printf '%s' "$model" | tr -d '\000-\037')
	boot=""
	if job_is_boot_medium "/dev/$1"; then boot=1; fi
	eval "menu_name_$menu_n=\$1 menu_sectors_$menu_n=\$sectors menu_fs_$menu_n=\$menu_fs"
	eval "menu_label_$menu_n=\$menu_label menu_model_$menu_n=\$model menu_boot_$menu_n=\$boot"
}

# menu_scan: finds the disks and their partitions (in partition order); menu_n is their number.
menu_scan() {
	menu_n=0
	for d in /sys/block/*; do
		disk=${d##*/}
		case $disk in
		'*' | loop* | ram* | zram* | sr* | fd* | nbd*) continue ;;
		esac
		menu_add "$disk" "$disk"
		parts=$(for p in "$d/$disk"*; do
			[ -r "$p/partition" ] && echo "$(cat "$p/partition") ${p##*/}"
		done | sort -n | cut -d' ' -f2)
		for p in $parts; do
			menu_add "$p" "$disk"
		done
	done
}

# menu_get FIELD N: the field (name, sectors, fs, label, model, boot) of entry N.
menu_get() {
	eval "printf '%s\n' \"\$menu_$1_$2\""
}

# menu_show: the numbered list.
menu_show() {
	echo ""
	echo "Disks and partitions:"
	if [ "$menu_n" = 0 ]; then
		echo "  (none found: r rescans, e.g. after plugging in a USB disk)"
	fi
	printf '  %3s  %-14s %10s  %-11s %-18s %s\n' "#" device size filesystem label model
	i=1
	while [ "$i" -le "$menu_n" ]; do
		label=$(menu_get label "$i")
		model=$(menu_get model "$i")
		[ -z "$(menu_get boot "$i")" ] || model="${model:+$model, }boot medium"
		label=${label:+\"$label\"}
		# printf pads bytes: a UTF-8 label gets one more space per continuation byte.
		pad=$(printf '%s' "$label" | tr -dc '\200-\277' | wc -c)
		printf '  %3s  %-14s %10s  %-11s %-*s %s\n' "$i" "/dev/$(menu_get name "$i")" \
			"$(menu_human "$(menu_get sectors "$i")")" "$(menu_get fs "$i" | sed 's/^$/-/')" \
			"$((18 + pad))" "$label" "$model"
		i=$((i + 1))
	done
}

# menu_read PROMPT: prints PROMPT and reads a line into menu_ans (blanks trimmed).
# Returns 1 at the end of input, 2 for q.
menu_read() {
	printf '%s' "$1"
	if ! read -r menu_ans; then
		echo ""
		return 1
	fi
	menu_ans=$(printf '%s' "$menu_ans" | tr -d '\r')
	case $menu_ans in
	q | Q | quit) return 2 ;;
	esac
	return 0
}

# menu_pick WHAT CHECK: asks for an entry number until CHECK N (a function) accepts one; sets
# menu_pick. Returns as menu_read.
menu_pick() {
	while :; do
		menu_read "$1 [1-$menu_n, q = shell]: " || return
		case $menu_ans in
		'' | *[!0-9]* | 0*) echo "  not a number from the list: $menu_ans" ;;
		*)
			if [ "$menu_ans" -gt "$menu_n" ]; then
				echo "  no entry $menu_ans"
			elif "$2" "$menu_ans"; then
				menu_pick=$menu_ans
				return 0
			fi
			;;
		esac
	done
}

# Checks of a picked entry (they say why they refuse it).
menu_ok_source() {
	[ "$(menu_get fs "$1")" = ntfs ] && return 0
	echo "  /dev/$(menu_get name "$1") is not an NTFS volume"
	return 1
}
menu_ok_written() {
	dev=/dev/$(menu_get name "$1")
	if [ -n "$(menu_get boot "$1")" ]; then
		echo "  $dev holds the medium this system booted from"
		return 1
	fi
	if [ -n "$menu_src" ] && job_overlaps "$dev" "$menu_src"; then
		echo "  $dev is the source $menu_src (or holds it)"
		return 1
	fi
	return 0
}
menu_ok_target() {
	menu_ok_written "$1" || return 1
	if [ -n "$menu_store" ] && job_overlaps "/dev/$(menu_get name "$1")" "$menu_store"; then
		echo "  /dev/$(menu_get name "$1") holds the image store $menu_store"
		return 1
	fi
	return 0
}
menu_ok_store() {
	fs=$(menu_get fs "$1")
	case $fs in
	'' | '('* | swap | crypto_LUKS | BitLocker)
		echo "  /dev/$(menu_get name "$1") has no file system to keep an image file on"
		return 1
		;;
	esac
	[ "$menu_mode" != save ] || menu_ok_written "$1"
}

# menu_images DEV: lists the image files (*.img, *.img.gz, at most 3 directories deep) on DEV's
# file system, mounted read-only for the moment, numbered; sets menu_nimg and menu_img_N.
menu_images() {
	menu_nimg=0
	mkdir -p "$job_mnt"
	mount -o ro "$1" "$job_mnt" 2>/dev/null || return 0
	list=$(cd "$job_mnt" && find . -maxdepth 4 -type f \( -name '*.img' -o -name '*.img.gz' \) 2>/dev/null |
		sed 's|^\.||' | grep -v '[[:space:]\\"'"'"']' | sort | head -n 40)
	set -f
	for f in $list; do
		menu_nimg=$((menu_nimg + 1))
		eval "menu_img_$menu_nimg=\$f"
		[ "$menu_nimg" -gt 1 ] || echo "Image files on $1:"
		printf '  %3s  %-40s %s\n' "$menu_nimg" "$f" \
			"$(menu_human "$(($(stat -c %s "$job_mnt$f" 2>/dev/null || echo 0) / 512))")"
	done
	set +f
	umount "$job_mnt"
}

# menu_path DEFAULT: asks for the image file's path on the store (no blanks: it goes on the
# kernel command line), or its number in the list of menu_images; sets menu_path.
menu_path() {
	while :; do
		if [ "${menu_nimg:-0}" -gt 0 ]; then
			n=$menu_nimg
			[ "$n" = 1 ] || n=1-$n
			menu_read "image file on the store [$n or a path${1:+, Enter = $1}]: " || return
		else
			menu_read "image file on the store${1:+ [$1]}: " || return
		fi
		[ -n "$menu_ans" ] || menu_ans=$1
		case $menu_ans in
		'') ;;
		[1-9] | [1-9][0-9])
			if [ "$menu_ans" -le "${menu_nimg:-0}" ]; then
				eval "menu_path=\$menu_img_$menu_ans"
				return 0
			fi
			echo "  no image $menu_ans"
			;;
		/*[[:space:]\'\"\\]* | /*/ | */../* | */..) echo "  a path like /images/disk.img (no blanks, quotes or ..)" ;;
		/?*)
			menu_path=$menu_ans
			return 0
			;;
		*) echo "  the path starts with / (e.g. /images/disk.img)" ;;
		esac
	done
}

# menu_url: asks for an http:// or https:// address; sets menu_path.
menu_url() {
	while :; do
		menu_read "image address (http://host:port/file.img): " || return
		case $menu_ans in
		*[[:space:]\'\"\\]*) echo "  no blanks or quotes, please" ;;
		http://?* | https://?*)
			menu_path=$menu_ans
			return 0
			;;
		*) echo "  an address starting with http:// or https://" ;;
		esac
	done
}

# menu_uptime: centiseconds since boot.
menu_uptime() {
	up=$(cut -d' ' -f1 /proc/uptime)
	echo "$((${up%.*} * 100 + 1${up#*.} - 100))"
}

# menu_written NAME: sectors written to block device NAME since boot (field 7 of its stat).
menu_written() {
	awk '{ print $7 }' "/sys/class/block/$1/stat" 2>/dev/null
}

# menu_once: one pass: choices, command, confirmation, the job, the summary.
# Returns 0 (done or cancelled: show the menu again), 1 (end of input) or 2 (q).
menu_once() {
	menu_src="" menu_store="" menu_path="" menu_tgt=""
	echo "Modes: 1 clone (volume to volume)  2 save (volume to image file)  3 restore (image file to volume)"
	while :; do
		menu_read "mode [1-3, r = rescan, q = shell]: " || return
		case $menu_ans in
		1 | clone) menu_mode=clone ;;
		2 | save) menu_mode=save ;;
		3 | restore) menu_mode=restore ;;
		r | R) return 0 ;;
		'') continue ;;
		*)
			echo "  not a mode: $menu_ans"
			continue
			;;
		esac
		break
	done
	if [ "$menu_mode" != restore ]; then
		menu_pick "source (NTFS volume)" menu_ok_source || return
		menu_src=/dev/$(menu_get name "$menu_pick")
	fi
	if [ "$menu_mode" != clone ]; then
		while :; do
			if [ "$menu_mode" = restore ]; then
				menu_read "image store: disk or partition [1-$menu_n], h = HTTP server, q = shell: " || return
			else
				menu_read "image store: disk or partition [1-$menu_n, q = shell]: " || return
			fi
			case $menu_ans in
			h | H)
				[ "$menu_mode" = restore ] && break
				echo "  saving over HTTP is not supported"
				;;
			'' | *[!0-9]* | 0*) echo "  not a number from the list: $menu_ans" ;;
			*)
				if [ "$menu_ans" -gt "$menu_n" ]; then
					echo "  no entry $menu_ans"
				elif menu_ok_store "$menu_ans"; then
					menu_store=/dev/$(menu_get name "$menu_ans")
					break
				fi
				;;
			esac
		done
		if [ -z "$menu_store" ]; then
			menu_url || return
		elif [ "$menu_mode" = save ]; then
			menu_nimg=0
			menu_path "/images/${menu_src##*/}.img" || return
		else
			menu_images "$menu_store"
			menu_path "" || return
		fi
	fi
	if [ "$menu_mode" != save ]; then
		menu_pick "target (overwritten)" menu_ok_target || return
		menu_tgt=/dev/$(menu_get name "$menu_pick")
	fi

	# What will run, and the same job for the kernel command line.
	case $menu_mode in
	clone)
		cmd="ntfsclone --overwrite $menu_tgt $menu_src"
		params="ntfsclone.mode=clone ntfsclone.source=$menu_src ntfsclone.target=$menu_tgt"
		img=""
		;;
	save)
		img=$menu_store:$menu_path
		case $menu_path in
		*.gz) cmd="ntfsclone --save-image --output - $menu_src | gzip -c >$job_mnt/$menu_path" ;;
		*) cmd="ntfsclone --save-image --overwrite $job_mnt/$menu_path $menu_src" ;;
		esac
		cmd="$cmd  (with $menu_store mounted on $job_mnt)"
		params="ntfsclone.mode=save ntfsclone.source=$menu_src ntfsclone.image=$img"
		;;
	restore)
		if [ -z "$menu_store" ]; then
			img=$menu_path
			case $menu_path in
			*.gz) cmd="wget -q -O - $img | gunzip -c | ntfsclone --restore-image --overwrite $menu_tgt -" ;;
			*) cmd="wget -q -O - $img | ntfsclone --restore-image --overwrite $menu_tgt -" ;;
			esac
		else
			img=$menu_store:$menu_path
			case $menu_path in
			*.gz) cmd="gunzip -c $job_mnt/$menu_path | ntfsclone --restore-image --overwrite $menu_tgt -" ;;
			*) cmd="ntfsclone --restore-image --overwrite $menu_tgt $job_mnt/$menu_path" ;;
			esac
			cmd="$cmd  (with $menu_store mounted on $job_mnt)"
		fi
		params="ntfsclone.mode=restore ntfsclone.target=$menu_tgt ntfsclone.image=$img"
		;;
	esac
	echo ""
	echo "command:        $cmd"
	echo "job parameters: $params"
	echo "  (for an unattended run, e.g. make iso JOB=\"...\"; disk names may change between boots:"
	echo "  LABEL=name or UUID=id in place of /dev/... do not)"

	# The device written to, named by the person to confirm.
	if [ "$menu_mode" = save ]; then
		what=$menu_store
		echo "This writes $menu_path on $what (an existing file of that name is replaced)."
	else
		what=$menu_tgt
		echo "This overwrites everything on $what."
	fi
	menu_read "Type ${what#/dev/} to go on (anything else cancels): " || return
	case $menu_ans in
	"${what#/dev/}" | "$what") ;;
	*)
		echo "cancelled: nothing was written"
		return 0
		;;
	esac

	# The job, exactly as an unattended one (job_run prints the commands, the progress and the marker).
	name=${what#/dev/}
	w0=$(menu_written "$name")
	t0=$(menu_uptime)
	(
		job_parse "$params ntfsclone.wait=5"
		# shellcheck disable=SC2034 # read by job_run
		job_name="ntfsclone rescue" job_dir=/tmp/ntfsclone-job job_volid=NTFSCLONE_RESCUE
		job_run
	)
	rc=$?
	t1=$(menu_uptime)
	w1=$(menu_written "$name")
	bytes=$(((${w1:-0} - ${w0:-0}) * 512))
	awk -v b="$bytes" -v cs="$((t1 - t0))" -v w="$what" -v rc="$rc" -v m="$menu_mode" 'BEGIN {
		s = cs / 100; if (s < 0.01) s = 0.01
		printf "summary: %s %s, %.0f bytes (%.1f MiB) written to %s in %.1f s (%.1f MiB/s)\n",
			m, (rc == 0 ? "ok" : "failed (exit " rc ")"), b, b / 1048576, w, s, b / 1048576 / s }'
	return 0
}

# menu_start: the menu on the console; with a second screen (echo2, /init's monitor when the
# console is a serial port) first asks on both for Enter and shows the menu where it was pressed
# (the job's lines still go to both). Returns when the menu does.
menu_start() {
	if [ "${echo2:-/dev/null}" = /dev/null ]; then
		(menu_main)
		return 0
	fi
	rm -rf /tmp/ntfsclone-menu
	mkdir -p /tmp/ntfsclone-menu
	pids=""
	for tty in /dev/console "$echo2"; do
		# shellcheck disable=SC2094 # a terminal: read and written
		(
			printf '\nPress Enter for the menu on this screen.\n'
			read -r _ && mkdir /tmp/ntfsclone-menu/lock 2>/dev/null && echo "$tty" >/tmp/ntfsclone-menu/tty
		) <"$tty" >"$tty" 2>&1 &
		pids="$pids $!"
	done
	# Until one screen answers (or both reach the end of their input).
	while [ ! -s /tmp/ntfsclone-menu/tty ]; do
		alive=""
		for p in $pids; do
			! kill -0 "$p" 2>/dev/null || alive=1
		done
		[ -n "$alive" ] || [ -s /tmp/ntfsclone-menu/tty ] || return 0
		sleep 1
	done
	for p in $pids; do
		kill "$p" 2>/dev/null
	done
	tty=$(cat /tmp/ntfsclone-menu/tty)
	if [ "$tty" = /dev/console ]; then
		(menu_main)
	else
		# shellcheck disable=SC2094 # a terminal: read and written
		(echo2=/dev/console menu_main) <"$tty" >"$tty" 2>&1
	fi
}

# menu_main: the menu, again after each job or cancel, until q or the end of input.
menu_main() {
	job_mnt=${job_mnt:-/mnt/image}
	echo ""
	echo "ntfsclone menu: choose by number; q leaves to the shell."
	while :; do
		menu_scan
		menu_show
		menu_once
		case $? in
		0) ;;
		*) return 0 ;;
		esac
	done
}

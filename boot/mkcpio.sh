#!/bin/sh
# Writes a "newc" cpio archive (the initramfs format) to stdout from a gen_init_cpio-style list,
# without root: owners, modes, device numbers and mtimes come from the list, not from the disk.
#
#   dir   NAME MODE UID GID
#   file  NAME SOURCE MODE UID GID
#   slink NAME TARGET MODE UID GID
#   nod   NAME MODE UID GID c|b MAJ MIN
#
# Every entry gets mtime $SOURCE_DATE_EPOCH (default 0) and a sequential inode number, so the
# same list and the same files always give the same bytes.
set -eu
mtime=${SOURCE_DATE_EPOCH:-0}
ino=300000

# pad N: writes the NUL bytes that bring an offset of N bytes to a multiple of 4.
pad() {
	case $(($1 % 4)) in
	1) printf '\0\0\0' ;;
	2) printf '\0\0' ;;
	3) printf '\0' ;;
	esac
}

# entry NAME MODE UID GID NLINK SIZE DEVMAJ DEVMIN: the 110-byte header, the name, padding.
entry() {
	name=${1#/}
	ino=$((ino + 1))
	namesize=$((${#name} + 1))
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		"$ino" "$2" "$3" "$4" "$5" "$mtime" "$6" 0 0 "$7" "$8" "$namesize" 0
	printf '%s\0' "$name"
	pad $((110 + namesize))
}

while read -r kind name a b c d e f _; do
	case $kind in
	'' | '#'*) continue ;;
	dir) entry "$name" $((0040000 | 0$a)) "$b" "$c" 2 0 0 0 ;;
	file)
		size=$(stat -L -c %s "$a")
		entry "$name" $((0100000 | 0$b)) "$c" "$d" 1 "$size" 0 0
		cat "$a"
		pad "$size"
		;;
	slink)
		entry "$name" $((0120000 | 0$b)) "$c" "$d" 1 ${#a} 0 0
		printf '%s' "$a"
		pad ${#a}
		;;
	nod)
		case $d in c) type=0020000 ;; b) type=0060000 ;; *) echo "mkcpio: bad node type $d" >&2; exit 1 ;; esac
		entry "$name" $((type | 0$a)) "$b" "$c" 1 0 "$e" "$f"
		;;
	*) echo "mkcpio: unknown entry kind '$kind'" >&2; exit 1 ;;
	esac
done

# The trailer entry ends the archive.
ino=0
entry TRAILER!!! 0 0 0 1 0 0 0

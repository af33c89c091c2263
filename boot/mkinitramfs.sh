#!/bin/sh
# Builds boot/out/initramfs.img (zstd or gzip newc cpio) and boot/out/vmlinuz, without root.
#
#   boot/mkinitramfs.sh OUTDIR [BINARY]
#
# BINARY defaults to the static musl build of ntfsclone. A dynamically linked binary (e.g. the
# reference /usr/sbin/ntfsclone, to try the boot plumbing) is accepted: its libraries are copied.
# KVER picks the kernel (default: newest /lib/modules/* with a matching /boot/vmlinuz-*).
# Reproducible: sorted list, fixed owners and mtimes ($SOURCE_DATE_EPOCH, default 0), no timestamps
# in the compressed stream.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: mkinitramfs.sh OUTDIR [BINARY]}
bin=${2:-$here/../target/x86_64-unknown-linux-musl/release/ntfsclone}
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}"
export LC_ALL=C

die() { echo "mkinitramfs: $*" >&2; exit 1; }
[ -x "$bin" ] || die "no binary at $bin (cargo build --release --target x86_64-unknown-linux-musl)"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || die "busybox not found (apt-get install busybox-static)"
! ldd "$busybox" 2>/dev/null | grep -q '=>' || die "$busybox is not static (apt-get install busybox-static)"

# The kernel: newest version that has both modules and a vmlinuz.
if [ -z "${KVER:-}" ]; then
	for d in $(find /lib/modules -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V -r); do
		if [ -f "/boot/vmlinuz-$d" ] && [ -f "/lib/modules/$d/modules.dep" ]; then KVER=$d; break; fi
	done
fi
[ -n "${KVER:-}" ] || die "no kernel: need /boot/vmlinuz-V and /lib/modules/V (apt-get install linux-image-amd64)"
mods=/lib/modules/$KVER
[ -r "/boot/vmlinuz-$KVER" ] || die "/boot/vmlinuz-$KVER is not readable"

mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/mkinitramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
list=$work/list

# Directories of the root filesystem.
{
	for d in /bin /dev /etc /lib /lib/modules "/lib/modules/$KVER" /mnt /mnt/image /proc /root /run /sys /tmp \
		/usr /usr/share /usr/share/udhcpc /var; do
		echo "dir $d 755 0 0"
	done
	# The kernel opens /dev/console for PID 1 before /init mounts devtmpfs.
	echo "nod /dev/console 600 0 0 c 5 1"
	echo "slink /sbin bin 777 0 0"
	echo "slink /usr/bin ../bin 777 0 0"
	echo "slink /usr/sbin ../bin 777 0 0"
	echo "slink /lib64 lib 777 0 0"

	# Our files: /init, the DHCP script, busybox and its applets, the tool.
	echo "file /init $here/init 755 0 0"
	echo "file /usr/share/udhcpc/default.script $here/udhcpc.script 755 0 0"
	echo "file /bin/busybox $busybox 755 0 0"
	for a in $("$busybox" --list); do
		[ "$a" = busybox ] || echo "slink /bin/$a busybox 777 0 0"
	done
	echo "file /bin/ntfsclone $bin 755 0 0"
} >"$list"
# A dynamic binary brings its libraries (the paths the loader expects).
if ldd "$bin" 2>/dev/null | grep -q '=>'; then
	ldd "$bin" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p' | sort -u | while read -r lib; do
		dir=$(dirname "$lib")
		p=""
		for part in $(echo "$dir" | tr / ' '); do p=$p/$part; echo "dir $p 755 0 0"; done
		echo "file $lib $(readlink -f "$lib") 755 0 0"
	done >>"$list"
fi

# Kernel modules: each listed name, its dependencies first (modules.dep lists them deepest last).
: >"$work/order"
grep -v '^[[:space:]]*\(#\|$\)' "$here/modules.list" | while read -r name; do
	want=$(echo "$name" | tr - _)
	line=$(awk -F: -v w="$want" '{ n = $1; sub(".*/", "", n); sub("\\.ko.*", "", n); gsub("-", "_", n); if (n == w) { print; exit } }' "$mods/modules.dep")
	if [ -z "$line" ]; then
		if grep -q "/$name.ko\|/$(echo "$name" | tr _ -).ko" "$mods/modules.builtin"; then
			echo "mkinitramfs: note: $name is built into $KVER" >&2
		else
			echo "mkinitramfs: note: $name is not in $KVER, skipped" >&2
		fi
		continue
	fi
	mod=${line%%:*}
	deps=${line#*:}
	for d in $(echo "$deps" | tr ' ' '\n' | sed '/^$/d' | sed -n '1!G;h;$p'); do echo "$d"; done >>"$work/order"
	echo "$mod" >>"$work/order"
done
# First occurrence wins: the load order respects every dependency.
awk '!seen[$0]++' "$work/order" >"$work/load.order"
while read -r m; do
	p=""
	for part in $(dirname "$m" | tr / ' '); do p=$p/$part; echo "dir /lib/modules/$KVER$p 755 0 0"; done
	echo "file /lib/modules/$KVER/$m $mods/$m 644 0 0"
done <"$work/load.order" >>"$list"
echo "file /lib/modules/$KVER/load.order $work/load.order 644 0 0" >>"$list"

# Sorted by path (a directory sorts before what it holds), duplicates dropped.
sort -k2,2 -u "$list" >"$work/list.sorted"
# zstd (the kernel has CONFIG_RD_ZSTD; smaller and faster to unpack than gzip); gzip -n without it.
if command -v zstd >/dev/null; then
	sh "$here/mkcpio.sh" <"$work/list.sorted" | zstd -q -T1 -10 >"$work/initramfs.img"
else
	sh "$here/mkcpio.sh" <"$work/list.sorted" | gzip -n -6 >"$work/initramfs.img"
fi
# Outputs are replaced only when their bytes change, so that make does not rebuild ISO and PXE.
cmp -s "$work/initramfs.img" "$out/initramfs.img" || mv "$work/initramfs.img" "$out/initramfs.img"
cmp -s "/boot/vmlinuz-$KVER" "$out/vmlinuz" || cp "/boot/vmlinuz-$KVER" "$out/vmlinuz"
size=$(stat -c %s "$out/initramfs.img")
echo "mkinitramfs: $out/initramfs.img ($size bytes, kernel $KVER, $(wc -l <"$work/load.order") modules)"
[ "$size" -le $((12 * 1024 * 1024)) ] || die "initramfs is larger than 12 MiB"

#!/bin/sh
# make demo: clones a sample NTFS volume inside QEMU with the rescue initramfs, then checks the
# target (ntfsinfo, ntfsfix -n) and compares it with the real ntfsclone's clone of the same volume.
#
#   boot/demo.sh BOOT_OUT        (make demo builds the release binary and the initramfs first)
#
# DEMO_TIMEOUT (seconds, default 300) bounds the QEMU run; QEMU is killed on every way out.
set -eu
out=${1:-boot/out}
timeout=${DEMO_TIMEOUT:-300}
die() { echo "demo: $*" >&2; exit 1; }
for t in mkntfs ntfs-3g ntfsinfo ntfsfix ntfsclone qemu-system-x86_64; do
	command -v $t >/dev/null || die "missing $t (make deps)"
done
[ -f "$out/initramfs.img" ] || die "no $out/initramfs.img (make initramfs)"

work=$(mktemp -d "${TMPDIR:-/tmp}/ntfsclone-demo.XXXXXX")
mnt=$work/mnt
qpid="" tpid=""
cleanup() {
	for p in $qpid $tpid; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

echo "== 1. A sample NTFS volume (32 MiB): mkntfs, then a few files through ntfs-3g"
truncate -s 32M "$work/source.img"
mkntfs -q -F -f -L demo "$work/source.img" >/dev/null 2>&1 || die "mkntfs failed"
mkdir -p "$mnt"
ntfs-3g "$work/source.img" "$mnt"
echo "Hello from ntfsclone-rs." >"$mnt/README.txt"
mkdir -p "$mnt/Documents/Photos"
seq 1 20000 >"$mnt/Documents/numbers.txt"
head -c 3000000 /dev/urandom >"$mnt/Documents/Photos/random.bin"
find "$mnt" -mindepth 1 -printf '   %M %8s %P\n' | sort -k3
umount "$mnt"
truncate -s 32M "$work/target.img"

echo "== 2. Booting the rescue initramfs in QEMU (TCG): clone /dev/vda (source) to /dev/vdb (empty)"
accel=tcg
start=$(date +%s)
qemu-system-x86_64 -accel $accel -m 512 -smp 1 -nographic -no-reboot -nic none \
	-kernel "$out/vmlinuz" -initrd "$out/initramfs.img" \
	-append "console=ttyS0,115200 quiet ntfsclone.mode=clone ntfsclone.source=/dev/vda ntfsclone.target=/dev/vdb ntfsclone.after=poweroff" \
	-drive "file=$work/source.img,format=raw,if=virtio,readonly=on" \
	-drive "file=$work/target.img,format=raw,if=virtio" </dev/null >"$work/serial.log" 2>&1 &
# $! is QEMU itself (its output goes to a file, shown by tail), so the timeout and cleanup kill it.
qpid=$!
tail -n +1 -f "$work/serial.log" &
tpid=$!
# QEMU powers off by itself after the job; 5 minutes is far more than it needs.
n=0
while kill -0 "$qpid" 2>/dev/null; do
	sleep 1
	n=$((n + 1))
	[ $n -lt "$timeout" ] || die "QEMU did not finish within $timeout s"
done
wait "$qpid" || true
qpid=""
sleep 0.2
kill "$tpid" 2>/dev/null || true
wait "$tpid" 2>/dev/null || true
tpid=""
echo
echo "== QEMU finished in $(($(date +%s) - start)) s"
grep -q '^ntfsclone-job: ok' "$work/serial.log" || die "the job did not report ntfsclone-job: ok"

echo "== 3. The target, as seen by ntfs-3g's tools"
ntfsinfo -m "$work/target.img" 2>&1 | grep -E 'Volume Name|Volume Version|Cluster Size|Volume Size in Clusters|Free Clusters' | sed 's/^/   /'
ntfsfix -n "$work/target.img" | sed 's/^/   /'

echo "== 4. The real ntfsclone's clone of the same source, compared byte for byte"
ntfsclone -q -O "$work/reference.img" "$work/source.img" >/dev/null 2>&1 || die "reference ntfsclone failed"
if cmp "$work/reference.img" "$work/target.img"; then
	echo "   identical: the clone made inside QEMU is byte for byte the reference's clone"
else
	die "the clone differs from the reference's"
fi
echo "== demo: ok"

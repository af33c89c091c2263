#!/usr/bin/env bash
# Makes an NTFS test volume: mkntfs, then files written through the ntfs-3g FUSE driver.
#
#   tests/mkvol.sh OUTPUT SIZE [CLUSTER] [SECTOR] [PROFILE] [VOLUME_SIZE]
#
#   OUTPUT       file to create (replaced; sparse)
#   SIZE         device size: bytes, or with a K/M/G suffix (as truncate(1) reads it)
#   CLUSTER      cluster size in bytes (512 ... 2097152), or "default" (mkntfs chooses)
#   SECTOR       sector size in bytes, 512 (default) or 4096
#   PROFILE      what to put on it:
#                  empty  nothing (a fresh mkntfs volume)
#                  basic  the spec's setup: one small resident file, one 300 KB file, a
#                         directory with 200 files, a deleted file
#                  full   basic plus: many small files, large files, a directory with hundreds
#                         of files (non-resident index), deletions leaving stale data,
#                         fragmented files (one with hundreds of runs, an $ATTRIBUTE_LIST and
#                         extent records; interleaved appends), alternate data streams
#                         (resident and non-resident), sparse files, hard links, a symlink,
#                         Unicode names
#   VOLUME_SIZE  NTFS size in bytes when it must be smaller than the device (a device longer
#                than its volume); default: the whole device
#
# The volume is mounted on a private temporary directory and always unmounted (trap), even on
# failure or interrupt; the ntfs-3g daemon runs in the foreground of a background job so that
# unmounting waits until it has written everything. Needs root (FUSE mount), mkntfs, ntfs-3g.
# Content sizes scale with the volume so that every profile fits on a 16 MiB volume.
set -euo pipefail

die() { echo "mkvol.sh: $*" >&2; exit 1; }

if [ $# -lt 2 ] || [ $# -gt 6 ]; then die "usage: mkvol.sh OUTPUT SIZE [CLUSTER] [SECTOR] [PROFILE] [VOLUME_SIZE]"; fi
out=$1 size=$2 cluster=${3:-default} sector=${4:-512} profile=${5:-basic} volsize=${6:-}
case $profile in empty|basic|full) ;; *) die "unknown profile '$profile' (empty, basic, full)" ;; esac
case $sector in 512|4096) ;; *) die "sector size must be 512 or 4096, not '$sector'" ;; esac
for tool in mkntfs ntfs-3g truncate; do
    command -v "$tool" >/dev/null || die "$tool is not installed (make deps)"
done

rm -f "$out"
truncate -s "$size" "$out"
dev_bytes=$(stat -c %s "$out")

# mkntfs: -F (not a block device), -f (quick: no zeroing), -q; its geometry warnings about
# image files go to a log that is shown only when it fails.
args=(-F -f -q -s "$sector")
[ "$cluster" = default ] || args+=(-c "$cluster")
args+=("$out")
if [ -n "$volsize" ]; then
    [ "$volsize" -le "$dev_bytes" ] || die "VOLUME_SIZE $volsize > device size $dev_bytes"
    args+=($(( volsize / sector )))
fi
log=$(mktemp)
if ! mkntfs "${args[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "mkntfs ${args[*]} failed"
fi
rm -f "$log"
[ "$profile" = empty ] && exit 0

mnt=$(mktemp -d "${TMPDIR:-/tmp}/mkvol-mnt.XXXXXX")
daemon=""
# The trap can run while a redirection into the mount is active (`rand N > "$mnt/f"` runs a
# shell function with this shell's stdout on that file): keep the real streams to go back to.
exec 3>&1 4>&2
cleanup() {
    local rc=$?
    exec 1>&3 2>&4
    trap - INT TERM
    if mountpoint -q "$mnt"; then
        # FUSE answers the last close() asynchronously, so the mount can stay busy for a while
        # after a big write: retry for up to 30 s; lazy unmount only as the last resort.
        for _ in $(seq 150); do umount "$mnt" 2>/dev/null && break; sleep 0.2; done
        if mountpoint -q "$mnt"; then
            echo "mkvol.sh: $mnt stays busy, lazy unmount" >&2
            umount -l "$mnt"
            rc=1
        fi
    fi
    if [ -n "$daemon" ]; then
        # ntfs-3g exits once unmounted; if it does not (lazy unmount), end it: our own child.
        for _ in $(seq 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$daemon" 2>/dev/null; then
            echo "mkvol.sh: ntfs-3g (pid $daemon) did not exit after unmount, stopping it" >&2
            kill "$daemon" 2>/dev/null || true
            rc=1
        fi
        wait "$daemon" 2>/dev/null || true
    fi
    rmdir "$mnt" 2>/dev/null || true
    exec 3>&- 4>&-
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ntfs-3g -o no_detach,streams_interface=windows "$out" "$mnt" >/dev/null 2>&1 3>&- 4>&- &
daemon=$!
for _ in $(seq 100); do
    mountpoint -q "$mnt" && break
    kill -0 "$daemon" 2>/dev/null || die "ntfs-3g failed to mount $out"
    sleep 0.05
done
mountpoint -q "$mnt" || die "ntfs-3g did not mount $out"

# Budget: content uses at most about a third of the volume.
vol_bytes=${volsize:-$dev_bytes}
budget=$(( vol_bytes / 3 ))
cap() { local n=$1; [ "$n" -le "$budget" ] || n=$budget; echo "$n"; }
# Files too big to be resident take at least one cluster each: with large clusters there is
# room for fewer of them (min(wanted, clusters in a sixth of the budget)).
cl=${cluster/default/4096}
count() { local n=$(( budget / 6 / cl )); [ "$n" -le "$1" ] || n=$1; echo "$n"; }
rand() { head -c "$1" /dev/urandom; }

# basic (spec §7 setup)
echo "hello, NTFS" > "$mnt/small.txt"
rand "$(cap 300000)" > "$mnt/file300k.bin"
mkdir "$mnt/dir200"
for i in $(seq 200); do echo "file $i" > "$mnt/dir200/f$i.txt"; done
rand "$(cap 100000)" > "$mnt/deleted.bin"
rm "$mnt/deleted.bin"

if [ "$profile" = full ]; then
    # Many small files of varied sizes (resident and just non-resident).
    mkdir "$mnt/small"
    # (sizes below ~600 bytes stay resident in the MFT record; the others need a cluster)
    nonres=$(count 200)
    for i in $(seq 300); do
        if [ "$i" -le "$nonres" ]; then n=$(( 700 + (i * 37) % 2300 )); else n=$(( (i * 37) % 600 )); fi
        rand "$n" > "$mnt/small/s$i"
    done
    # A directory with hundreds of files: a multi-block, non-resident $I30 index.
    mkdir "$mnt/many"
    for i in $(seq 600); do : > "$mnt/many/a-rather-long-file-name-to-fill-index-blocks-$i"; done
    # Large files.
    rand "$(cap $(( vol_bytes / 10 )))" > "$mnt/large1.bin"
    rand "$(cap $(( vol_bytes / 16 )))" > "$mnt/large2.bin"
    # Deletions leaving stale data in free clusters and holes in the MFT.
    mkdir "$mnt/del"
    ndel=$(count 60)
    for i in $(seq "$ndel"); do rand 5000 > "$mnt/del/d$i"; done
    for i in $(seq 1 2 "$ndel"); do rm "$mnt/del/d$i"; done
    rand "$(cap $(( vol_bytes / 20 )))" > "$mnt/stale.bin"
    rm "$mnt/stale.bin"
    # Fragmentation 1: a sparse file written back to front, every other cluster: each write
    # gets the next free cluster, so the runlist alternates data and holes with LCNs running
    # against the VCNs. A few hundred runs overflow the MFT record: $ATTRIBUTE_LIST + extents.
    nfrag=$(count 300)
    truncate -s $(( 2 * nfrag * cl )) "$mnt/fragmented.bin"
    for i in $(seq $(( 2 * nfrag - 1 )) -2 0); do
        rand "$cl" | dd of="$mnt/fragmented.bin" bs="$cl" seek="$i" conv=notrunc status=none
    done
    # Fragmentation 2: interleaved appends to four files.
    chunk=$cl
    rounds=$(( vol_bytes / 40 / chunk / 4 ))
    [ "$rounds" -le 150 ] || rounds=150
    for _ in $(seq "$rounds"); do
        for f in 1 2 3 4; do rand "$chunk" >> "$mnt/frag$f.bin"; done
    done
    # Alternate data streams: resident and non-resident, on a file and on a directory.
    echo "small stream" > "$mnt/small.txt:ads"
    [ "$(count 1)" = 0 ] || rand "$(cap 70000)" > "$mnt/small.txt:bigads"
    echo "dir stream" > "$mnt/dir200:dirads"
    # Sparse files: holes in the middle and at the end.
    truncate -s "$(cap $(( vol_bytes / 4 )))" "$mnt/sparse.bin"
    printf 'data in the middle' | dd of="$mnt/sparse.bin" bs=1 seek=$(( $(cap $(( vol_bytes / 8 ))) )) conv=notrunc status=none
    printf 'start' | dd of="$mnt/sparse2.bin" bs=1 status=none
    truncate -s "$(cap $(( vol_bytes / 5 )))" "$mnt/sparse2.bin"
    # Hard links and a symlink (ntfs-3g stores it as an Interix-style system file).
    ln "$mnt/file300k.bin" "$mnt/hardlink1"
    mkdir "$mnt/links"
    ln "$mnt/file300k.bin" "$mnt/links/hardlink2"
    ln -s small.txt "$mnt/symlink"
    # Unicode names (NTFS stores UTF-16).
    mkdir "$mnt/ünïcödé"
    echo "grüße" > "$mnt/ünïcödé/日本語.txt"
    echo "emoji" > "$mnt/ünïcödé/😀 smile"
    echo "greek" > "$mnt/ünïcödé/Ελληνικά"
fi
sync -f "$mnt/small.txt"

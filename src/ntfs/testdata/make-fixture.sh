#!/usr/bin/env bash
# Makes basic-2m.ntfs.zst, the NTFS volume the unit tests of src/ntfs/ open through
# dev::mem: tests/mkvol.sh's "basic" profile on a 2 MiB volume (4 KiB clusters), then the
# reference's metadata image of it (`ntfsclone --metadata`: user data and timestamps zeroed,
# every structure kept), then $UpCase's table zeroed (the reader never reads it; it is the
# only part that does not compress), zstd-compressed (about 6 KiB).
#
#   src/ntfs/testdata/make-fixture.sh        (root: mkvol.sh mounts with ntfs-3g; make deps)
#
# The unit tests check the structure (geometry, files, records), not the random parts (serial
# number, GUIDs): regenerating keeps them passing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
for tool in ntfsclone ntfsinfo zstd dd; do
    command -v "$tool" >/dev/null || { echo "make-fixture.sh: $tool is not installed (make deps)" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ntfs-fixture.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$root/tests/mkvol.sh" "$tmp/vol" 2M 4096 512 basic
ntfsclone --metadata --force --output "$tmp/meta" "$tmp/vol" >/dev/null
# $UpCase (record 10): one run, "VCN LCN length" in hex after the Runlist header.
read -r lcn len < <(ntfsinfo -v -i 10 "$tmp/meta" 2>/dev/null \
    | awk '/Runlist:/ { getline; print $2, $3; exit }')
if [ -z "${lcn:-}" ] || [ -z "${len:-}" ]; then
    echo "make-fixture.sh: no \$UpCase runlist" >&2
    exit 1
fi
dd if=/dev/zero of="$tmp/meta" bs=4096 seek=$((lcn)) count=$((len)) conv=notrunc status=none
zstd -19 -q -f "$tmp/meta" -o "$here/basic-2m.ntfs.zst"
chmod 644 "$here/basic-2m.ntfs.zst"
ls -l "$here/basic-2m.ntfs.zst"

#!/bin/sh
# Adds Debian's non-free-firmware component to the Debian archive entries of the APT sources, for
# the network drivers' firmware packages (run by `make deps` as root, only when one of them is
# missing). Entries of other archives are left alone; an entry that has the component already
# keeps it. Prints what it changed; then `apt-get update` sees the firmware packages.
#
#   boot/apt-components.sh [DIR]        DIR: the APT configuration, default /etc/apt
set -eu
dir=${1:-/etc/apt}
changed=""
for f in "$dir"/sources.list "$dir"/sources.list.d/*.list; do
	[ -f "$f" ] || continue
	# One-line entries: "deb [options] URI SUITE COMPONENTS..." of an archive named debian.
	awk '/^[[:space:]]*deb[[:space:]]/ && /\/debian(-security)?\/?[[:space:]]/ && / main( |$)/ && !/non-free-firmware/ { $0 = $0 " non-free-firmware" } { print }' \
		"$f" >"$f.new"
	if cmp -s "$f" "$f.new"; then rm -f "$f.new"; else mv "$f.new" "$f"; changed="$changed $f"; fi
done
for f in "$dir"/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	# deb822 stanzas (blank-line separated): those whose URIs name an archive called debian, or
	# that are signed by Debian's archive key, get the component on their Components line.
	awk '
	function flush(   i) {
		for (i = 1; i <= n; i++) {
			if (debian && line[i] ~ /^Components:/ && line[i] ~ /[[:space:]]main([[:space:]]|$)/ && line[i] !~ /non-free-firmware/)
				line[i] = line[i] " non-free-firmware"
			print line[i]
		}
		n = 0; debian = 0
	}
	/^[[:space:]]*$/ { flush(); print; next }
	{ line[++n] = $0 }
	/^URIs:.*\/debian(-security)?\/?([[:space:]]|$)/ || /^Signed-By:.*debian-archive-keyring/ { debian = 1 }
	END { flush() }' "$f" >"$f.new"
	if cmp -s "$f" "$f.new"; then rm -f "$f.new"; else mv "$f.new" "$f"; changed="$changed $f"; fi
done
echo "apt-components: non-free-firmware added to:${changed:- nothing (no Debian entry without it)}"

# make bench: the side-by-side benchmark of issue #5 (bench/bench.py). Builds the release
# binary, makes the cached benchmark volumes (target/bench/, once), then prints the table of
# medians, ratios and peak RSS against ntfsclone, partclone.ntfs and the dd / read ceilings,
# with the targets and their verdicts (also written to target/bench/results.md).
# Needs root (ntfs-3g mounts to fill the volume, drop_caches for the cold case). Not a test:
# `make test` never runs it. ROUNDS=5 make bench for more rounds; ONLY=disk make bench for the
# whole-disk case alone (loop devices: root).
.PHONY: bench bench-volumes bench-deps
# time(1) measures the peak RSS of each command (see timed() in bench.py).
bench-deps: deps
	@command -v /usr/bin/time >/dev/null || { sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq time; }

bench-volumes:
	CARGO_TARGET_DIR=$(TARGET_DIR) python3 bench/bench.py --volumes

bench: bench-deps release bench-volumes
	CARGO_TARGET_DIR=$(TARGET_DIR) OURS=$(RELEASE_BIN) python3 bench/bench.py

# make fuzz: coverage-guided fuzzing of every parser of untrusted bytes with cargo-fuzz
# (nightly + libFuzzer), FUZZ_SECONDS per target (default 60). Installs cargo-fuzz if missing.
# Crashes land in fuzz/artifacts/<target>/; add each as a regression to tests/it/fuzz.rs.
# `make test` runs the same targets with a fixed-seed mutator on stable (tests/it/fuzz.rs).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := boot_sector mft_record runlist attr_list image_header image_stream volume partition_table fat disk_image
FUZZ_SEED_VOLUME := fuzz/seeds/volume.ntfs

.PHONY: fuzz fuzz-deps
fuzz: fuzz-deps $(FUZZ_SEED_VOLUME)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  mkdir -p fuzz/corpus/$$t; \
	  (cd fuzz && cargo +nightly fuzz run $$t corpus/$$t -- \
	     -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 -timeout=10 -max_len=65536); \
	done

fuzz-deps:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz

$(FUZZ_SEED_VOLUME): ../shared/testdata/corrupted/baseline-uncorrupted-ntfs-default_4k_10MiB.ntfs.zst
	@mkdir -p $(dir $@)
	zstd -q -d -f $< -o $@

# ntfsclone-rs: build, test and release.
#
#   make release   the shipped binary: one static musl executable; prints its size
#   make test      installs what is missing (make deps), then make lint, then every test target
#                  (unit, tests/it, the QEMU boot tests in tests/boot). This is what CI runs (.ci/run).
#   make lint      rustfmt --check, clippy -D warnings on every target, the no_std build of the
#                  library, and shellcheck on every shell script under boot/ and tests/
#   make demo      the boot-media demo (from boot/boot.mk)
#   make deps      installs the Debian packages and the Rust target the tests need (idempotent)
#
# Fragments. Other parts of the tree add their own targets in make fragments, included below:
# boot/boot.mk (initramfs, iso, pxe, demo, boot-test), bench/bench.mk (bench), fuzz/fuzz.mk (fuzz).
# This file defines a "not yet" stub for demo, boot-test, bench and fuzz only when no fragment
# defines that target: the rule names at the start of a line in the fragments are collected into
# PROVIDED (a fragment may also add names to PROVIDED itself). So a fragment simply defines the
# target; nothing here needs to change, and make never sees two recipes for one target.

SHELL        := /bin/bash
CARGO        ?= cargo
MUSL_TARGET  := x86_64-unknown-linux-musl
TARGET_DIR   := $(or $(CARGO_TARGET_DIR),target)
RELEASE_BIN  := $(TARGET_DIR)/$(MUSL_TARGET)/release/ntfsclone

# Debian packages the tests and the boot media need. musl-tools: musl-gcc, which compiles libzstd
# (zstd-sys, C) for the static musl release binary. qemu-system-x86 is installed separately
# with --no-install-recommends (its recommends pull in a desktop's worth of packages).
APT_PACKAGES := ntfs-3g partclone zstd busybox-static linux-image-amd64 cpio xorriso isolinux \
                syslinux syslinux-common syslinux-utils pxelinux grub-efi-amd64-bin grub-pc-bin \
                mtools dosfstools exfatprogs ovmf shim-signed grub-efi-amd64-signed ipxe-qemu strace time \
                man-db file initramfs-tools shellcheck firmware-realtek firmware-bnx2 firmware-misc-nonfree \
                samba nfs-ganesha nfs-ganesha-vfs rpcbind fdisk gdisk musl-tools
APT_NORECOMMENDS := qemu-system-x86

.DEFAULT_GOAL := all
.PHONY: all release build deps test lint clean install uninstall

# make install: the static binary and the man page, like the tool it replaces
# (PREFIX=/usr/local by default; DESTDIR for staged installs and packages).
PREFIX  ?= /usr/local
DESTDIR ?=
SBINDIR := $(DESTDIR)$(PREFIX)/sbin
MAN8DIR := $(DESTDIR)$(PREFIX)/share/man/man8

all: release

release:
	@command -v musl-gcc >/dev/null || { echo "release: musl-gcc missing (it compiles libzstd): make deps" >&2; exit 1; }
	$(CARGO) build --release --target $(MUSL_TARGET)
	@size=$$(stat -c %s $(RELEASE_BIN)); \
	  echo "$(RELEASE_BIN): $$size bytes ($$(( (size + 1023) / 1024 )) KiB)"

build:
	$(CARGO) build

# Installs only what is missing: dpkg-query first, apt-get update + install only if needed.
deps:
	@set -euo pipefail; \
	missing=""; \
	for p in $(APT_PACKAGES) $(APT_NORECOMMENDS); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$sudo apt-get update -qq; \
	  normal=""; norec=""; \
	  for p in $$missing; do \
	    case " $(APT_NORECOMMENDS) " in *" $$p "*) norec="$$norec $$p";; *) normal="$$normal $$p";; esac; \
	  done; \
	  [ -z "$$normal" ] || $$sudo apt-get install -y -qq $$normal; \
	  [ -z "$$norec" ] || $$sudo apt-get install -y -qq --no-install-recommends $$norec; \
	fi; \
	if ! rustup target list --installed | grep -qx '$(MUSL_TARGET)'; then \
	  rustup target add $(MUSL_TARGET); \
	fi

# Every test target: the library's unit tests, tests/it and the QEMU boot tests (tests/boot).
test: deps lint
	$(CARGO) test

# The shell scripts: every *.sh and every file starting with a sh/bash shebang under boot/ and
# tests/ (boot/out/, the build output, excluded). -x follows the files they source.
SHELL_SCRIPTS = $(shell find boot tests -path boot/out -prune -o -type f -print | sort | \
                  while read -r f; do case $$f in (*.sh) echo "$$f";; (*.rs|*.md|*.mk|*.list) ;; \
                  (*) head -n1 "$$f" | grep -qE '^\#!.*[/ ](ba|da)?sh( |$$)' && echo "$$f";; esac; done)

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) build --lib --no-default-features
	shellcheck -x $(SHELL_SCRIPTS)

install: release
	install -d $(SBINDIR) $(MAN8DIR)
	install -m 0755 $(RELEASE_BIN) $(SBINDIR)/ntfsclone
	install -m 0644 docs/ntfsclone.8 $(MAN8DIR)/ntfsclone.8

uninstall:
	rm -f $(SBINDIR)/ntfsclone $(MAN8DIR)/ntfsclone.8

clean:
	$(CARGO) clean
	rm -rf boot/out

# --- fragments and stubs (see the top of this file) ---
FRAGMENTS := $(wildcard boot/boot.mk bench/bench.mk fuzz/fuzz.mk)
-include $(FRAGMENTS)
PROVIDED += $(if $(FRAGMENTS),$(shell sed -n 's/^\([A-Za-z0-9_.][A-Za-z0-9_. -]*\):\([^=].*\)\{0,1\}$$/\1/p' $(FRAGMENTS)))
STUBS := $(filter-out $(PROVIDED),demo boot-test bench fuzz)
ifneq ($(STUBS),)
.PHONY: $(STUBS)
$(STUBS):
	@echo "make $@: not yet"
endif

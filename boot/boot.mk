# Boot media: initramfs, hybrid ISO (BIOS+UEFI, CD+USB), PXE tree, the QEMU demo and boot tests.
# Included by the top Makefile (`-include boot/boot.mk`); run from the project root. Nothing needs root.
#
#   make initramfs                 boot/out/initramfs.img + boot/out/vmlinuz
#   make iso JOB="ntfsclone.mode=clone ntfsclone.source=/dev/sda1 ntfsclone.target=/dev/sdb1"
#   make pxe JOB="..."             boot/out/pxe/ (TFTP root), see boot/README.md
#   make demo                      clone a sample NTFS volume inside QEMU and check the result
#   make boot-test                 the QEMU boot tests (tests/boot/, `cargo test --test boot`)
#   make host-initramfs [KVER=v]   boot/out/host-initrd.img: the installed system's initramfs-tools
#                                  with the ntfsclone hook (boot/host/, nothing installed)
#   make host-dracut [KVER=v]      boot/out/host-dracut.img: the same with dracut (unpacked from
#                                  Debian's dracut-core package when dracut is not installed)
#
# BOOT_BIN=path uses another binary (skips the release build), e.g. BOOT_BIN=/usr/sbin/ntfsclone to
# try the boot plumbing with the reference tool (its shared libraries are copied in).

BOOT_OUT    := boot/out
BOOT_TARGET := x86_64-unknown-linux-musl
BOOT_BIN    ?= $(or $(CARGO_TARGET_DIR),target)/$(BOOT_TARGET)/release/ntfsclone
BOOT_ISO    := $(BOOT_OUT)/ntfsclone-rescue.iso
JOB         ?=

.PHONY: initramfs iso pxe demo boot-test boot-clean host-initramfs host-dracut boot-apt-components

# The network drivers' firmware (the firmware-* packages in APT_PACKAGES) is in Debian's
# non-free-firmware component: make deps first adds it to the Debian entries of the APT sources
# (boot/apt-components.sh) when one of those packages is missing.
BOOT_FIRMWARE_PACKAGES := $(filter firmware-%,$(APT_PACKAGES))
deps: boot-apt-components
boot-apt-components:
	@for p in $(BOOT_FIRMWARE_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' || missing=1; \
	done; \
	if [ -n "$${missing:-}" ]; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; $$sudo sh boot/apt-components.sh; \
	fi

# Each entry point first installs what a fresh machine lacks (make deps: quick when present).
initramfs: deps $(BOOT_OUT)/initramfs.img

# Always asks cargo (it knows when the binary is stale); the script rewrites the image only when
# its bytes change, so ISO and PXE are rebuilt only then.
$(BOOT_OUT)/initramfs.img: boot-force
ifeq ($(origin BOOT_BIN),file)
	cargo build --release --target $(BOOT_TARGET)
endif
	sh boot/mkinitramfs.sh $(BOOT_OUT) $(BOOT_BIN)

$(BOOT_OUT)/vmlinuz: $(BOOT_OUT)/initramfs.img

# The build-time job, kept in a stamp so that a changed JOB always rebuilds ISO and PXE.
$(BOOT_OUT)/job.stamp: boot-force
	@mkdir -p $(@D)
	@printf '%s\n' '$(JOB)' | cmp -s - $@ || printf '%s\n' '$(JOB)' >$@

iso: deps $(BOOT_ISO)

$(BOOT_ISO): $(BOOT_OUT)/initramfs.img $(BOOT_OUT)/job.stamp boot/mkiso.sh
	sh boot/mkiso.sh $(BOOT_OUT) $@ "$$(cat $(BOOT_OUT)/job.stamp)"

pxe: deps $(BOOT_OUT)/pxe/pxelinux.cfg/default

$(BOOT_OUT)/pxe/pxelinux.cfg/default: $(BOOT_OUT)/initramfs.img $(BOOT_OUT)/job.stamp boot/mkpxe.sh
	sh boot/mkpxe.sh $(BOOT_OUT) $(BOOT_OUT)/pxe "$$(cat $(BOOT_OUT)/job.stamp)"

# The host initramfs: rebuilt when the binary, the scripts or the kernel (KVER) change.
HOST_INPUTS := boot/host/mkinitramfs.sh boot/host/initramfs-tools/hook \
               boot/host/ntfsclone-boot boot/lib/ntfsclone-job.sh boot/udhcpc.script

host-initramfs: deps $(BOOT_OUT)/host-initrd.img

ifeq ($(origin BOOT_BIN),file)
$(BOOT_BIN): boot-force
	cargo build --release --target $(BOOT_TARGET)
endif

$(BOOT_OUT)/host-kver.stamp: boot-force
	@mkdir -p $(@D)
	@printf '%s\n' '$(KVER)' | cmp -s - $@ || printf '%s\n' '$(KVER)' >$@

$(BOOT_OUT)/host-initrd.img: $(BOOT_BIN) $(HOST_INPUTS) $(BOOT_OUT)/host-kver.stamp
	sh boot/host/mkinitramfs.sh $(BOOT_OUT) $(BOOT_BIN)

host-dracut: deps $(BOOT_OUT)/host-dracut.img

$(BOOT_OUT)/host-dracut.img: $(BOOT_BIN) boot/host/mkdracut.sh boot/host/dracut/90ntfsclone/module-setup.sh \
                             boot/host/dracut/90ntfsclone/ntfsclone-pre-mount.sh boot/host/ntfsclone-boot \
                             boot/lib/ntfsclone-job.sh $(BOOT_OUT)/host-kver.stamp
	sh boot/host/mkdracut.sh $(BOOT_OUT) $(BOOT_BIN)

demo: deps initramfs
	sh boot/demo.sh $(BOOT_OUT)

boot-test: deps
	cargo test --test boot -- --nocapture


boot-clean:
	rm -rf $(BOOT_OUT)

.PHONY: boot-force
boot-force:

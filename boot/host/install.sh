#!/bin/sh
# Installs the ntfsclone boot job into this machine's own initramfs (initramfs-tools on
# Debian/Ubuntu; dracut elsewhere), the GRUB entry generator and ntfsclone-next-boot, then rebuilds
# the initramfs and the GRUB menu. Run as root from the source tree after `make release`.
#
#   boot/host/install.sh [--binary PATH] [--root DIR]
#   boot/host/install.sh --uninstall [--root DIR]
#
# --root DIR installs into (or removes from) DIR instead of / and rebuilds nothing (for packaging
# and tests). Files:
#   /usr/local/lib/ntfsclone/{ntfsclone,ntfsclone-job.sh,ntfsclone-boot,udhcpc.script}
#   /usr/local/sbin/ntfsclone-next-boot
#   /etc/initramfs-tools/hooks/ntfsclone, /etc/initramfs-tools/scripts/init-premount/ntfsclone
#   /usr/lib/dracut/modules.d/90ntfsclone/          (when dracut is installed)
#   /etc/grub.d/42_ntfsclone
#   /etc/default/ntfsclone                           (the job list; an example, kept on uninstall
#                                                     when it was changed)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$here/..
bin=$here/../../target/x86_64-unknown-linux-musl/release/ntfsclone
root="" uninstall=""
die() { echo "install.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
	case $1 in
	--uninstall) uninstall=1 ;;
	--root) root=${2:?--root needs a directory}; shift ;;
	--binary) bin=${2:?--binary needs a path}; shift ;;
	*) die "usage: install.sh [--uninstall] [--root DIR] [--binary PATH]" ;;
	esac
	shift
done
[ -n "$root" ] || [ "$(id -u)" = 0 ] || die "run as root (or with --root DIR)"

lib=/usr/local/lib/ntfsclone
itools=/etc/initramfs-tools
dracut_mod=/usr/lib/dracut/modules.d/90ntfsclone
have_itools="" have_dracut=""
if [ -n "$root" ]; then
	have_itools=1 have_dracut=1
else
	[ -d /etc/initramfs-tools ] && command -v update-initramfs >/dev/null && have_itools=1
	command -v dracut >/dev/null && have_dracut=1
fi

# The example job list (all commented out).
example() {
	cat <<'CONF'
# ntfsclone jobs offered in the GRUB menu (/etc/grub.d/42_ntfsclone, after update-grub) and by
# `ntfsclone-next-boot ID`, which makes only the next boot run one. One job per line:
#
#   job ID "MENU TITLE" "ntfsclone.* PARAMETERS"
#
# The parameters are those of the rescue system (boot/README.md): ntfsclone.mode=save|restore|clone,
# ntfsclone.source=, ntfsclone.target=, ntfsclone.image=, ntfsclone.opts=, ntfsclone.wait=, and
# ntfsclone.after=continue|reboot|poweroff (default continue: the system boots on).
#
#job restore-windows "Restore Windows from /images/win.img" \
#	"ntfsclone.mode=restore ntfsclone.target=LABEL=Windows ntfsclone.image=LABEL=data:/images/win.img ntfsclone.after=reboot"
#job save-windows "Save Windows to /images/win.img" \
#	"ntfsclone.mode=save ntfsclone.source=LABEL=Windows ntfsclone.image=LABEL=data:/images/win.img ntfsclone.after=reboot"
CONF
}

# put SRC DEST MODE: installs one file.
put() {
	mkdir -p "$root$(dirname "$2")"
	cp "$1" "$root$2.new"
	chmod "$3" "$root$2.new"
	mv "$root$2.new" "$root$2"
	echo "installed $2"
}
gone() {
	for f in "$@"; do
		if [ -e "$root$f" ]; then rm -f "$root$f" && echo "removed $f"; fi
	done
}

if [ -z "$uninstall" ]; then
	[ -x "$bin" ] || die "no binary at $bin (make release, or --binary PATH)"
	if ldd "$bin" 2>/dev/null | grep -q '=>'; then
		die "$bin is not static: the initramfs needs the static musl build (make release)"
	fi
	put "$bin" $lib/ntfsclone 755
	put "$src/lib/ntfsclone-job.sh" $lib/ntfsclone-job.sh 644
	put "$here/ntfsclone-boot" $lib/ntfsclone-boot 755
	put "$src/udhcpc.script" $lib/udhcpc.script 755
	put "$here/ntfsclone-next-boot" /usr/local/sbin/ntfsclone-next-boot 755
	put "$here/grub/42_ntfsclone" /etc/grub.d/42_ntfsclone 755
	if [ ! -e "$root/etc/default/ntfsclone" ]; then
		mkdir -p "$root/etc/default"
		example >"$root/etc/default/ntfsclone"
		echo "installed /etc/default/ntfsclone (example: add your jobs there, then update-grub)"
	fi
	if [ -n "$have_itools" ]; then
		put "$here/initramfs-tools/hook" $itools/hooks/ntfsclone 755
		put "$here/ntfsclone-boot" $itools/scripts/init-premount/ntfsclone 755
	fi
	if [ -n "$have_dracut" ]; then
		put "$here/dracut/90ntfsclone/module-setup.sh" $dracut_mod/module-setup.sh 755
		put "$here/dracut/90ntfsclone/ntfsclone-pre-mount.sh" $dracut_mod/ntfsclone-pre-mount.sh 755
	fi
	[ -n "$have_itools" ] || [ -n "$have_dracut" ] || die "neither initramfs-tools nor dracut found"
else
	gone $lib/ntfsclone $lib/ntfsclone-job.sh $lib/ntfsclone-boot $lib/udhcpc.script \
		/usr/local/sbin/ntfsclone-next-boot /etc/grub.d/42_ntfsclone \
		$itools/hooks/ntfsclone $itools/scripts/init-premount/ntfsclone \
		$dracut_mod/module-setup.sh $dracut_mod/ntfsclone-pre-mount.sh
	rmdir "$root$lib" "$root$dracut_mod" 2>/dev/null || true
	if [ -e "$root/etc/default/ntfsclone" ]; then
		if example | cmp -s - "$root/etc/default/ntfsclone"; then
			gone /etc/default/ntfsclone
		else
			echo "kept /etc/default/ntfsclone (it holds your jobs)"
		fi
	fi
fi

# Rebuild the initramfs and the GRUB menu (not with --root).
[ -z "$root" ] || exit 0
if [ -n "$have_itools" ]; then
	update-initramfs -u -k all
elif [ -n "$have_dracut" ]; then
	dracut -f --regenerate-all
fi
if command -v update-grub >/dev/null; then
	update-grub
elif command -v grub2-mkconfig >/dev/null && [ -d /boot/grub2 ]; then
	grub2-mkconfig -o /boot/grub2/grub.cfg
elif command -v grub-mkconfig >/dev/null && [ -d /boot/grub ]; then
	grub-mkconfig -o /boot/grub/grub.cfg
fi

# shellcheck shell=sh
# shellcheck disable=SC2034 # the variables set here are read by mkiso.sh and mkpxe.sh
# Sourced by mkiso.sh and mkpxe.sh: the kernel command line and the two menu entries shared by
# every boot menu (the build-time job first, the default; then a plain shell).
# In: $job (may be empty). Out: $cmdline, $title1/$args1, $title2/$args2.
cmdline="console=tty0 console=ttyS0,115200 quiet"
if [ -n "$job" ]; then
	title1="ntfsclone rescue: $job"
	args1="$cmdline $job"
else
	title1="ntfsclone rescue (shell)"
	args1="$cmdline"
fi
title2="ntfsclone rescue: shell, no job"
args2="$cmdline ntfsclone.mode=shell"

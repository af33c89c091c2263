#!/bin/sh
# dracut pre-mount hook of module 90ntfsclone (sourced by dracut): the ntfsclone job of the kernel
# command line, if any, before the root file system is mounted.
/sbin/ntfsclone-boot

#!/bin/sh
# imgbuild's mmdebstrap essential hook: runs after the essential packages, before the
# recipe's packages. $1 is the chroot.
set -eu
root="$1"
# Files maintainer scripts must already see (e.g. /etc/default/raspi-firmware).
if [ -n "${IMGBUILD_PRESEED:-}" ]; then
    cp -a "$IMGBUILD_PRESEED"/. "$root"/
fi
# Build the initramfs once at the end instead of after every kernel and firmware
# package: each run costs minutes under qemu-user.
if [ -n "${IMGBUILD_INITRAMFS_MODULES:-}" ]; then
    chroot "$root" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
    ln -sf /bin/true "$root/usr/sbin/update-initramfs"
fi

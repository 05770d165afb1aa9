#!/bin/sh
# imgbuild's mmdebstrap essential hook: runs after the essential packages, before the
# recipe's packages. $1 is the chroot.
set -eu
root="$1"
# Files maintainer scripts must already see (e.g. /etc/default/raspi-firmware).
if [ -n "${IMGBUILD_PRESEED:-}" ]; then
    cp -a "$IMGBUILD_PRESEED"/. "$root"/
fi
# Work done once at the end instead of in every package that asks for it: each call costs
# seconds to minutes under qemu-user. The customize hook puts the real programs back and
# runs them once (natively where the result does not depend on the CPU).
defer() {
    chroot "$root" dpkg-divert --quiet --local --rename --add "$1"
    ln -sf /bin/true "$root$1"
}
# Byte-compilation: every Python package's postinst runs py3compile.
defer /usr/bin/py3compile
# The certificate store: ca-certificates' postinst and every package's trigger.
defer /usr/sbin/update-ca-certificates
# The initramfs: after every kernel and firmware package.
if [ -n "${IMGBUILD_INITRAMFS_MODULES:-}" ]; then
    defer /usr/sbin/update-initramfs
fi

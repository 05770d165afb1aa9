#!/bin/sh
# imgbuild's mmdebstrap customize hook: runs after every package is installed.
# $1 is the chroot.
set -eu
root="$1"
if [ -n "${IMGBUILD_INITRAMFS_MODULES:-}" ]; then
    rm -f "$root/usr/sbin/update-initramfs"
    chroot "$root" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs
    mkdir -p "$root/etc/initramfs-tools/conf.d"
    echo "MODULES=list" > "$root/etc/initramfs-tools/conf.d/imgbuild-modules"
    cp "$IMGBUILD_INITRAMFS_MODULES" "$root/etc/initramfs-tools/modules"
    if ! [ -x "$root/usr/sbin/update-initramfs" ]; then
        echo "imgbuild: rootfs.initramfs_modules needs initramfs-tools: add it to rootfs.packages" >&2
        exit 1
    fi
    if ls "$root"/boot/vmlinu* >/dev/null 2>&1; then
        chroot "$root" update-initramfs -c -k all
    fi
fi
# Extra apt sources as deb822 files with their keys, for apt in the finished system.
if [ -n "${IMGBUILD_APT_DIR:-}" ]; then
    cp -a "$IMGBUILD_APT_DIR"/. "$root"/etc/apt/
fi

#!/bin/sh
# imgbuild's mmdebstrap customize hook: runs after every package is installed, on the
# host. $1 is the chroot. $IMGBUILD_HOOKS is the directory holding this script.
set -eu
root="$1"
restore() {
    rm -f "$root$1"
    chroot "$root" dpkg-divert --quiet --local --rename --remove "$1"
}
# Each deferred job says how long it took (bench/pi4-build.sh reads these lines).
took() { echo "imgbuild: $1 took $(($(date +%s) - $2))s"; }

# Python byte-compilation, deferred by the essential hook: done by the host's CPython of
# the target's default version where there is one (bytecode depends on the version, not
# the CPU), else once by the target's python3.
started=$(date +%s)
restore /usr/bin/py3compile
if [ -x "$root/usr/bin/py3compile" ]; then
    version=$(sed -n 's/^default-version = python//p' "$root/usr/share/python3/debian_defaults")
    host_python=$(sh "$IMGBUILD_HOOKS/host-python.sh" "$version")
    if [ -n "$version" ] && [ -n "$host_python" ]; then
        "$host_python" -I "$IMGBUILD_HOOKS/pycompile.py" "$root"
    else
        cp "$IMGBUILD_HOOKS/pycompile.py" "$root/tmp/imgbuild-pycompile.py"
        chroot "$root" python3 -I /tmp/imgbuild-pycompile.py /
        rm -f "$root/tmp/imgbuild-pycompile.py"
    fi
    took "byte-compiling Python" "$started"
fi

# The certificate store, deferred by the essential hook: ca-certificates' own script (a
# shell script) run by the host's shell and openssl (the pre-flight check makes sure there
# is one) on the root's directories. The links it makes name the host's view of the
# root; they are made the target's after.
started=$(date +%s)
restore /usr/sbin/update-ca-certificates
if [ -x "$root/usr/sbin/update-ca-certificates" ]; then
    sh "$root/usr/sbin/update-ca-certificates" --fresh --hooksdir "" \
        --certsconf "$root/etc/ca-certificates.conf" \
        --certsdir "$root/usr/share/ca-certificates" \
        --localcertsdir "$root/usr/local/share/ca-certificates" \
        --etccertsdir "$root/etc/ssl/certs"
    for link in "$root"/etc/ssl/certs/*; do
        [ -L "$link" ] || continue
        target=$(readlink "$link")
        case "$target" in "$root"/*) ln -sfn "${target#"$root"}" "$link" ;; esac
    done
    took "the certificate store" "$started"
fi

if [ -n "${IMGBUILD_INITRAMFS_MODULES:-}" ]; then
    restore /usr/sbin/update-initramfs
    mkdir -p "$root/etc/initramfs-tools/conf.d"
    echo "MODULES=list" > "$root/etc/initramfs-tools/conf.d/imgbuild-modules"
    cp "$IMGBUILD_INITRAMFS_MODULES" "$root/etc/initramfs-tools/modules"
    if ! [ -x "$root/usr/sbin/update-initramfs" ]; then
        echo "imgbuild: rootfs.initramfs_modules needs initramfs-tools: add it to rootfs.packages" >&2
        exit 1
    fi
    if ls "$root"/boot/vmlinu* >/dev/null 2>&1; then
        started=$(date +%s)
        chroot "$root" update-initramfs -c -k all
        took "the initramfs" "$started"
    fi
fi
# Extra apt sources as deb822 files with their keys, for apt in the finished system.
if [ -n "${IMGBUILD_APT_DIR:-}" ]; then
    cp -a "$IMGBUILD_APT_DIR"/. "$root"/etc/apt/
fi

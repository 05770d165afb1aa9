#!/usr/bin/env bash
# Proves the README's two commands on a machine that has nothing installed: makes a clean
# Debian root (mmdebstrap minbase, the state of a new machine), copies the repository in,
# removes the host's qemu binfmt_misc registrations, and inside that root runs
#   1. ci/test.sh                                   (the README's test command)
#   2. imgbuild doctor with qemu-arm unregistered   (must fail and print a fix), the fix
#      it printed, and doctor again                 (must pass); doctor of every server
#      with `--set mirrors=false --set gitea=false` (every host it needs answers)
#   3. ci/build-default.sh recipes/pi-zero.yaml --set mirrors=false --set gitea=false
#                                                   (the README's main command, in its
#                                                   documented form for this network)
#   4. imgbuild boot-test of that Pi Zero image     (QEMU raspi0; its web server answers)
#
#   ci/fresh-machine.sh [SUITE]        SUITE: bookworm (default) or trixie
#
# Only the Rust toolchain comes from the host (its download site is out of reach here),
# bound in read-only. Downloads are cached between runs outside the root (the .debs apt
# fetches and the crates cargo fetches): they are what a new machine would download
# again, byte for byte, so caching them changes nothing that is installed. The root, the
# build outputs and imgbuild's stage cache are new every run. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
suite=${1:-bookworm}
case "$suite" in bookworm | trixie) ;; *) echo "usage: ci/fresh-machine.sh [bookworm|trixie]" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "ci/fresh-machine.sh: needs root (it makes a root file system and chroots into it)" >&2; exit 1; }
command -v mmdebstrap >/dev/null || bash ci/install-host-deps.sh

work=${IMGBUILD_FRESH_DIR:-/var/tmp/imgbuild-fresh}
root=$work/$suite/root
downloads=$work/downloads/$suite
mkdir -p "$downloads/apt/partial" "$downloads/cargo-registry" "$downloads/cargo-git"
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_bin=$(dirname "$(command -v cargo)")
[ -d "$rustup_home/toolchains" ] || { echo "ci/fresh-machine.sh: no Rust toolchain in $rustup_home to bind in" >&2; exit 1; }

log() { printf 'fresh-machine[%s] %s: %s\n' "$suite" "$(date -u +%H:%M:%S)" "$*"; }
started=$(date +%s)

# 1. A new machine: Debian minbase and nothing else.
rm -rf "$root"
mkdir -p "$(dirname "$root")"
log "making a clean $suite root (mmdebstrap minbase) in $root"
mmdebstrap --quiet --variant=minbase "$suite" "$root"
# This network's own settings, as any machine on it has them: its resolver, and the trust
# anchors of a TLS-inspecting egress proxy where there is one (local CAs, taken into the
# root's store when ca-certificates installs; the variables below point tools at it).
cp /etc/resolv.conf "$root/etc/resolv.conf"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
network_env=()
for v in SSL_CERT_FILE SSL_CERT_DIR NODE_EXTRA_CA_CERTS REQUESTS_CA_BUNDLE PIP_CERT CURL_CA_BUNDLE GIT_SSL_CAINFO http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [ -n "${!v:-}" ] && network_env+=("$v=${!v}")
done
mkdir -p "$root/root/imgbuild" "$root/opt/rust/rustup" "$root/opt/rust/bin" \
  "$root/root/.cargo/registry" "$root/root/.cargo/git"
# The repository as committed or added (not target/, images/ or anything ignored).
git ls-files -z --cached --others --exclude-standard | tar -C "$repo" --null -T - -cf - | tar -C "$root/root/imgbuild" -xf -

# 2. The host's qemu registrations go, so nothing the host set up by hand can help; they
# are restored when this script ends, whichever way it ends.
binfmt=/proc/sys/fs/binfmt_misc
[ -e "$binfmt/status" ] || mount -t binfmt_misc binfmt_misc "$binfmt"
removed=()
for e in "$binfmt"/qemu-*; do
  [ -e "$e" ] || continue
  removed+=("$(basename "$e")")
  echo -1 > "$e"
done
restore() {
  for name in "${removed[@]}"; do
    [ -e "$binfmt/$name" ] && echo -1 > "$binfmt/$name"
    conf=/usr/lib/binfmt.d/$name.conf
    if [ -f "$conf" ]; then
      grep -v '^#' "$conf" > "$binfmt/register" || true
    elif command -v update-binfmts >/dev/null; then
      update-binfmts --enable "$name" 2>/dev/null || true
    fi
  done
}
trap restore EXIT
log "removed the host's binfmt registrations: ${removed[*]:-none}"

# 3. Inside the root, in a mount and PID namespace of its own: every mount and every
# process left behind (a web server, a QEMU) ends with it.
inner=$(cat <<'INNER'
set -euo pipefail
cd /root/imgbuild
step() { printf 'fresh-machine %s: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

step "ci/test.sh (the README's test command)"
ci/test.sh

step "imgbuild doctor with qemu-arm unregistered must fail and print its fix"
bin=target/debug/imgbuild
echo -1 > /proc/sys/fs/binfmt_misc/qemu-arm
set +e
out=$("$bin" doctor --offline recipes/pi-zero.yaml --set mirrors=false --set gitea=false 2>&1)
rc=$?
set -e
echo "$out"
[ "$rc" -eq 1 ] || { echo "doctor exited $rc, expected 1" >&2; exit 1; }
fix=$(sed -n 's/^problem: .*qemu-arm.*; fix: //p' <<<"$out")
[ -n "$fix" ] || { echo "doctor printed no fix for qemu-arm" >&2; exit 1; }
step "running the fix doctor printed: $fix"
sh -c "$fix"
"$bin" doctor --offline recipes/pi-zero.yaml --set mirrors=false --set gitea=false

step "every server's documented offline form names only hosts this network reaches"
"$bin" doctor recipes/pi-zero.yaml recipes/pi4.yaml recipes/pi5.yaml recipes/container.yaml --set mirrors=false --set gitea=false

step "ci/build-default.sh recipes/pi-zero.yaml --set mirrors=false --set gitea=false (the README's main command)"
ci/build-default.sh recipes/pi-zero.yaml --set mirrors=false --set gitea=false
step "imgbuild boot-test images/pi-zero/pi-zero.img --http / (its web server answers)"
target/release/imgbuild boot-test images/pi-zero/pi-zero.img --http /
step "all passed"
INNER
)

unshare --mount --propagation private --pid --fork --mount-proc -- bash -euo pipefail -c '
root=$1 rustup_home=$2 cargo_bin=$3 downloads=$4 inner=$5
# The root is a mount point, as / is on any machine (podman and the steps remount it).
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mount --bind "$rustup_home" "$root/opt/rust/rustup" && mount -o remount,bind,ro "$root/opt/rust/rustup"
mount --bind "$cargo_bin" "$root/opt/rust/bin" && mount -o remount,bind,ro "$root/opt/rust/bin"
mount --bind "$downloads/apt" "$root/var/cache/apt/archives"
mount --bind "$downloads/cargo-registry" "$root/root/.cargo/registry"
mount --bind "$downloads/cargo-git" "$root/root/.cargo/git"
exec chroot "$root" /usr/bin/env -i \
  HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 TERM=dumb CI=true \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/rust/bin \
  RUSTUP_HOME=/opt/rust/rustup CARGO_HOME=/root/.cargo RUSTUP_AUTO_INSTALL=0 \
  "${@:6}" bash -euo pipefail -c "$inner"
' fresh "$root" "$rustup_home" "$cargo_bin" "$downloads" "$inner" "${network_env[@]}"

log "passed in $(( ($(date +%s) - started) / 60 )) min $(( ($(date +%s) - started) % 60 )) s"
echo "fresh-machine ($suite): 1 passed, 0 failed"

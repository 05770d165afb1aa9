#!/usr/bin/env bash
# The test job: installs what the host needs (ci/install-host-deps.sh, from the
# host-program table), checks formatting, lints the code and the GitHub workflows, checks
# this host with `imgbuild doctor`, then runs the tests tier by tier, each a labelled step
# that says what it needs:
#   fast    no network, no root: unit tests and the integration tests that build real
#           images and check them with sfdisk, fsck.fat, e2fsck, debugfs and mtools, and
#           container archives with skopeo and umoci. Run as `nobody` in a network
#           namespace of its own when this script runs as root, which proves it.
#   root    mounts (a full disk as a small tmpfs), chroot steps, podman.
#   debian  bootstraps from the Debian archive (as root).
#   pypi    resolves and downloads from PyPI (uv, pip).
#   qemu    boots built images (IMGBUILD_BOOT_IMAGE, IMGBUILD_BOOT_IMAGE_PI0); skipped
#           unless they are set — ci/boot-test.sh builds and boots one.
# A test outside the fast tier is `#[ignore = "tier NAME: why"]` and named `…_tier_NAME`
# (tests/it/structure.rs checks both).
# Network: the install needs the Debian archive, PyPI and the crate registry; nothing
# else (the hosts this network can't reach are served by local fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-host-deps.sh
. ci/ensure-rust.sh
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
bash ci/lint-workflows.sh
cargo build --locked -q
# The test recipes bootstrap arm64 and armel roots: the host must be able to.
target/debug/imgbuild doctor --offline recipes/pi4.yaml recipes/pi-zero.yaml
cargo test --locked --all-targets --no-run

tier() {
  echo "== tier $1: $2"
  local start=$SECONDS log
  shift 2
  log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  # A filter that matches nothing would pass: a tier must run tests.
  if ! grep -Eq '^test result: ok\. [1-9][0-9]* passed' "$log"; then
    echo "== tier ran no test" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
  echo "== tier done in $((SECONDS - start)) s"
}

# The fast tier's binaries, run directly so they need no cargo and no write to target/.
mapfile -t bins < <(cargo test --locked --all-targets --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["executable"])')
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
fast() {
  local who=nobody
  # nobody must reach the checkout (a clone under /root, as in ci/fresh-machine.sh, is
  # not searchable by others): otherwise the tier runs as root, still without network.
  if [ "$(id -u)" = 0 ] && ! as_nobody test -r Cargo.toml -a -x "${bins[0]}"; then
    who=root
    echo "   nobody cannot read $PWD: running as root, in a namespace without network"
  fi
  for b in "${bins[@]}"; do
    if [ "$(id -u)" != 0 ]; then
      "$b"
    elif [ "$who" = nobody ]; then
      home=$(mktemp -d) && chown 65534:65534 "$home"
      # nobody cannot search root's own directories on PATH (e.g. ~/.cargo/bin).
      path=$(printf %s "$PATH" | tr : '\n' | grep -v '^/root' | paste -sd:)
      unshare -n sh -c 'ip link set lo up && exec setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$1" PATH="$2" "$3"' \
        sh "$home" "$path" "$b"
      rm -rf "$home"
    else
      unshare -n sh -c 'ip link set lo up && exec "$1"' sh "$b"
    fi
  done
}
tier fast "no network, no root (as nobody, in a namespace without network)" fast
tier root "root: tmpfs mounts, chroot steps, podman" \
  cargo test --locked --all-targets -- --ignored _tier_root
tier debian "root and the Debian archive: mmdebstrap bootstraps, steps in the target" \
  cargo test --locked --all-targets -- --ignored _tier_debian
tier pypi "PyPI: uv resolves, pip installs" \
  cargo test --locked --all-targets -- --ignored _tier_pypi
if [ -n "${IMGBUILD_BOOT_IMAGE:-}" ] && [ -n "${IMGBUILD_BOOT_IMAGE_PI0:-}" ]; then
  tier qemu "QEMU and built images in IMGBUILD_BOOT_IMAGE / IMGBUILD_BOOT_IMAGE_PI0" \
    cargo test --locked --all-targets -- --ignored --test-threads=1 _tier_qemu
else
  echo "== tier qemu: needs built images in IMGBUILD_BOOT_IMAGE and IMGBUILD_BOOT_IMAGE_PI0: not both set, skipped (ci/boot-test.sh builds and boots one)"
fi

#!/usr/bin/env bash
# Builds a Raspberry Pi recipe and boots it in QEMU with `imgbuild boot-test`: systemd
# must reach multi-user.target with no failed unit, and the root file system must grow.
#   ci/boot-test.sh [RECIPE...]     (default: recipes/pi4.yaml)
# Needs root (the recipes run steps in the target) and the Debian archive.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-host-deps.sh >/dev/null
. ci/ensure-rust.sh >/dev/null
cargo build --release --locked -q
recipes=("$@")
[ ${#recipes[@]} -gt 0 ] || recipes=(recipes/pi4.yaml)
for r in "${recipes[@]}"; do
  name=$(basename "$r" .yaml)
  echo "== build $r"
  target/release/imgbuild --set compression=none "$r"
  echo "== boot-test images/$name/$name.img"
  target/release/imgbuild boot-test "images/$name/$name.img"
done

#!/usr/bin/env bash
# The main job: installs what the host needs, then builds the default image into
# images/<name>/ (the raw .img, the compressed image, .sha256 and manifest.json).
#   ci/build-default.sh [RECIPE] [IMGBUILD OPTIONS...]
# Default: recipes/pi-zero.yaml, the Raspberry Pi Zero/1 workshop server with its mirrors
# (PyPI, CRAN, the lessons, the installers: the network must reach them). Behind a
# firewall, `ci/build-default.sh recipes/pi-zero.yaml --set mirrors=false` builds the
# server without them.
# No Wi-Fi passphrase or password is built in (unless IMGBUILD_WIFI_PASSPHRASE or
# IMGBUILD_PASSWORD is set, for a private build): each device takes its own from the boot
# partition's imgbuild-settings.txt or makes them at first boot (docs/flashing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-host-deps.sh
. ci/ensure-rust.sh
recipe="${1:-recipes/pi-zero.yaml}"
shift || true
cargo build --release --locked
# The host checks and the hosts the recipe downloads from, each problem with its fix
# (the build makes the host checks again, but the network's only as warnings).
target/release/imgbuild doctor "$recipe" "$@"
target/release/imgbuild "$recipe" "$@"

#!/usr/bin/env bash
# The main job: installs what the host needs, then builds the default image into
# images/<name>/ (the raw .img, the compressed image, .sha256 and manifest.json).
#   ci/build-default.sh [RECIPE] [IMGBUILD OPTIONS...]
# Default: recipes/pi-zero.yaml, the Raspberry Pi Zero/1 workshop server with its mirrors
# (PyPI, CRAN, the lessons, the installers: the network must reach them). Behind a
# firewall, `ci/build-default.sh recipes/pi-zero.yaml --set mirrors=false` builds the
# server without them.
# The Wi-Fi passphrase is IMGBUILD_WIFI_PASSPHRASE; without it one is made up for this
# build and printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-host-deps.sh
. ci/ensure-rust.sh
recipe="${1:-recipes/pi-zero.yaml}"
shift || true
made_up=""
if [ -z "${IMGBUILD_WIFI_PASSPHRASE:-}" ]; then
  IMGBUILD_WIFI_PASSPHRASE=$(python3 -c 'import secrets; print("-".join(secrets.token_hex(3) for _ in range(3)))')
  made_up=1
fi
export IMGBUILD_WIFI_PASSPHRASE
cargo build --release --locked
# The host checks and the hosts the recipe downloads from, each problem with its fix
# (the build makes the host checks again, but the network's only as warnings).
target/release/imgbuild doctor "$recipe" "$@"
target/release/imgbuild "$recipe" "$@"
if [ -n "$made_up" ]; then
  echo "Wi-Fi passphrase of this image: $IMGBUILD_WIFI_PASSPHRASE (set IMGBUILD_WIFI_PASSPHRASE to choose it)"
fi

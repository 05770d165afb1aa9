#!/usr/bin/env bash
# The main job: installs what the host needs, then builds the default image into
# images/<name>/ (the raw .img, the compressed image, .sha256 and manifest.json).
#   ci/build-default.sh [RECIPE]     (default: recipes/pi-zero.yaml, the Raspberry Pi Zero/1 image)
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-host-deps.sh
. ci/ensure-rust.sh
cargo run --release --locked -- "${1:-recipes/pi-zero.yaml}"

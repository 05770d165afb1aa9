#!/usr/bin/env bash
# The main job: installs what the host needs, then builds the default image into
# images/<name>/ (the raw .img, the compressed image, .sha256 and manifest.json).
#   ci/build-default.sh [RECIPE]     (default: recipes/example-mbr.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-host-deps.sh
. ci/ensure-rust.sh
cargo run --release --locked -- "${1:-recipes/example-mbr.yaml}"

#!/usr/bin/env bash
# The test job: installs what the host needs, checks formatting and lints, and runs every
# test (unit tests, then the integration tests that build real images and check them with
# sfdisk, fsck.fat, e2fsck, debugfs and mtools, and container archives with skopeo, podman
# and umoci). No network is needed after the install.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-host-deps.sh
. ci/ensure-rust.sh
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets

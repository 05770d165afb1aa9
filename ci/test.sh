#!/usr/bin/env bash
# The test job: installs what the host needs (ci/install-host-deps.sh, from the
# host-program table), checks formatting, lints the code and the GitHub workflows, checks
# this host with `imgbuild doctor`, and runs every test: unit tests, then the integration
# tests that build real images and check them with sfdisk, fsck.fat, e2fsck, debugfs and
# mtools, and container archives with skopeo, podman and umoci.
# Network: the install needs the Debian archive, PyPI and the crate registry; some tests
# then bootstrap from the Debian archive, resolve from PyPI and npm (nothing else: the
# hosts this network can't reach are served by local fixtures).
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
cargo test --locked --all-targets

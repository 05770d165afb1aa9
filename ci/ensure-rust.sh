#!/usr/bin/env bash
# Makes sure a stable Rust toolchain (edition 2024: Rust >= 1.85) with clippy and rustfmt
# is on PATH, installing it with rustup when it is missing.
set -euo pipefail
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "ci/ensure-rust.sh: installing Rust with rustup" >&2
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
  . "$HOME/.cargo/env"
fi
cargo --version

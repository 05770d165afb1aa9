#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 60 s each) with cargo-fuzz, seeded
# from the repository's own fixtures; a crash stops with the input saved under
# fuzz/artifacts/. Needs the nightly toolchain (`rustup toolchain list`) and cargo-fuzz
# (`cargo install cargo-fuzz --locked`). Not part of ci/test.sh.
#   fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(recipe tar_index cran_dcf html_links inspect)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# Seeds: the shipped recipes, a tar the tests use, CRAN and HTML fixtures.
mkdir -p corpus/recipe corpus/tar_index corpus/cran_dcf corpus/html_links corpus/inspect
cp ../recipes/*.yaml ../recipes/layers/*.yaml corpus/recipe/ 2>/dev/null || true
find ../ci/fixtures -name '*.html' -size -64k -exec cp {} corpus/html_links/ \; 2>/dev/null || true
printf 'Package: a\nVersion: 1.0\nDepends: R (>= 4.0), b\n\nPackage: b\nVersion: 2\nImports: c (>= 1), d\n' > corpus/cran_dcf/packages
for t in "${targets[@]}"; do
  echo "== fuzz $t for $seconds s"
  cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=262144
done
echo "fuzz: ${#targets[@]} targets ran $seconds s each without a crash"

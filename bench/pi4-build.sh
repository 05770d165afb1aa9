#!/usr/bin/env bash
# Benchmark: a cold and a warm build of recipes/pi4.yaml against a plain mmdebstrap of the
# same package set, in one run (compare the ratios; absolute times depend on the machine).
#
#   bench/pi4-build.sh            # needs root, network to the Debian archive, ~30-40 min
#
# Prints: a cold build to the uncompressed image (empty stage cache, nothing downloaded
# yet, like the plain mmdebstrap), a rebuild after an overlay-only change, and plain
# mmdebstrap (which runs update-initramfs after every package that triggers it, under
# qemu-user).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
bin=$PWD/target/release/imgbuild
work=$(mktemp -d /var/tmp/imgbuild-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The same recipe, publishing only the raw image (compression is not what we compare).
mkdir -p "$work/recipes/layers"
cp -r recipes/layers/. "$work/recipes/layers/"
cp recipes/pi4.yaml "$work/recipes/pi4.yaml"
# Layers name overlays relative to themselves: give the bench its own copy to change.
cp -r overlays "$work/overlays"
cat >> "$work/recipes/pi4.yaml" <<'YAML'
output: {compression: none}
YAML

packages=$("$bin" check "$work/recipes/pi4.yaml" | awk '/^  packages:/{p=1;next} p&&/^  - /{print $2;next} p{exit}' | paste -sd, -)
cache=$work/cache
# Both tools start cold: an empty stage cache and no downloaded packages.

t() { local s=$(date +%s.%N); "$@" >/dev/null 2>"$work/last.log" || { tail -20 "$work/last.log"; exit 1; }; echo "$(date +%s.%N) - $s" | bc; }

cold=$(t "$bin" -q --cache-dir "$cache" --out "$work/out" "$work/recipes/pi4.yaml")
echo "changed by the benchmark" > "$work/overlays/debian-server/etc/bench-marker"
warm=$(t "$bin" -q --cache-dir "$cache" --out "$work/out" "$work/recipes/pi4.yaml")
plain=$(t mmdebstrap --mode=root --variant=minbase --architectures=arm64 \
  --components=main,non-free-firmware --include="$packages" bookworm "$work/plain.tar")

printf '%-58s %10s\n' "what (pi4.yaml, arm64 under qemu-user, $(nproc) cores)" "seconds"
printf '%-58s %10.0f\n' "plain mmdebstrap, same packages (tarball only)" "$plain"
printf '%-58s %10.0f  (%.2f of plain)\n' "imgbuild cold build, to the raw image" "$cold" "$(echo "$cold / $plain" | bc -l)"
printf '%-58s %10.1f\n' "imgbuild rebuild after an overlay-only change" "$warm"

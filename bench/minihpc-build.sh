#!/usr/bin/env bash
# Benchmark: a cluster recipe's head and compute images built together (one bootstrap
# and the common steps, built once) against the head alone and the compute image alone
# — what a tool building one image per run (pi-gen, rpi-image-gen, debos) costs: the
# two separate builds. Each build is cold for the stages (--no-cache) and shares the
# downloaded .deb files, so the figures compare building, not downloading.
#
#   bench/minihpc-build.sh                       # ci/minihpc-amd64.yaml (native): ~25 min on 2 cores
#   bench/minihpc-build.sh recipes/minihpc.yaml  # the Rock cluster (arm64 under qemu-user; slow)
#
# Aim: together ≤ 1.3 × the head alone.
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=$(realpath "${1:-ci/minihpc-amd64.yaml}")
cargo build --release --locked -q
bin=$PWD/target/release/imgbuild
work=$(mktemp -d /var/tmp/imgbuild-bench.XXXXXX)
fixture=
cleanup() {
  local rc=$?
  [ -n "$fixture" ] && kill "$fixture" 2>/dev/null
  if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "bench: kept $work" >&2; fi
}
trap cleanup EXIT
# *.github.io can't be reached here: the CI recipe mirrors a stand-in from ci/fixtures/;
# a real recipe builds without its lesson mirror.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory ci/fixtures "$port" >/dev/null 2>&1 &
fixture=$!
sets=(--set compression=none)
if "$bin" check "$recipe" 2>/dev/null | grep -q '^  fixtures:'; then
  sets+=(--set "fixtures=http://127.0.0.1:$port/")
else
  sets+=(--set mirrors=false)
fi

# The recipe's images, and one recipe per image that leaves the others out (`~`).
name=$(sed -n 's/^name: *//p' "$recipe" | head -n1)
name=${name:-$(basename "$recipe" .yaml)}
images=$(awk '/^images:/{p=1; next} p && /^  [A-Za-z0-9_-]+:/{n = $1; sub(":.*", "", n); print n; next} p && /^[^ #]/{exit}' "$recipe")
only() { # IMAGE: a recipe building IMAGE alone
  local f=$work/only-$1.yaml
  { echo "name: $name"; echo "extends: $recipe"; echo "images:"
    for i in $images; do [ "$i" = "$1" ] || echo "  $i: ~"; done; } > "$f"
  echo "$f"
}
# Times a build (seconds on stdout); on failure its log's end goes to stderr.
# The images go between builds: two clusters' images at once are many GB.
t() { local s; rm -rf "$work/out"; s=$(date +%s.%N)
  "$bin" --no-cache "${sets[@]}" --out "$work/out" "$1" >/dev/null 2>"$work/last.log" || { tail -20 "$work/last.log" >&2; exit 1; }
  echo "$(date +%s.%N) - $s" | bc; }

first=$(head -n1 <<<"$images")
# Warm the .deb cache (not timed): every figure below then downloads nothing.
"$bin" "${sets[@]}" --out "$work/out" "$recipe" >/dev/null 2>"$work/last.log" || { tail -20 "$work/last.log" >&2; exit 1; }
printf '%-64s %10s\n' "what ($(basename "$recipe"), $(nproc) cores, stages cold)" "seconds"
declare -A alone
sum=0
for i in $images; do
  alone[$i]=$(t "$(only "$i")")
  sum=$(echo "$sum + ${alone[$i]}" | bc)
  printf '%-64s %10.1f\n' "image $i alone" "${alone[$i]}"
done
together=$(t "$recipe")
printf '%-64s %10.1f\n' "all $(wc -w <<<"$images") images together (imgbuild, one run)" "$together"
printf '%-64s %10.1f\n' "one build per image (a per-image tool: the sum above)" "$sum"
printf '%-64s %10.2f  (aim ≤ 1.3)\n' "together / $first alone" "$(echo "$together / ${alone[$first]}" | bc -l)"
printf '%-64s %10.2f\n' "together / one build per image" "$(echo "$together / $sum" | bc -l)"

#!/usr/bin/env bash
# Benchmark: the pi4 workshop server as the fresh-machine run builds it (no mirrors, no
# Gitea: nothing from hosts this network can't reach) against a plain mmdebstrap of
# exactly the same package set, components and architecture, in one run. Compare the
# ratios; absolute times depend on the machine.
#
#   bench/pi4-build.sh            # needs root and the Debian archive; ~60 min on 2 cores
#   bench/pi4-build.sh x86-usb    # another recipe of recipes/ (the x86 stick: native, ~15 min)
#
# Prints: plain mmdebstrap (a tarball only; it runs every maintainer script and trigger as
# packaged, update-initramfs after each package that triggers it, all under qemu-user),
# imgbuild's cold build to the raw image (empty stage cache, nothing downloaded yet, as for
# the plain run), a rebuild after an overlay-only change, and where the emulated time of
# each went: the longest maintainer scripts and triggers, read from each root's dpkg log.
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=${1:-pi4}
cargo build --release --locked -q
bin=$PWD/target/release/imgbuild
work=$(mktemp -d /var/tmp/imgbuild-bench.XXXXXX)
trap 'rc=$?; if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "bench: kept $work (logs in out/logs)" >&2; fi' EXIT
sets=(--set mirrors=false --set gitea=false)
# A published image needs its own Wi-Fi passphrase (none is built in): one for the bench.
export IMGBUILD_WIFI_PASSPHRASE=bench-only-passphrase

# The same recipe, publishing only the raw image (compression is not what we compare).
mkdir -p "$work/recipes/layers"
cp -r recipes/layers/. "$work/recipes/layers/"
cp "recipes/$recipe.yaml" "$work/recipes/$recipe.yaml"
# Layers name overlays relative to themselves: give the bench its own copy to change.
cp -r overlays "$work/overlays"
cat >> "$work/recipes/$recipe.yaml" <<'YAML'
output: {compression: none}
YAML

# The package set, components and architecture exactly as imgbuild resolves them.
resolved=$("$bin" check "${sets[@]}" "$work/recipes/$recipe.yaml")
list() { awk -v key="  $1:" '$0==key{p=1;next} p&&/^  - /{print $2;next} p{exit}' <<<"$resolved" | sort -u | paste -sd, -; }
packages=$(list packages)
components=$(list components)
arch=$(awk '/^  architecture:/{print $2; exit}' <<<"$resolved")
suite=$(awk '/^  suite:/{print $2; exit}' <<<"$resolved")
cache=$work/cache

# Times a command; on failure its log's end goes to stderr (stdout is the figure).
t() { local s; s=$(date +%s.%N); "$@" >/dev/null 2>"$work/last.log" || { tail -20 "$work/last.log" >&2; exit 1; }; echo "$(date +%s.%N) - $s" | bc; }

# Both tools start cold: an empty stage cache and no downloaded packages. Each figure is
# printed as soon as it is measured.
printf '%-60s %10s\n' "what ($recipe.yaml without mirrors and Gitea, $arch, $(nproc) cores)" "seconds"
mkdir -p "$work/plain-log"
# BENCH_PLAIN_SECONDS=N reuses a plain figure measured earlier on this machine (the plain
# run alone takes ~50 min); the table then says so, and there is no plain dpkg breakdown.
if [ -n "${BENCH_PLAIN_SECONDS:-}" ]; then
  plain=$BENCH_PLAIN_SECONDS
  printf '%-60s %10.0f  (earlier run)\n' "plain mmdebstrap, same $(tr ',' '\n' <<<"$packages" | wc -l) packages (tarball only)" "$plain"
else
plain=$(t mmdebstrap --mode=root --variant=minbase --architectures="$arch" \
  --components="$components" --include="$packages" \
  --customize-hook="copy-out /var/log/dpkg.log $work/plain-log" \
  "$suite" "$work/plain.tar")
printf '%-60s %10.0f\n' "plain mmdebstrap, same $(tr ',' '\n' <<<"$packages" | wc -l) packages (tarball only)" "$plain"
fi
cold=$(t "$bin" -q "${sets[@]}" --cache-dir "$cache" --out "$work/out" "$work/recipes/$recipe.yaml")
printf '%-60s %10.0f  (%.2f of plain)\n' "imgbuild cold build, to the raw image" "$cold" "$(echo "$cold / $plain" | bc -l)"
echo "changed by the benchmark" > "$work/overlays/debian-server/etc/bench-marker"
warm=$(t "$bin" -q "${sets[@]}" --cache-dir "$cache" --out "$work/out" "$work/recipes/$recipe.yaml")
printf '%-60s %10.1f\n' "imgbuild rebuild after an overlay-only change" "$warm"

# Where the time went: dpkg's log, each line's time charged to the action it starts
# (a package's configure runs its postinst; trigproc runs a trigger), one-second steps.
# imgbuild keeps its bootstrap's dpkg log beside its other logs.
for who in plain imgbuild; do
  log=$work/out/logs/dpkg.log
  [ "$who" = plain ] && log=$work/plain-log/dpkg.log
  echo
  echo "longest maintainer scripts and triggers, $who (from its root's /var/log/dpkg.log):"
  python3 bench/dpkg-time.py "$log" 12 || echo "  (no dpkg log in the $who root)"
done
echo
echo "imgbuild's deferred jobs (customize hook, after dpkg; $work/out/logs/mmdebstrap.log):"
grep -ho 'imgbuild: .* took [0-9]*s' "$work/out/logs/mmdebstrap.log" | sed 's/^/  /' || echo "  (none logged)"

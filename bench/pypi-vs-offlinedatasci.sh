#!/usr/bin/env bash
# Benchmark: the PyPI partial mirror of offlinedatasci 0.7.0 (its python-packages step) against
# `imgbuild fetch` of the same packages, Python and platforms (bench/pypi-bench.yaml), in one run:
#
#   bench/pypi-vs-offlinedatasci.sh     # needs network to PyPI; ~5 min, ~1 GB in $BENCH_DIR
#
# Runs offlinedatasci cold (fresh output, empty pip cache), imgbuild fetch cold (no cache, no
# lock) and imgbuild fetch warm (same cache and lock, fresh output), and prints for each: wall
# seconds, MB received (rx_bytes over every interface but lo and ifb*, which mirror another
# interface's ingress when used for shaping), MB stored (du -sb of output + the tool's caches,
# hard links counted once), files (distinct inodes) and duplicate files (files whose content,
# by sha256, another file already has).
#
# Environment: BENCH_DIR (default /tmp/imgbuild-bench-pypi), IMGBUILD (default
# target/release/imgbuild, built if missing), ODS_PYTHON_VERSION (default 3.12.9, see below).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

BENCH_DIR=${BENCH_DIR:-/tmp/imgbuild-bench-pypi}
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
IMGBUILD=${IMGBUILD:-$repo/target/release/imgbuild}
# offlinedatasci asks python.org for the newest 3.12.x (get_python_version) before every run:
# it string-sorts the versions, so it gets "3.12.9", not 3.12.1x. The bench does not depend on
# python.org being reachable: it replaces that lookup with this fixed answer.
ODS_PYTHON_VERSION=${ODS_PYTHON_VERSION:-3.12.9}
packages=(matplotlib notebook numpy pandas)

die() { echo "pypi-vs-offlinedatasci: $*" >&2; exit 1; }

if [[ ! -x $IMGBUILD ]]; then
  [[ $IMGBUILD == "$repo/target/release/imgbuild" ]] || die "IMGBUILD=$IMGBUILD is not executable"
  cargo build --release --locked -q
fi
"$IMGBUILD" fetch --help >/dev/null 2>&1 || die "$IMGBUILD has no working \`fetch\` command"

# offlinedatasci in its own venv (installed once, outside the measured runs).
venv=$BENCH_DIR/venv
if ! "$venv/bin/python" -c 'import sys, offlinedatasci; sys.exit(offlinedatasci.__version__ != "0.7.0")' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check offlinedatasci==0.7.0
fi

rx_bytes() {
  local total=0 dev
  for dev in /sys/class/net/*; do
    case ${dev##*/} in lo | ifb*) continue ;; esac
    [[ -r $dev/statistics/rx_bytes ]] || continue
    total=$((total + $(<"$dev/statistics/rx_bytes")))
  done
  echo "$total"
}

declare -A wall rx stored files dups

# measure NAME CMD...: wall seconds and bytes received while CMD runs (its output goes to a log).
measure() {
  local name=$1 log=$BENCH_DIR/$1.log t0 t1 rx0 rx1
  shift
  rx0=$(rx_bytes)
  t0=$(date +%s.%N)
  if ! "$@" >"$log" 2>&1; then
    tail -20 "$log" >&2
    die "$name failed (log: $log)"
  fi
  t1=$(date +%s.%N)
  rx1=$(rx_bytes)
  wall[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  rx[$name]=$((rx1 - rx0))
}

# storage NAME DIR...: bytes, files and duplicate files under the DIRs that exist.
storage() {
  local name=$1 d dirs=() sums
  shift
  for d in "$@"; do [[ -e $d ]] && dirs+=("$d"); done
  if ((${#dirs[@]} == 0)); then
    stored[$name]=0 files[$name]=0 dups[$name]=0
    return
  fi
  stored[$name]=$(du -scb "${dirs[@]}" | tail -1 | cut -f1)
  # One path per inode (hard links are stored once), then the sha256 of each.
  sums=$(find "${dirs[@]}" -type f -printf '%D:%i\t%p\n' | sort -t $'\t' -u -k1,1 | cut -f2- |
    tr '\n' '\0' | xargs -0 -r sha256sum | awk '{ print $1 }')
  files[$name]=$(grep -c . <<<"$sums" || true)
  dups[$name]=$(("${files[$name]}" - $(sort -u <<<"$sums" | grep -c . || true)))
}

# --- offlinedatasci, cold --------------------------------------------------------------------
# Its python-packages step is offlinedatasci.main.download_python_packages(ods_dir, pkgs) (the
# CLI's `offlinedatasci install python-packages DIR` / `add python-packages PKG... DIR`): three
# `pip3 download --only-binary :all: --platform P --python-version V -d DIR/pythonlibraries`
# runs, then python-pypi-mirror's create_mirror(copy=True) into DIR/pypi. It calls whatever
# `pip3` is first on PATH, so the venv goes first; PIP_FIND_LINKS and PIP_NO_INDEX are dropped
# so that every file comes from the index, and pip gets an empty cache of its own.
ods_out=$BENCH_DIR/ods-out
ods_pipcache=$BENCH_DIR/ods-pip-cache
rm -rf "$ods_out" "$ods_pipcache"
mkdir -p "$ods_pipcache"
measure offlinedatasci env -u PIP_FIND_LINKS -u PIP_NO_INDEX -u PIP_NO_CACHE_DIR \
  PATH="$venv/bin:$PATH" PIP_CACHE_DIR="$ods_pipcache" PIP_DISABLE_PIP_VERSION_CHECK=1 \
  "$venv/bin/python" -c '
import sys
import offlinedatasci.main as ods
ods.get_python_version = lambda minor_version="3.12": sys.argv[2]
ods.download_python_packages(sys.argv[1], sys.argv[3:])
' "$ods_out" "$ODS_PYTHON_VERSION" "${packages[@]}"
storage offlinedatasci "$ods_out" "$ods_pipcache"

# --- imgbuild fetch, cold then warm ----------------------------------------------------------
# A copy of the recipe, so that the lock imgbuild writes beside it stays out of the repo.
recipe=$BENCH_DIR/pypi-bench.yaml
ib_out=$BENCH_DIR/imgbuild-out
ib_cache=$BENCH_DIR/imgbuild-cache
uv_cache=$BENCH_DIR/imgbuild-uv-cache # in case fetch runs uv without a cache dir of its own
rm -rf "$ib_out" "$ib_cache" "$uv_cache" "${recipe%.yaml}.lock"
cp bench/pypi-bench.yaml "$recipe"
# Neither tool sees PIP_FIND_LINKS/PIP_NO_INDEX (uv ignores them, but so nothing can come from a
# local wheel directory).
ib_fetch() { env -u PIP_FIND_LINKS -u PIP_NO_INDEX UV_CACHE_DIR=$uv_cache "$IMGBUILD" fetch "$recipe" --out "$ib_out" --cache-dir "$ib_cache"; }
measure "imgbuild-cold" ib_fetch
storage "imgbuild-cold" "$ib_out" "$ib_cache" "$uv_cache"
[[ -e ${recipe%.yaml}.lock ]] || echo "note: no ${recipe%.yaml}.lock after the cold fetch" >&2
# Warm: same cache and lock, a fresh output directory.
rm -rf "$ib_out"
measure "imgbuild-warm" ib_fetch
storage "imgbuild-warm" "$ib_out" "$ib_cache" "$uv_cache"

# --- table ---------------------------------------------------------------------------------------
echo
echo "PyPI mirror of ${packages[*]}, Python 3.12, 3 platforms; $(nproc) cores, $(date -u +%F)"
echo "offlinedatasci 0.7.0 with $("$venv/bin/pip" --version | cut -d' ' -f1,2) (python-version $ODS_PYTHON_VERSION)"
printf '%-16s %8s %9s %9s %7s %7s %12s\n' tool "wall s" "MB down" "MB stored" files "dup" "wall/ods"
for name in offlinedatasci imgbuild-cold imgbuild-warm; do
  printf '%-16s %8s %9.1f %9.1f %7d %7d %12.3f\n' "$name" "${wall[$name]}" \
    "$(awk -v b="${rx[$name]}" 'BEGIN { print b / 1e6 }')" \
    "$(awk -v b="${stored[$name]}" 'BEGIN { print b / 1e6 }')" \
    "${files[$name]}" "${dups[$name]}" \
    "$(awk -v a="${wall[$name]}" -v b="${wall[offlinedatasci]}" 'BEGIN { print a / b }')"
done
echo "(MB stored: output + the tool's caches; dup: files whose sha256 another file has; logs in $BENCH_DIR)"

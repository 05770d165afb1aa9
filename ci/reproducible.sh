#!/usr/bin/env bash
# Builds each recipe twice from scratch — each build with its own empty stage cache, the
# second started later on the wall clock — and compares the results byte for byte. When
# they differ it says where: which partition, and in it which files (both root file
# systems are dumped with debugfs or mtools and compared, diffoscope shows the first
# differing files), or that the trees are equal and only file-system metadata differs.
#   ci/reproducible.sh                 # the example recipes, the container, the Pi Zero
#   ci/reproducible.sh RECIPE...       # these (servers without mirrors and Gitea)
# Needs root (the Debian recipes run steps) and the Debian archive; the Pi Zero pair takes
# ~25 min on 2 cores, the others a few minutes. Exit 1 when any pair differs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
bin=$PWD/target/release/imgbuild
recipes=("$@")
[ ${#recipes[@]} -gt 0 ] || recipes=(recipes/example-mbr.yaml recipes/example-gpt.yaml recipes/container.yaml recipes/pi-zero.yaml)
work=$(mktemp -d /var/tmp/imgbuild-repro.XXXXXX)
trap 'rc=$?; if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "reproducible: kept $work" >&2; fi' EXIT
# Both builds get the same secret: a published image has its own, but the check is of
# everything else.
export IMGBUILD_WIFI_PASSPHRASE=reproducibility-check
unset SOURCE_DATE_EPOCH

# Lists what differs between two dumped trees; shows the first differences in detail.
explain_trees() {
  local a=$1 b=$2 changed
  changed=$(diff -rq --no-dereference "$a" "$b" || true)
  if [ -z "$changed" ]; then
    echo "    the files are identical; the file system's own metadata differs"
    return
  fi
  sed 's/^/    /' <<<"$changed" | head -n 40
  if command -v diffoscope >/dev/null; then
    grep -oE '^Files [^ ]+ and [^ ]+ differ$' <<<"$changed" | head -n 3 | while read -r _ fa _ fb _; do
      diffoscope --text - --max-report-size 20000 "$fa" "$fb" | sed 's/^/      /' | head -n 40 || true
    done
  fi
}

# Partition by partition: which differ, and what differs in each.
explain_images() {
  local a=$1 b=$2 dir=$3 n start size fs
  while read -r n start size fs; do
    if cmp -s <(dd if="$a" bs=512 skip=$((start / 512)) count=$((size / 512)) status=none) \
              <(dd if="$b" bs=512 skip=$((start / 512)) count=$((size / 512)) status=none); then
      continue
    fi
    echo "  partition $n ($fs) differs:"
    mkdir -p "$dir/p$n-a" "$dir/p$n-b"
    for side in a b; do
      local img=$a; [ $side = b ] && img=$b
      dd if="$img" of="$dir/p$n-$side.fs" bs=512 skip=$((start / 512)) count=$((size / 512)) status=none
      case "$fs" in
        ext*) debugfs -R "rdump / $dir/p$n-$side" "$dir/p$n-$side.fs" >/dev/null 2>&1 || true ;;
        vfat*) mcopy -s -p -n -i "$dir/p$n-$side.fs" ::/ "$dir/p$n-$side/" 2>/dev/null || true ;;
      esac
    done
    explain_trees "$dir/p$n-a" "$dir/p$n-b"
  done < <("$bin" inspect --json "$a" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["partitions"]:
    print(p["number"], p["start"], p["size"], p["filesystem"].get("kind") or "raw")')
}

failed=0
for r in "${recipes[@]}"; do
  name=$(basename "$r" .yaml)
  # The servers without the sources this network can't reach; the Pi images raw only.
  case "$name" in
    pi*) sets=(--set compression=none --set mirrors=false --set gitea=false) ;;
    container) sets=(--set mirrors=false --set gitea=false) ;;
    *) sets=() ;;
  esac
  for run in a b; do
    echo "== $name: build $run ($(date -u +%H:%M:%S))"
    "$bin" -q "${sets[@]}" --cache-dir "$work/$name-$run/cache" --out "$work/$name-$run/out" "$r" >/dev/null
    # The second build starts on another second of the clock, at least.
    sleep 2
  done
  outputs=$(cd "$work/$name-a/out" && ls -- *.img *.oci.tar 2>/dev/null || true)
  [ -n "$outputs" ] || { echo "$name: no image in $work/$name-a/out" >&2; exit 1; }
  for f in $outputs; do
    if cmp -s "$work/$name-a/out/$f" "$work/$name-b/out/$f"; then
      echo "$name: $f identical ($(sha256sum <"$work/$name-a/out/$f" | cut -c1-16))"
      continue
    fi
    failed=1
    echo "$name: $f DIFFERS"
    case "$f" in
      *.img) explain_images "$work/$name-a/out/$f" "$work/$name-b/out/$f" "$work/$name-diff" ;;
      *.oci.tar)
        mkdir -p "$work/$name-diff/a" "$work/$name-diff/b"
        tar -C "$work/$name-diff/a" -xf "$work/$name-a/out/$f"
        tar -C "$work/$name-diff/b" -xf "$work/$name-b/out/$f"
        explain_trees "$work/$name-diff/a" "$work/$name-diff/b"
        ;;
    esac
  done
done
exit $failed

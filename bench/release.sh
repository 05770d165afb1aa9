#!/usr/bin/env bash
# Benchmark: `imgbuild release` of a multi-GB disk image against the same work done with
# the usual tools one after another — `xz -T0`, `bmaptool create`, `split` and `sha256sum`
# of the image, the compressed file and the parts — in one run, on the same image.
#
#   bench/release.sh            # no root, no network; ~15 min on 2 cores
#
# The image: a 3 GiB GPT disk whose ext4 root holds this host's /usr/bin and /usr/share
# (about 1.4 GB of real programs, libraries' data and text; the rest of the disk unused,
# as on a freshly built server image). Parts of at most BENCH_PART_SIZE (default 256MiB).
# Prints the seconds and download size of each, and the ratio; three figures for ours:
#   release (build's xz)  the normal flow: the build already wrote its multi-block .img.xz,
#                         the release takes it as it is (hash, bmap from the layout, parts)
#   release (raw only)    a build without compression: the release compresses too
#   usual tools           xz -T0 -6; bmaptool create; split; sha256sum image, xz, parts
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
bin=$PWD/target/release/imgbuild
part=${BENCH_PART_SIZE:-256MiB}
work=$(mktemp -d /var/tmp/imgbuild-bench-release.XXXXXX)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

tar -C / -cf "$work/rootfs.tar" usr/bin usr/share 2>/dev/null || true
for c in xz none; do
  cat > "$work/bench-$c.yaml" <<YAML
name: bench-$c
rootfs: {tar: rootfs.tar, architecture: amd64}
image:
  table: gpt
  partitions:
    root: {filesystem: ext4, size: 3GiB, mount: /}
output: {compression: $c}
YAML
  echo "bench: building the $c image (not timed)" >&2
  # Into $work/images/bench-$c, where `imgbuild release` run from $work finds it built.
  (cd "$work" && SOURCE_DATE_EPOCH=1700000000 "$bin" -q "bench-$c.yaml" >/dev/null)
done
img=$work/images/bench-none/bench-none.img
echo "image: $(du -h --apparent-size "$img" | cut -f1) ($(du -h "$img" | cut -f1) on disk), data $(du -sh "$work/rootfs.tar" | cut -f1)"

t=$(now)
(cd "$work" && "$bin" -q release --part-size "$part" --out rel-xz bench-xz.yaml >/dev/null)
ours_xz=$(since "$t")
t=$(now)
(cd "$work" && "$bin" -q release --part-size "$part" --out rel-raw bench-none.yaml >/dev/null)
ours_raw=$(since "$t")

# The usual tools, one after another, as a maintainer's script runs them.
mkdir "$work/usual"
t=$(now)
xz -T0 -6 -k -c "$img" > "$work/usual/bench.img.xz"
bmaptool -q create -o "$work/usual/bench.bmap" "$img"
split -b "$(numfmt --from=iec "${part%iB}")" -d -a 3 "$work/usual/bench.img.xz" "$work/usual/bench.img.xz."
( cd "$work/usual" && sha256sum "$img" bench.img.xz bench.img.xz.* > SHA256SUMS )
usual=$(since "$t")

size() { stat -c %s "$1"; }
printf '%-34s %10s %14s %8s\n' what seconds download ratio
printf '%-34s %10s %14s %8s\n' "imgbuild release (build's xz)" "$ours_xz" "$(size "$work/rel-xz/bench-xz.img.xz")" \
  "$(awk -v a="$ours_xz" -v b="$usual" 'BEGIN { printf "%.2f", a / b }')"
printf '%-34s %10s %14s %8s\n' "imgbuild release (raw only)" "$ours_raw" "$(size "$work/rel-raw/bench-none.img.xz")" \
  "$(awk -v a="$ours_raw" -v b="$usual" 'BEGIN { printf "%.2f", a / b }')"
printf '%-34s %10s %14s %8s\n' "xz -T0, bmaptool, split, sha256sum" "$usual" "$(size "$work/usual/bench.img.xz")" 1.00

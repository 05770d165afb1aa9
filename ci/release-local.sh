#!/usr/bin/env bash
# A tag-shaped release run on this machine, as .github/workflows/release.yml makes one on
# a `v*` tag: `imgbuild release` over the Pi recipes and the container (each built first
# where images/<name>/ holds none), then every file checked with the clients that will
# read it:
#   - sha256sum -c SHA256SUMS; every part at most --part-size, the parts joined with `cat`
#     are the whole file;
#   - rpi-imager.json valid against Imager's os-list schema (check-jsonschema), and every
#     size and sha256 in it recomputed from the files (xz -dc for the image's own);
#   - bmaptool copy of each image with its bmap (it checks our range checksums);
#   - a second release of the same builds is byte for byte the same directory.
#
#   ci/release-local.sh [OUT]       (default /var/tmp/imgbuild-release)
#
# The recipes in the form this network can build (`--set mirrors=false --set
# gitea=false`: CRAN, *.github.io and dl.gitea.com are out of reach). A small part size
# (RELEASE_PART_SIZE, default 128MiB) so the parts and the whole-file URL are exercised
# with images that are smaller than GitHub's 2 GiB limit. Needs root (the builds).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/var/tmp/imgbuild-release}
part=${RELEASE_PART_SIZE:-128MiB}
recipes=(recipes/pi-zero.yaml recipes/pi4.yaml recipes/pi5.yaml recipes/container.yaml)
tag=v0.0.0-local
url=https://github.com/carpentriesoffline/imgbuild/releases/download/$tag/
whole=https://images.example.org/imgbuild/$tag/
# The builds write recipes/NAME.lock beside each recipe: the pins of this offline form,
# not the recipe's real lock, so the ones this run made go at the end.
made_locks=()
for r in "${recipes[@]}"; do [ -e "${r%.yaml}.lock" ] || made_locks+=("${r%.yaml}.lock"); done
cleanup() { rm -f "${made_locks[@]}"; [ -z "${again:-}" ] || rm -rf "$again"; }
trap cleanup EXIT
cargo build --release --locked -q
bin=target/release/imgbuild
release() {
  "$bin" --set mirrors=false --set gitea=false release "${recipes[@]}" --out "$1" \
    --part-size "$part" --url "$url" --whole-url "$whole"
}
log() { printf 'release-local %s: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

log "imgbuild release ${recipes[*]} --out $out --part-size $part"
start=$SECONDS
release "$out"
log "released in $((SECONDS - start)) s"
ls -l "$out"

log "sha256sum -c SHA256SUMS"
(cd "$out" && sha256sum --quiet -c SHA256SUMS)

log "rpi-imager.json against Imager's os-list schema"
check-jsonschema --schemafile tests/fixtures/imager/os-list.schema.json "$out/rpi-imager.json"

log "parts, Imager's sizes and checksums, bmaps"
limit=$(numfmt --from=iec "${part%iB}")
python3 - "$out" "$limit" "$url" "$whole" <<'PY'
import hashlib, json, os, subprocess, sys
out, limit, url, whole = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
facts = json.load(open(os.path.join(out, "release.json")))
images = facts
entries = json.load(open(os.path.join(out, "rpi-imager.json")))["os_list"]
names = [i["name"] for i in images]
assert sorted(names) == ["container", "pi-zero", "pi4", "pi5"], names
for i in images:
    f = os.path.join(out, i["file"])
    assert os.path.getsize(f) == i["download_size"] and sha(f) == i["download_sha256"], i["file"]
    if i["parts"]:
        joined = hashlib.sha256()
        for p in i["parts"]:
            path = os.path.join(out, p["name"])
            size = os.path.getsize(path)
            assert size <= limit, (p["name"], size, "over --part-size")
            assert sha(path) == p["sha256"], p["name"]
            joined.update(open(path, "rb").read())
        assert joined.hexdigest() == i["download_sha256"], "the joined parts are not the file"
    print(f"{i['file']}: {i['download_size']} bytes, {len(i['parts'])} parts")
    if i.get("bmap") is None:
        continue
    xz = subprocess.Popen(["xz", "-dc", f], stdout=subprocess.PIPE)
    h, raw_size = hashlib.sha256(), 0
    for block in iter(lambda: xz.stdout.read(1 << 20), b""):
        h.update(block)
        raw_size += len(block)
    assert xz.wait() == 0, f"xz -dc {f}"
    assert raw_size == i["extract_size"], (i["file"], raw_size)
    assert h.hexdigest() == i["extract_sha256"], i["file"]
    entry = [e for e in entries if e["url"].endswith("/" + i["file"])]
    if i.get("devices"):
        assert len(entry) == 1, (i["name"], list(entries))
        e = entry[0]
        base = whole if i["parts"] else url
        assert e["url"] == base + i["file"], (e["url"], base)
        assert e["extract_size"] == raw_size and e["extract_sha256"] == i["extract_sha256"]
        assert e["image_download_size"] == i["download_size"]
        assert e["image_download_sha256"] == i["download_sha256"]
        assert set(e["devices"]) == set(i["devices"]), e["devices"]
        print(f"  Imager entry {e['name']!r}: devices {', '.join(e['devices'])}")
    else:
        assert not entry, (i["name"], "has no Imager devices but an entry")
    copy = os.path.join(out, ".bmaptool-copy.img")
    subprocess.run(["bmaptool", "-q", "copy", "--bmap", os.path.join(out, i["bmap"]), f, copy], check=True)
    # bmaptool checked every range's sha256 as it wrote; the copy has the image's size.
    size = os.path.getsize(copy)
    os.remove(copy)
    assert size == raw_size, ("bmaptool wrote", size, "bytes of", raw_size)
    print(f"  bmaptool copy with {i['bmap']}: ok")
PY

log "a second release of the same builds is the same directory"
again=$(mktemp -d "${out%/}.again.XXXXXX")
release "$again" >/dev/null
diff -r "$out" "$again"
grep -q 'copy /b' "$out/RELEASE-NOTES.md"
log "all checked: $out"

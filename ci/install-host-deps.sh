#!/usr/bin/env bash
# Installs the host packages imgbuild calls (e2fsprogs >= 1.47.1 from bookworm-backports
# on bookworm, dosfstools, mtools, fdisk, ...) and its tests use (skopeo, podman and umoci
# load the container archives). Idempotent; needs root or sudo.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

. /etc/os-release
codename="${VERSION_CODENAME:-}"

# e2fsprogs >= 1.47.1 reads a tar archive as `mke2fs -d` source; bookworm has 1.47.0.
backports=()
if [ "$codename" = "bookworm" ]; then
  src=/etc/apt/sources.list.d/imgbuild-bookworm-backports.sources
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    $SUDO tee "$src" >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  backports=(-t bookworm-backports)
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${backports[@]}" e2fsprogs libarchive13 \
  qemu-user-static qemu-system-arm qemu-utils
$SUDO apt-get install -y -qq --no-install-recommends \
  dosfstools mtools fdisk xz-utils zstd gzip tar attr ca-certificates curl \
  build-essential pkg-config liblzma-dev libzstd-dev \
  mmdebstrap debian-archive-keyring binfmt-support arch-test uidmap gpg device-tree-compiler \
  git python3 python3-venv python3-pip python3-jsonschema python3-yaml r-base-core \
  skopeo podman umoci \
  "$@"
# uv resolves PyPI content (`content.pypi`); pinned, in its own virtual environment.
UV_VERSION=0.13.9
if ! command -v uv >/dev/null || [ "$(uv --version | awk '{print $2}')" != "$UV_VERSION" ]; then
  $SUDO python3 -m venv /opt/imgbuild-uv
  $SUDO /opt/imgbuild-uv/bin/pip install -q "uv==$UV_VERSION"
  $SUDO ln -sf /opt/imgbuild-uv/bin/uv /usr/local/bin/uv
fi
# npm installs npm packages for `files: {DIR: {npm: ...}}` (Etherpad); any npm >= 7 does,
# so one already installed (e.g. from NodeSource) is kept.
if ! command -v npm >/dev/null; then
  $SUDO apt-get install -y -qq --no-install-recommends npm
fi
# Foreign-architecture builds run the target's programs through qemu-user-static.
if [ -d /proc/sys/fs/binfmt_misc ] && ! [ -e /proc/sys/fs/binfmt_misc/status ]; then
  $SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
fi
for emu in qemu-aarch64 qemu-arm; do
  $SUDO update-binfmts --enable "$emu" 2>/dev/null || true
done

# Ubuntu before 24.10 (and Debian before bookworm-backports) ship an e2fsprogs whose
# mke2fs cannot read a tar archive: say so plainly rather than fail later.
version=$(mke2fs -V 2>&1 | awk 'NR==1{print $2}')
if [ "$(printf '%s\n' 1.47.1 "$version" | sort -V | awk 'NR==1')" != "1.47.1" ]; then
  echo "ci/install-host-deps.sh: e2fsprogs $version is too old: imgbuild needs 1.47.1 or newer" >&2
  echo "  (Debian bookworm-backports or trixie, Ubuntu 24.10 or newer, or run in a debian:trixie container)" >&2
  exit 1
fi
echo "e2fsprogs $version"

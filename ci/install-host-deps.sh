#!/usr/bin/env bash
# Installs every host program imgbuild, its tests and its CI scripts call, from the one
# host-program table (src/process/programs.tsv): Debian packages (on bookworm some from
# bookworm-backports, e.g. e2fsprogs >= 1.47.1, whose mke2fs reads tar archives), and the
# PyPI tools (uv, the workflow linters) into /opt/imgbuild-tools. Then registers qemu-user
# with binfmt_misc for the foreign architectures (either packaging, with or without
# systemd running) and checks the result. Idempotent; needs root or sudo.
#   ci/install-host-deps.sh [EXTRA DEBIAN PACKAGES...]
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
say() { echo "install-host-deps: $*" >&2; }
die() { say "$*"; exit 1; }

. /etc/os-release
codename="${VERSION_CODENAME:-}"
table=src/process/programs.tsv

# Whether `program` is on PATH at `minimum` or newer (`-`: any version).
present() {
  local program=$1 minimum=$2 flag=$3 have
  # A file, not a shell builtin of the same name (`kill`).
  PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" type -P "$program" >/dev/null || return 1
  [ "$minimum" = - ] && return 0
  have=$("$program" $flag 2>&1 | grep -oE '(^|[ v])[0-9]+(\.[0-9]+)+' | head -n1 | tr -d ' v')
  [ -n "$have" ] && [ "$(printf '%s\n' "$minimum" "$have" | sort -V | head -n1)" = "$minimum" ]
}

# The table's packages: on bookworm, those marked `backports` come from there. A program
# already here at the version needed keeps its own package (say, npm from NodeSource,
# which conflicts with Debian's); the packages it needs for imgbuild's work are added.
plain=() backported=() pip=()
while IFS=$'\t' read -r program packages minimum bookworm used_by version why; do
  case "$program" in ''|'#'*) continue ;; esac
  if present "$program" "$minimum" "$version"; then
    case "$packages" in *' '*) packages=${packages#* } ;; *) packages="" ;; esac
  fi
  for pkg in $packages; do
    case "$pkg" in
      pip:*) pip+=("${pkg#pip:}") ;;
      *) if [ "$bookworm" = backports ] && [ "$codename" = bookworm ]; then backported+=("$pkg"); else plain+=("$pkg"); fi ;;
    esac
  done
done < "$table"
uniq_list() { printf '%s\n' "$@" | sed '/^$/d' | sort -u; }
mapfile -t plain < <(uniq_list "${plain[@]}" "$@")
mapfile -t backported < <(uniq_list "${backported[@]}")
mapfile -t pip < <(uniq_list "${pip[@]}")

# The machine's apt sources without comments (either file may be missing; a comment may
# name a snapshot URL the machine does not use).
apt_sources() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | sed 's/#.*//' || true
}
if [ ${#backported[@]} -gt 0 ] && ! apt_sources | grep -q "bookworm-backports"; then
  # The same mirror the machine already uses (deb.debian.org when none is found).
  mirror=$(apt_sources | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
  $SUDO tee /etc/apt/sources.list.d/imgbuild-bookworm-backports.sources >/dev/null <<SRC
Types: deb
URIs: ${mirror:-http://deb.debian.org/debian}
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
if [ ${#backported[@]} -gt 0 ]; then
  $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports "${backported[@]}"
fi
$SUDO apt-get install -y -qq --no-install-recommends "${plain[@]}"

# PyPI tools, pinned, in their own virtual environment; linked into /usr/local/bin.
venv=/opt/imgbuild-tools
# Debian's own Python (a pyenv or other interpreter in root's home would leave the tools
# unrunnable by other users, such as the test tier that runs as nobody).
if [ -x "$venv/bin/pip" ] && [ "$(readlink -f "$venv/bin/python3")" != "$(readlink -f /usr/bin/python3)" ]; then
  $SUDO rm -rf "$venv"
fi
[ -x "$venv/bin/pip" ] || $SUDO /usr/bin/python3 -m venv "$venv"
missing=()
for spec in "${pip[@]}"; do
  name=${spec%%==*} want=${spec#*==}
  have=$("$venv/bin/pip" show "$name" 2>/dev/null | awk '/^Version:/{print $2}' || true)
  [ "$have" = "$want" ] || missing+=("$spec")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO "$venv/bin/pip" install -q "${missing[@]}"
fi
for spec in "${pip[@]}"; do
  name=${spec%%==*}
  [ -x "$venv/bin/$name" ] && $SUDO ln -sf "$venv/bin/$name" "/usr/local/bin/$name"
done

# Foreign architectures: qemu-user registered with binfmt_misc (F flag: the interpreter
# is opened now, so it also works inside the chroots of a build). bookworm-backports' and
# trixie's qemu ship /usr/lib/binfmt.d/qemu-*.conf for systemd-binfmt; bookworm's own
# 7.2 uses binfmt-support's database. systemd-binfmt registers a file also when systemd
# is not running; without it, the file's line is what the kernel's `register` takes.
binfmt=/proc/sys/fs/binfmt_misc
if ! [ -e "$binfmt/status" ]; then
  $SUDO mount -t binfmt_misc binfmt_misc "$binfmt" || die "cannot mount binfmt_misc at $binfmt (in a container, run it privileged or mount it on the host)"
fi
systemd_binfmt=""
for t in /usr/lib/systemd/systemd-binfmt /lib/systemd/systemd-binfmt; do
  [ -x "$t" ] && { systemd_binfmt=$t; break; }
done
for emu in qemu-aarch64 qemu-arm; do
  if grep -qx enabled "$binfmt/$emu" 2>/dev/null && grep -q '^flags:.*F' "$binfmt/$emu"; then
    continue
  fi
  conf=/usr/lib/binfmt.d/$emu.conf
  if [ -f "$conf" ]; then
    # Drop an older registration (say, without F) before registering again.
    [ -e "$binfmt/$emu" ] && { echo -1 | $SUDO tee "$binfmt/$emu" >/dev/null; }
    if [ -n "$systemd_binfmt" ]; then
      $SUDO "$systemd_binfmt" "$conf"
    else
      grep -v '^#' "$conf" | $SUDO tee "$binfmt/register" >/dev/null
    fi
  elif [ -f "/usr/share/binfmts/$emu" ] && command -v update-binfmts >/dev/null; then
    $SUDO update-binfmts --enable "$emu"
  else
    die "no registration of $emu found (/usr/lib/binfmt.d/$emu.conf or binfmt-support's /usr/share/binfmts/$emu): is qemu-user-static installed?"
  fi
  grep -qx enabled "$binfmt/$emu" 2>/dev/null || die "registering $emu with binfmt_misc failed ($binfmt/$emu is missing or disabled)"
  grep -q '^flags:.*F' "$binfmt/$emu" || die "$emu is registered without the F flag: $(grep flags "$binfmt/$emu")"
done

# Every program of the table is there now (a package that stopped shipping one shows here;
# the directories are those `imgbuild doctor` looks in, grub-bios-setup's included).
while IFS=$'\t' read -r program packages _; do
  case "$program" in ''|'#'*) continue ;; esac
  PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/lib/grub/i386-pc" type -P "$program" >/dev/null || die "\`$program\` is still missing after installing $packages"
done < "$table"
# The checks `imgbuild doctor` makes (the README's commands run it too, once imgbuild is
# built): mke2fs new enough, and reading a tar archive (libarchive present).
version=$(mke2fs -V 2>&1 | awk 'NR==1{print $2}')
if [ "$(printf '%s\n' 1.47.1 "$version" | sort -V | head -n1)" != "1.47.1" ]; then
  die "e2fsprogs $version is too old: imgbuild needs 1.47.1 or newer (Debian bookworm-backports or trixie, Ubuntu 24.10 or newer)"
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo probe > "$probe/probe.txt"
tar -C "$probe" -cf "$probe/probe.tar" probe.txt
mke2fs -q -F -t ext4 -d "$probe/probe.tar" "$probe/probe.ext4" 1M 2>"$probe/err" \
  || die "mke2fs $version cannot read a tar archive ($(tail -n1 "$probe/err")): install libarchive13"
say "e2fsprogs $version reads tar; every program of $table present; qemu-aarch64 and qemu-arm registered with binfmt_misc"

#!/usr/bin/env bash
# Builds a Raspberry Pi workshop-server recipe and boots it in QEMU with `imgbuild
# boot-test`: systemd must reach multi-user.target with no failed unit, the root file
# system must grow, and the server must answer from the host (port 80 forwarded): the
# landing page, a lesson page, the PyPI index and the mirrors' help page. Before booting,
# the image is checked to hold no SSH host key, machine-id, Gitea secret or Wi-Fi
# passphrase (the boot makes them: its first-boot units must not fail).
# The x86 stick (ci/x86-server.yaml) is built once and booted three times: by BIOS
# (SeaBIOS), by UEFI (OVMF) and by UEFI with Secure Boot enforced. The Rock 4C+
# (recipes/rock-4c-plus.yaml, a plain server) is checked statically — its U-Boot's
# loaders, configuration and device tree — and its extlinux entry booted by U-Boot built
# from the same source for QEMU's virt machine.
#   ci/boot-test.sh [RECIPE...]     (default: ci/pi4-server.yaml ci/x86-server.yaml
#                                    recipes/rock-4c-plus.yaml)
# Needs root (the recipes run steps in the target), the Debian archive and PyPI. The
# lesson site and a stand-in Gitea come from ci/fixtures/ through a local web server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-host-deps.sh >/dev/null
. ci/ensure-rust.sh >/dev/null
cargo build --release --locked -q
recipes=("$@")
[ ${#recipes[@]} -gt 0 ] || recipes=(ci/pi4-server.yaml ci/x86-server.yaml recipes/rock-4c-plus.yaml)

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory ci/fixtures "$port" >/dev/null 2>&1 &
fixture=$!
trap 'kill $fixture 2>/dev/null || true' EXIT

# The image as built holds nothing each device must make for itself: no SSH host key, an
# empty machine-id, Gitea's secrets empty (ci/container-test.sh checks that two running
# copies then make different ones).
no_device_state() {
  local img=$1 inspect=(target/release/imgbuild inspect -q "$1" --cat)
  "${inspect[@]}" /etc/ssh/sshd_config >/dev/null # the check below can see /etc/ssh
  for key in ssh_host_ed25519_key ssh_host_ecdsa_key ssh_host_rsa_key; do
    if "${inspect[@]}" "/etc/ssh/$key" >/dev/null 2>&1; then
      echo "$img: the SSH host key /etc/ssh/$key is in the image" >&2; return 1
    fi
  done
  local id; id=$("${inspect[@]}" /etc/machine-id)
  if [ -n "$id" ]; then echo "$img: /etc/machine-id is set in the image ($id)" >&2; return 1; fi
  local ini
  if ini=$("${inspect[@]}" /etc/gitea/app.ini 2>/dev/null); then
    if grep -E '^(SECRET_KEY|INTERNAL_TOKEN|JWT_SECRET|LFS_JWT_SECRET) *= *[^ ]' <<<"$ini"; then
      echo "$img: a Gitea secret is in the image" >&2; return 1
    fi
  fi
  if [ -n "$("${inspect[@]}" /etc/hostapd/wpa_psk 2>/dev/null || true)" ]; then
    echo "$img: a Wi-Fi passphrase is built in (/etc/hostapd/wpa_psk)" >&2; return 1
  fi
  echo "no SSH host key, empty machine-id, no Gitea secret, no Wi-Fi passphrase"
}

for r in "${recipes[@]}"; do
  name=$(basename "$r" .yaml)
  machines=(auto)
  if [ "$r" = ci/pi4-server.yaml ] || [ "$r" = ci/x86-server.yaml ]; then
    sets=(--set "fixtures=http://127.0.0.1:$port/")
    http=(--http / --http /lessons/software-carpentry/shell-novice/
          --http /lessons/software-carpentry/shell-novice/episodes/02-filedir.html
          --http /pypi/six/ --http /mirrors.html)
    [ "$r" = ci/x86-server.yaml ] && machines=(pc-bios pc-uefi pc-secure-boot)
  elif [ "$name" = rock-4c-plus ] || [ "$name" = rock-4se ]; then
    # A plain server (no web server, no mirrors): static checks and the extlinux boot.
    sets=() http=()
  else
    # A Pi recipe: the server without the mirrors and Gitea download CI can't fetch.
    sets=(--set mirrors=false --set gitea=false)
    http=(--http /)
    case "$name" in
      # Their Etherpad and JupyterHub too (the Pi Zero has neither).
      pi4|pi5) http+=(--http /etherpad/ --http /etherpad/p/boot-test --http /jupyter/hub/login) ;;
    esac
  fi
  echo "== build $r"
  # As published: no passphrase built in, so the boot runs the first-boot settings.
  target/release/imgbuild --set compression=none "${sets[@]}" "$r"
  echo "== no per-device state in images/$name/$name.img"
  no_device_state "images/$name/$name.img"
  for m in "${machines[@]}"; do
    echo "== boot-test images/$name/$name.img --machine $m"
    # A PC chooses its learners' network at boot and says so on the landing page. QEMU
    # gives it two Ethernet ports; by BIOS it also gets no radio (the second port is
    # chosen), by UEFI a simulated one that can be an access point (hostapd must run).
    extra=() want=""
    case $m in
      pc-bios) extra=(--keep) want="Learners' network: the second Ethernet port" ;;
      pc-uefi) extra=(--keep --wifi-radio --expect-active hostapd.service)
               want="Learners' network: the Wi-Fi access point" ;;
    esac
    target/release/imgbuild boot-test "images/$name/$name.img" --machine "$m" "${extra[@]}" "${http[@]}"
    if [ -n "$want" ]; then
      copy="images/$name/$name.img.boot-test.img"
      page=$(target/release/imgbuild inspect -q "$copy" --cat /var/www/html/index.html)
      rm -f "$copy"
      grep -o "$want[^<]*" <<<"$page" ||
        { echo "$copy: the landing page does not say \"$want\"" >&2; exit 1; }
    fi
  done
done

#!/bin/sh
# Writes the access point's WPA2 passphrase where hostapd.conf's `wpa_psk_file` points,
# readable by root only, from the build's secret or the recipe variable (a build for a
# private use); or, for an open network asked for explicitly, nothing. With neither, the
# image holds no passphrase: each device takes its own at first boot, from the settings
# file on its boot partition or made at random (imgbuild-first-boot-settings), so a
# published image has none that everyone who downloads it shares. Never an open network
# by accident: hostapd does not start without the passphrase file.
set -eu
pass="${IMGBUILD_WIFI_PASSPHRASE:-$PASSPHRASE}"
psk="${PSK_FILE:-/etc/hostapd/wpa_psk}"
if [ -z "$pass" ]; then
  rm -f "$psk"
  if [ "$OPEN" != true ]; then
    echo "wifi-passphrase: no Wi-Fi passphrase in the image: each device makes its own at first boot (set IMGBUILD_WIFI_PASSPHRASE or --set wifi_passphrase=... to build one in)" >&2
  fi
  exit 0
fi
len=$(printf '%s' "$pass" | wc -c)
if [ "$len" -lt 8 ] || [ "$len" -gt 63 ]; then
  echo "wifi-passphrase: the Wi-Fi passphrase has $len characters; WPA2 needs 8 to 63" >&2
  exit 1
fi
install -d -m 755 "$(dirname "$psk")"
umask 077
# Any station (00:00:00:00:00:00) may use this passphrase.
printf '00:00:00:00:00:00 %s\n' "$pass" > "$psk"

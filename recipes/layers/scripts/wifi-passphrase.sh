#!/bin/sh
# Writes the access point's WPA2 passphrase where hostapd.conf's `wpa_psk_file` points,
# readable by root only, from the build's secret or the recipe variable; or, for an open
# network asked for explicitly, nothing. Refuses to build an open network by accident.
set -eu
pass="${IMGBUILD_WIFI_PASSPHRASE:-$PASSPHRASE}"
psk="${PSK_FILE:-/etc/hostapd/wpa_psk}"
if [ -z "$pass" ]; then
  if [ "$OPEN" = true ]; then
    rm -f "$psk"
    exit 0
  fi
  echo "wifi-passphrase: no Wi-Fi passphrase: set IMGBUILD_WIFI_PASSPHRASE for the build, or --set wifi_passphrase=..., or vars.wifi_open: true for an open network" >&2
  exit 1
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

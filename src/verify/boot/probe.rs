//! The boot probe: a script and a systemd unit written into the throw-away copy of the
//! image (never the image), which wait for systemd to finish starting, print what the
//! test needs on the console between markers, and power the machine off; and the
//! parser that reads those lines (and signs of known failures) back out of the serial
//! log. The parsing is pure, so it is tested on sample logs.

/// Every probe line starts with this (anywhere on a serial line: kernel messages can
/// land on the same line).
pub const MARKER: &str = "@@imgbuild-probe ";

/// Where the probe script goes in the copy's root file system.
pub const SCRIPT_PATH: &str = "/usr/local/sbin/imgbuild-boot-probe";
/// The unit, and the link that makes multi-user.target pull it in.
pub const UNIT_PATH: &str = "/etc/systemd/system/imgbuild-boot-probe.service";
pub const UNIT_LINK: &str = "/etc/systemd/system/multi-user.target.wants/imgbuild-boot-probe.service";
/// The probe also leaves its report in the copy, for when the console loses lines.
pub const REPORT_PATH: &str = "/var/log/imgbuild-boot-probe.log";
/// With this file in the copy the probe keeps the guest up after its report, so the
/// host can check its services over the network (`boot-test --http`).
pub const HOLD_PATH: &str = "/etc/imgbuild-boot-probe.hold";
/// DHCP on QEMU's network adapter (a USB adapter is `usb0` on the emulated Pis), in
/// the copy only.
pub const NETWORK_PATH: &str = "/etc/systemd/network/99-imgbuild-boot-test.network";
pub const NETWORK: &str = "[Match]\nName=usb* en* eth*\n\n[Network]\nDHCP=yes\n";

/// `--wifi-radio`: the kernel's simulated radio, one of it, loaded early in the copy's
/// boot (systemd-modules-load), so the image sees a Wi-Fi card that can be an access point.
pub const RADIO_PATH: &str = "/etc/modules-load.d/imgbuild-boot-test-radio.conf";
pub const RADIO: &str = "# imgbuild boot-test: a simulated Wi-Fi radio (test copy only)\nmac80211_hwsim\n";

/// The probe script. `is-system-running --wait` returns once no start-up job is left
/// (state `running`, or `degraded` when a unit failed); root sizes come from the
/// running system so they can be compared with the image's.
pub fn script(units: &[String]) -> String {
    // Unit names are checked by the command line (letters, digits, `:-_.@`).
    let units: String = units
        .iter()
        .map(|u| format!("  echo \"${{m}}unit {u} $(systemctl is-active {u} 2>&1)\"\n"))
        .collect();
    format!(
        r#"#!/bin/sh
# imgbuild boot-test probe. Written into a throw-away copy of the image only.
m='{marker}'
state=$(systemctl is-system-running --wait 2>&1)
{{
  echo "${{m}}begin"
  echo "${{m}}state $state"
  echo "${{m}}uptime $(cut -d' ' -f1 /proc/uptime)"
  echo "${{m}}multi-user $(systemctl is-active multi-user.target 2>&1)"
{units}  echo "${{m}}analyze $(systemd-analyze time 2>&1 | tr '\n' ' ')"
  systemctl --failed --no-legend --plain --no-pager 2>&1 |
    while read -r unit rest; do echo "${{m}}failed $unit"; done
  dev=$(findmnt -n -o SOURCE /)
  echo "${{m}}root-dev $dev"
  echo "${{m}}root-part-bytes $(lsblk -bdno SIZE "$dev" 2>&1)"
  if [ -d /sys/firmware/efi ]; then
    # The SecureBoot variable's fifth byte (after 4 bytes of attributes) is 1 when enforced.
    sb=$(od -An -tu1 -j4 -N1 /sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c 2>/dev/null | tr -d ' ')
    if [ "$sb" = 1 ]; then echo "${{m}}firmware uefi secure-boot"; else echo "${{m}}firmware uefi"; fi
    echo "${{m}}secureboot-kernel $(dmesg 2>&1 | grep -m1 -i 'secureboot:' | tr -s ' ')"
  else
    echo "${{m}}firmware bios"
  fi
  echo "${{m}}root-fs-bytes $(df -B1 --output=size / | tail -n 1 | tr -d ' ')"
  echo "${{m}}end"
}} 2>&1 | tee {report}
sync
# The host checks services over the network, then stops QEMU. Meanwhile the guest's
# addresses and the kernel's last network messages go to the console every 15 s: when a
# check gets no answer, they say whether the guest's network came up.
if [ -e {hold} ]; then
  for _ in $(seq 120); do
    echo "${{m}}net $({{ ip -4 -br addr || networkctl --no-pager --no-legend list; }} 2>&1 | tr -s ' \n' ' ')"
    echo "${{m}}net-kernel $(dmesg 2>&1 | grep -iE 'usb0|rndis|cdc_ether|dwc2|link' | tail -n 2 | tr -s ' \n' ' ')"
    sleep 15
  done
fi
systemctl poweroff
"#,
        marker = MARKER,
        report = REPORT_PATH,
        hold = HOLD_PATH,
        units = units
    )
}

/// Where the probe writes: the console, except on a PC, whose console is the screen
/// (the serial port is the kernel's first console there, not the last).
pub fn console_of(machine: super::detect::Machine) -> &'static str {
    if machine.is_pc() { "/dev/ttyS0" } else { "/dev/console" }
}

/// The serial login prompt to mask in the copy when the probe writes to that port
/// itself (`/dev/ttyS0` → its `serial-getty@ttyS0.service`); none for `/dev/console`.
pub fn getty_of(tty: &str) -> Option<String> {
    tty.strip_prefix("/dev/ttyS")
        .map(|n| format!("/etc/systemd/system/serial-getty@ttyS{n}.service"))
}

/// The probe unit. `Type=simple`: its start job ends at once, so it does not hold up
/// the very start-up it waits for.
pub fn unit(tty: &str) -> String {
    format!(
        "[Unit]\n\
         Description=imgbuild boot test: report on the console, then power off\n\
         After=multi-user.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={SCRIPT_PATH}\n\
         StandardInput=null\n\
         StandardOutput=tty\n\
         StandardError=inherit\n\
         TTYPath={tty}\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// What the probe reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeReport {
    /// `systemctl is-system-running` after waiting: `running`, `degraded`, ...
    pub state: String,
    /// Seconds since the kernel started when start-up had finished.
    pub uptime: Option<f64>,
    /// `systemctl is-active multi-user.target`.
    pub multi_user: String,
    /// `systemd-analyze time`, on one line.
    pub analyze: String,
    pub failed_units: Vec<String>,
    pub root_dev: String,
    pub root_part_bytes: Option<u64>,
    pub root_fs_bytes: Option<u64>,
    /// `--expect-active` units and their `systemctl is-active`.
    pub units: Vec<(String, String)>,
    /// `bios`, `uefi` or `uefi secure-boot`, as the guest saw its firmware.
    pub firmware: String,
    /// The kernel's own word on Secure Boot (`secureboot: Secure boot enabled`).
    pub secure_boot_kernel: String,
    /// The end marker was seen (the report is whole).
    pub complete: bool,
}

/// The probe's report in a serial log, from the last `begin` marker on; `None` when
/// the probe never started.
pub fn parse(log: &str) -> Option<ProbeReport> {
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.find(MARKER).map(|i| l[i + MARKER.len()..].trim_end()))
        .collect();
    let start = lines.iter().rposition(|l| *l == "begin")?;
    let mut r = ProbeReport::default();
    for line in &lines[start + 1..] {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let value = value.trim();
        match key {
            "state" => r.state = value.to_string(),
            "uptime" => r.uptime = value.parse().ok(),
            "multi-user" => r.multi_user = value.to_string(),
            "analyze" => r.analyze = value.to_string(),
            "failed" if !value.is_empty() => r.failed_units.push(value.to_string()),
            "root-dev" => r.root_dev = value.to_string(),
            "root-part-bytes" => r.root_part_bytes = value.parse().ok(),
            "root-fs-bytes" => r.root_fs_bytes = value.parse().ok(),
            "firmware" => r.firmware = value.to_string(),
            "unit" => {
                let (u, state) = value.split_once(' ').unwrap_or((value, ""));
                r.units.push((u.to_string(), state.to_string()));
            }
            "secureboot-kernel" => r.secure_boot_kernel = value.to_string(),
            "end" => {
                r.complete = true;
                break;
            }
            _ => {}
        }
    }
    Some(r)
}

/// The guest's last report of its network while it held for the HTTP checks: its
/// addresses, and the kernel's last network messages.
pub fn last_network(log: &str) -> Option<String> {
    let last = |key: &str| {
        log.lines().rev().find_map(|l| {
            l.find(&format!("{MARKER}{key} "))
                .map(|i| l[i + MARKER.len() + key.len() + 1..].trim().to_string())
        })
    };
    let addresses = last("net")?;
    let kernel = last("net-kernel").unwrap_or_default();
    Some(format!(
        "addresses: {addresses}; kernel: {}",
        if kernel.is_empty() { "(nothing)" } else { &kernel }
    ))
}

/// Devices systemd waited for in vain ("Timed out waiting for device …"): a unit that
/// needs hardware the machine may not have (a Wi-Fi radio) must not hold up the boot.
pub fn device_timeouts(log: &str) -> Vec<String> {
    const NEEDLE: &str = "Timed out waiting for device";
    let mut found: Vec<String> = log
        .lines()
        .filter_map(|l| l.find(NEEDLE).map(|i| l[i + NEEDLE.len()..].trim()))
        .map(|rest| strip_ansi(rest).trim().trim_end_matches('.').trim().to_string())
        .collect();
    found.dedup();
    found
}

/// `text` without terminal colour sequences (ESC [ … letter) and other control characters.
fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// The kernel said it is about to power off or halt: the guest has shut down.
pub fn powered_off(log: &str) -> bool {
    log.contains("reboot: Power down") || log.contains("reboot: System halted") || log.contains("System halted.")
}

/// A sign in the log that the boot is stuck for good — it waits for a person at a
/// console (initramfs shell, emergency mode) or the kernel died — so the test can stop
/// at once instead of at the time limit.
pub fn stuck(log: &str) -> Option<&'static str> {
    const STUCK: &[(&str, &str)] = &[
        ("Kernel panic - not syncing", "the kernel panicked"),
        ("Dropping to a shell!", "the initramfs gave up and dropped to a shell"),
        ("You are in emergency mode", "systemd entered emergency mode"),
        ("Give root password for maintenance", "systemd entered emergency mode"),
    ];
    STUCK
        .iter()
        .find(|(needle, _)| log.contains(needle))
        .map(|(_, why)| *why)
}

/// Known reasons a boot stops, as one line each, for the failure report.
pub fn hints(log: &str) -> Vec<String> {
    const KNOWN: &[(&str, &str)] = &[
        ("Kernel panic", "the kernel panicked (see the log's tail)"),
        (
            "Gave up waiting for root file system device",
            "the initramfs did not find the root device: its module list may lack the \
             SD/disk driver for this machine, or root= does not match the image",
        ),
        ("ALERT!", "the initramfs dropped to a shell: root file system not found"),
        (
            "VFS: Unable to mount root fs",
            "the kernel could not mount the root file system",
        ),
        (
            "You are in emergency mode",
            "systemd entered emergency mode (a mount or fsck failed?)",
        ),
        (
            "Failed to start",
            "a unit failed to start (see `Failed to start` lines in the log)",
        ),
    ];
    KNOWN
        .iter()
        .filter(|(needle, _)| log.contains(needle))
        .map(|(_, why)| why.to_string())
        .collect()
}

/// The last `n` lines of a log, without terminal control sequences, for the report.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| strip_control(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Removes ANSI escape sequences (systemd colours its status lines) and carriage
/// returns.
pub fn strip_control(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters... final byte in @..~
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_network_report_is_the_one_shown() {
        let log = format!(
            "{m}end\n{m}net lo UNKNOWN 127.0.0.1/8 \n{m}net-kernel \n[ 9.1] x {m}net lo UNKNOWN 127.0.0.1/8 usb0 UP 10.0.2.15/24 \n{m}net-kernel rndis_host 1-1.1:1.0 usb0: register 'rndis_host'\n",
            m = MARKER
        );
        assert_eq!(
            last_network(&log).unwrap(),
            "addresses: lo UNKNOWN 127.0.0.1/8 usb0 UP 10.0.2.15/24; kernel: rndis_host 1-1.1:1.0 usb0: register 'rndis_host'"
        );
        assert_eq!(last_network(&format!("{MARKER}end\n")), None);
        let waited = "[\u{1b}[0;1;31m TIME \u{1b}[0m] Timed out waiting for device \u{1b}[0;1;39mys/subsystem/net/devices/wlan0\u{1b}[0m.\n";
        assert_eq!(
            device_timeouts(waited),
            vec!["ys/subsystem/net/devices/wlan0".to_string()]
        );
        assert!(device_timeouts("[  OK  ] Reached target multi-user.target\n").is_empty());
        let quiet = format!("{MARKER}net lo UNKNOWN 127.0.0.1/8\n");
        assert!(last_network(&quiet).unwrap().ends_with("kernel: (nothing)"));
    }
}

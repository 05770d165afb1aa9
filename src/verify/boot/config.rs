//! Reading the boot partition the way the Raspberry Pi firmware would: `config.txt`
//! (which kernel, which initramfs, which command-line file) and `cmdline.txt`, and
//! finding the partition the kernel command line's `root=` names. Pure text handling,
//! tested in tests/it/boot.rs without an image.

use super::super::inspect::FoundPartition;

/// One `key=value` (or `initramfs FILE ...`) line of config.txt and the conditional
/// section it sits in (`None` before any `[...]` line or after `[all]`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Setting {
    section: Option<String>,
    key: String,
    value: String,
}

/// A parsed config.txt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirmwareConfig {
    settings: Vec<Setting>,
}

impl FirmwareConfig {
    /// Parses config.txt. Unknown lines are kept (they do no harm); comments and blank
    /// lines are dropped.
    pub fn parse(text: &str) -> Self {
        let mut settings = Vec::new();
        let mut section: Option<String> = None;
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let name = inner.trim().to_ascii_lowercase();
                section = if name == "all" { None } else { Some(name) };
                continue;
            }
            // `initramfs FILE [followkernel|ADDRESS]` is the one space-separated setting.
            let (key, value) = match line.split_once('=') {
                Some((k, v)) if !k.contains(char::is_whitespace) => (k, v),
                _ => match line.split_once(char::is_whitespace) {
                    Some((k, v)) => (k, v),
                    None => (line, ""),
                },
            };
            settings.push(Setting {
                section: section.clone(),
                key: key.trim().to_ascii_lowercase(),
                value: value.trim().to_string(),
            });
        }
        FirmwareConfig { settings }
    }

    /// The last value of `key` that applies to a board matching `model` (a firmware
    /// filter name such as `pi3`, `pi0`, `pi5`; `None` = unconditional lines only).
    /// Filters other than model names (gpio, EDID, serial numbers, ...) are treated as
    /// not matching, so only settings the firmware surely applies are used.
    pub fn get(&self, key: &str, model: Option<&str>) -> Option<&str> {
        self.settings
            .iter()
            .rev()
            .find(|s| {
                s.key == key
                    && match (&s.section, model) {
                        (None, _) => true,
                        (Some(sec), Some(m)) => sec == m,
                        (Some(_), None) => false,
                    }
            })
            .map(|s| s.value.as_str())
    }

    /// Whether `key` is set to a true value (`1`).
    fn flag(&self, key: &str, model: Option<&str>) -> bool {
        self.get(key, model).is_some_and(|v| v.trim() == "1")
    }

    /// The kernel file the firmware would load: `kernel=`, else the first of the
    /// firmware's default names for this board that `exists`.
    pub fn kernel(&self, model: Option<&str>, exists: &dyn Fn(&str) -> bool) -> Option<String> {
        if let Some(k) = self.get("kernel", model).filter(|k| !k.is_empty()) {
            return Some(k.to_string());
        }
        let arm64 = self.flag("arm_64bit", model);
        let defaults: &[&str] = match (model, arm64) {
            (Some("pi5"), _) => &["kernel_2712.img", "kernel8.img"],
            (Some("pi0") | Some("pi1"), _) => &["kernel.img"],
            (_, true) => &["kernel8.img"],
            _ => &[
                "kernel8.img",
                "kernel_2712.img",
                "kernel7l.img",
                "kernel7.img",
                "kernel.img",
            ],
        };
        defaults.iter().find(|n| exists(n)).map(|n| n.to_string())
    }

    /// The initramfs file: `initramfs FILE ...` or `ramfsfile=`, else with
    /// `auto_initramfs=1` the name matching the kernel (kernel8.img → initramfs8).
    pub fn initramfs(&self, model: Option<&str>, kernel: &str) -> Option<String> {
        if let Some(v) = self.get("initramfs", model) {
            return v.split_whitespace().next().map(str::to_string);
        }
        if let Some(v) = self.get("ramfsfile", model).filter(|v| !v.is_empty()) {
            return v.split(',').next().map(str::to_string);
        }
        if self.flag("auto_initramfs", model) {
            let stem = kernel.strip_suffix(".img").unwrap_or(kernel);
            return stem.strip_prefix("kernel").map(|suffix| format!("initramfs{suffix}"));
        }
        None
    }

    /// The command-line file (`cmdline=`, default `cmdline.txt`).
    pub fn cmdline_file(&self, model: Option<&str>) -> String {
        self.get("cmdline", model)
            .filter(|v| !v.is_empty())
            .unwrap_or("cmdline.txt")
            .to_string()
    }
}

/// The kernel command line from cmdline.txt: the firmware reads one line; extra lines
/// and surrounding blanks are joined into single spaces.
pub fn parse_cmdline(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The value of the last `name=` parameter on a command line.
pub fn cmdline_param<'a>(cmdline: &'a str, name: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .next_back()
}

/// The command line with every `console=` replaced by `console` (for a machine whose
/// serial port has another name than the board's, e.g. virt's ttyAMA0).
pub fn replace_consoles(cmdline: &str, console: &str) -> String {
    let mut words: Vec<&str> = cmdline
        .split_whitespace()
        .filter(|w| !w.starts_with("console="))
        .collect();
    let c = format!("console={console}");
    words.push(&c);
    words.join(" ")
}

/// The partition the `root=` value names: `PARTUUID=`, `UUID=`, `LABEL=`,
/// `PARTLABEL=` or a device path ending in the partition number (`/dev/mmcblk0p2`,
/// `/dev/sda2`).
pub fn root_partition<'a>(root: &str, parts: &'a [FoundPartition]) -> Option<&'a FoundPartition> {
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if let Some((kind, value)) = root.split_once('=') {
        return parts.iter().find(|p| match kind {
            "PARTUUID" => eq(&p.partuuid, value),
            "UUID" => p.filesystem.uuid.as_deref().is_some_and(|u| eq(u, value)),
            "LABEL" => p.filesystem.label.as_deref() == Some(value),
            "PARTLABEL" => p.name.as_deref() == Some(value),
            _ => false,
        });
    }
    let digits: String = root
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let n: u32 = digits.parse().ok()?;
    parts.iter().find(|p| p.number == n)
}
